// `npm start`: the whole local system on loopback — the control plane (which starts the demo upstream on
// its first request: scaler "process" in config/gateway.yaml) and the real Envoy — with each process's log
// lines prefixed by its name. Ctrl-C stops everything.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT, startEnvoy } from '../envoy-bootstrap/envoy.ts';
import { renderBootstrap } from '../envoy-bootstrap/render.ts';
import { forEachLine } from '../xds-server/stream-lines.ts';

const { values } = parseArgs({
  options: {
    config: { type: 'string', default: path.join(REPO_ROOT, 'config', 'gateway.yaml') },
    'xds-port': { type: 'string', default: '18000' },
    'admin-port': { type: 'string', default: '9902' },
    'envoy-admin-port': { type: 'string', default: '9901' },
    concurrency: { type: 'string', default: '2' },
  },
});

const colours: Record<string, string> = { 'control-plane': '\x1b[36m', envoy: '\x1b[33m' };
const say = (who: string, line: string): void => {
  if (line.trim() === '') return;
  const tag = process.stdout.isTTY ? `${colours[who] ?? ''}[${who}]\x1b[0m` : `[${who}]`;
  process.stdout.write(`${tag} ${line}\n`);
};

const children: ChildProcess[] = [];
function run(who: string, args: string[]): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  for (const stream of [child.stdout!, child.stderr!]) forEachLine(stream, (line) => say(who, line));
  child.on('exit', (code, signal) => {
    say(who, `exited (${signal ?? code})`);
    if (!stopping) void stop(1);
  });
  children.push(child);
  return child;
}

let stopping = false;
let envoyStop: (() => Promise<void>) | undefined;
async function stop(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  await envoyStop?.();
  for (const c of children) c.kill('SIGTERM');
  process.exit(code);
}
process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));

run('control-plane', [
  'xds-server/main.ts',
  '--config', values.config,
  '--xds-port', values['xds-port'],
  '--admin-port', values['admin-port'],
  '--state-dir', path.join(REPO_ROOT, '.state'),
]);

const envoy = await startEnvoy({
  bootstrap: renderBootstrap({ nodeId: 'local-gateway', xdsAddress: '127.0.0.1', xdsPort: Number(values['xds-port']), adminPort: Number(values['envoy-admin-port']) }),
  concurrency: Number(values.concurrency),
  logLevel: 'info',
  onLog: (line) => say('envoy', line),
});
envoyStop = () => envoy.stop();
void envoy.exited.then(() => {
  if (!stopping) void stop(1);
});
say('stack', `Envoy admin ${envoy.adminUrl}; control plane admin http://127.0.0.1:${values['admin-port']}`);
say('stack', 'try: curl -H "Host: demo.localhost" http://127.0.0.1:10000/hello   (the first request wakes the demo host)');
