// `npm start`: the whole local system on loopback — the control plane (which starts the demo upstream on
// its first request: scaler "process" in config/gateway.yaml) and the real Envoy — with each process's log
// lines prefixed by its name. Ctrl-C stops everything.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT, startEnvoy } from '../envoy-bootstrap/envoy.ts';
import { renderBootstrap } from '../envoy-bootstrap/render.ts';
import { FILE_LISTENER_NAME } from '../sources/file/to-model.ts';
import { readGatewayConfig } from '../xds-server/control-plane.ts';
import { CONTROL_PLANE_BUNDLE, CONTROL_PLANE_NODE_ENV, CONTROL_PLANE_NODE_FLAGS } from '../xds-server/node-flags.ts';
import { envoyTlsFiles } from '../xds-server/security/file-pki.ts';
import { forEachLine } from '../xds-server/stream-lines.ts';
import { stackBanner, type BannerHost } from './stack-banner.ts';

const USAGE = `Usage: npm start -- [options]

  --config F            the gateway config (default config/gateway.yaml)
  --state-dir D         where the control plane keeps its state: marks, filter generation, process pid
                        files (default .state in the checkout)
  --xds-port N          control plane xDS port (default 18000)
  --admin-port N        control plane admin API port (default 9902)
  --envoy-admin-port N  Envoy admin port (default 9901)
  --concurrency N       Envoy worker threads (default 2)
  --insecure-xds-plaintext   serve xDS and load reports without mutual TLS (a warning is logged; the
                        default is mTLS with certificates generated into <state-dir>/pki)
  -h, --help            print this
`;

let parsed;
try {
  parsed = parseArgs({
    options: {
      config: { type: 'string', default: path.join(REPO_ROOT, 'config', 'gateway.yaml') },
      'state-dir': { type: 'string', default: path.join(REPO_ROOT, '.state') },
      'xds-port': { type: 'string', default: '18000' },
      'admin-port': { type: 'string', default: '9902' },
      'envoy-admin-port': { type: 'string', default: '9901' },
      concurrency: { type: 'string', default: '2' },
      'insecure-xds-plaintext': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    },
  });
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n\n${USAGE}`);
  process.exit(2);
}
const { values } = parsed;
if (values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
// Relative paths are the caller's (npm runs scripts from the checkout, so INIT_CWD is where they typed it).
const callerDir = process.env.INIT_CWD ?? process.cwd();
const configPath = path.resolve(callerDir, values.config);
const stateDir = path.resolve(callerDir, values['state-dir']);
const plaintext = values['insecure-xds-plaintext'] === true;
const config = await readGatewayConfig(configPath);
if (!config.ok) {
  process.stderr.write(`${configPath} is not a valid gateway config:\n${config.errors.map((e) => `  ${e.path || '/'}: ${e.message}`).join('\n')}\n`);
  process.exit(2);
}

const colours: Record<string, string> = { 'control-plane': '\x1b[36m', envoy: '\x1b[33m' };
const say = (who: string, line: string): void => {
  if (line.trim() === '') return;
  const tag = process.stdout.isTTY ? `${colours[who] ?? ''}[${who}]\x1b[0m` : `[${who}]`;
  process.stdout.write(`${tag} ${line}\n`);
};

const children: ChildProcess[] = [];
function run(who: string, args: string[], env: Readonly<Record<string, string>> = {}): ChildProcess {
  const child = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
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

// The control plane as production runs it: the bundle scripts/setup.sh builds (scripts/build.ts), plain node.
if (!existsSync(path.join(REPO_ROOT, CONTROL_PLANE_BUNDLE))) {
  process.stderr.write(`${CONTROL_PLANE_BUNDLE} is missing: run "bash scripts/setup.sh" (npm start does)\n`);
  process.exit(2);
}
run('control-plane', [
  ...CONTROL_PLANE_NODE_FLAGS,
  CONTROL_PLANE_BUNDLE,
  '--config', configPath,
  '--xds-port', values['xds-port'],
  '--admin-port', values['admin-port'],
  '--state-dir', stateDir,
  ...(plaintext ? ['--insecure-xds-plaintext'] : []),
], CONTROL_PLANE_NODE_ENV);

// Envoy's bootstrap names the SDS files the control plane writes on start (it reuses those of an earlier run):
// wait for them, so a first start does not race Envoy against the certificate generation.
const envoyTls = envoyTlsFiles(stateDir);
if (!plaintext) {
  const until = Date.now() + 30_000;
  while (!(existsSync(envoyTls.certificateSds) && existsSync(envoyTls.caSds)) && Date.now() < until && !stopping) await new Promise((r) => setTimeout(r, 50));
}

const envoy = await startEnvoy({
  bootstrap: renderBootstrap({
    nodeId: 'local-gateway',
    xdsAddress: '127.0.0.1',
    xdsPort: Number(values['xds-port']),
    adminPort: Number(values['envoy-admin-port']),
    ...(plaintext ? {} : { xdsTls: envoyTls }),
  }),
  concurrency: Number(values.concurrency),
  logLevel: 'info',
  onLog: (line) => say('envoy', line),
});
envoyStop = () => envoy.stop();
void envoy.exited.then(() => {
  if (!stopping) void stop(1);
});

// The banner reports what is true once it is up: the listener's bound port from Envoy, each host's state
// from the control plane.
const adminUrl = `http://127.0.0.1:${values['admin-port']}`;
const deadline = Date.now() + 30_000;
let listenerPort: number | undefined;
let hosts: BannerHost[] | undefined;
while (!stopping && Date.now() < deadline && (listenerPort === undefined || hosts === undefined)) {
  try {
    listenerPort ??= await envoy.listenerPort(FILE_LISTENER_NAME);
    const token = process.env.STZ_ADMIN_TOKEN;
    const res = await fetch(`${adminUrl}/v1/hosts`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
    if (res.ok) hosts = ((await res.json()) as { hosts: BannerHost[] }).hosts;
  } catch {
    // Not up yet.
  }
  if (listenerPort === undefined || hosts === undefined) await new Promise((r) => setTimeout(r, 100));
}
if (listenerPort === undefined || hosts === undefined) {
  say('stack', `Envoy admin ${envoy.adminUrl}; control plane admin ${adminUrl}; the gateway listener is not up after 30 s (see the logs above)`);
} else {
  const lines = stackBanner({ configPath: configPath.startsWith(REPO_ROOT + path.sep) ? path.relative(REPO_ROOT, configPath) : configPath, stateDir, listener: { address: config.value.listener.address, port: listenerPort }, adminUrl, envoyAdminUrl: envoy.adminUrl, hosts });
  for (const line of lines) say('stack', line);
}
