// Starting and stopping what a scenario needs: our gateway (control plane in this process + Envoy) or a
// static Envoy. Each start waits, bounded, until the listener is bound and answers; each stop is by pid.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { startEnvoy, type EnvoyProcess } from '../../envoy-bootstrap/envoy.ts';
import { renderBootstrap } from '../../envoy-bootstrap/render.ts';
import { FILE_LISTENER_NAME } from '../../sources/file/to-model.ts';
import { startControlPlane, type ControlPlane, type ControlPlaneOptions } from '../../xds-server/control-plane.ts';
import { createLogger } from '../../xds-server/log.ts';
import { waitFor } from './system.ts';

/**
 * Pids of every process this harness started that is still running, so an interrupted run (Ctrl-C) can
 * stop exactly those and nothing else.
 */
export const startedPids = new Set<number>();

/** Sends `signal` to every process this benchmark started that is still running (gone ones are skipped). */
export function killStarted(signal: NodeJS.Signals): void {
  for (const pid of startedPids) {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

/**
 * Runs a benchmark script's main: exits 0 when it is done; on a failure prints the stack, kills every process
 * the script started (a benchmark never leaves an Envoy or upstream behind) and exits 1.
 */
export function runBenchmark(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`${(err as Error).stack}\n`);
      killStarted('SIGKILL');
      process.exit(1);
    },
  );
}

export function track(pid: number | undefined, exited: Promise<unknown>): void {
  if (pid === undefined) return;
  startedPids.add(pid);
  void exited.then(() => startedPids.delete(pid));
}

export interface Gateway {
  cp: ControlPlane;
  envoy: EnvoyProcess;
  port: number;
  /** Control-plane log lines at warn level or above (kept for the results' notes). */
  warnings: string[];
  close(): Promise<void>;
}

export async function startGateway(options: { config: Record<string, unknown>; filterWasmPath: string; concurrency: number; nodeId: string; controlPlane?: Partial<ControlPlaneOptions>; envoyLog?: { componentLogLevel: string; logFormat: string; onLog: (line: string) => void } }): Promise<Gateway> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'stz-bench-'));
  const configPath = path.join(dir, 'gateway.yaml');
  await writeFile(configPath, stringify(options.config));
  const warnings: string[] = [];
  const log = createLogger({
    level: 'warn',
    module: 'control-plane',
    write: (line) => {
      if (warnings.length < 50) warnings.push(line);
    },
  });
  const cp = await startControlPlane({ configPath, stateDir: path.join(dir, 'state'), filterWasmPath: options.filterWasmPath, log, ...options.controlPlane });
  let envoy: EnvoyProcess | undefined;
  try {
    envoy = await startEnvoy({
      // mTLS on xDS and wake calls when the control plane has it on (the default, as with npm start).
      bootstrap: renderBootstrap({ nodeId: options.nodeId, xdsAddress: '127.0.0.1', xdsPort: cp.xdsPort, ...(cp.pki ? { xdsTls: cp.pki.envoyFiles } : {}) }),
      concurrency: options.concurrency,
      logLevel: 'warning',
      ...(options.envoyLog ?? {}),
    });
    track(envoy.pid, envoy.exited);
    const port = await listenerPort(envoy);
    const started = envoy;
    return {
      cp,
      envoy: started,
      port,
      warnings,
      async close() {
        await started.stop();
        await cp.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    const tail = envoy?.logTail(30) ?? '';
    await envoy?.stop();
    await cp.close();
    await rm(dir, { recursive: true, force: true });
    throw new Error(`${(err as Error).message}${tail ? `\nEnvoy log:\n${tail}` : ''}`);
  }
}

export async function startStaticEnvoy(bootstrap: Record<string, unknown>, listener: string, concurrency: number): Promise<{ envoy: EnvoyProcess; port: number }> {
  const envoy = await startEnvoy({ bootstrap, concurrency, logLevel: 'warning' });
  track(envoy.pid, envoy.exited);
  try {
    return { envoy, port: await listenerPort(envoy, listener) };
  } catch (err) {
    const tail = envoy.logTail(30);
    await envoy.stop();
    throw new Error(`${(err as Error).message}\nEnvoy log:\n${tail}`);
  }
}

async function listenerPort(envoy: EnvoyProcess, name = FILE_LISTENER_NAME): Promise<number> {
  return waitFor(`Envoy to bind listener ${name}`, () => envoy.listenerPort(name), { timeoutMs: 30_000, intervalMs: 50 });
}

/** One GET with an explicit Host header, answered whole; for readiness checks, not for load. */
export function getStatus(port: number, host: string, pathName = '/', timeoutMs = 5_000): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: pathName, headers: { host }, agent: false, timeout: timeoutMs }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** Waits until a GET through the gateway answers 200 (ECDS and RDS can land just after the listener). */
export async function waitServing(port: number, host: string): Promise<void> {
  await waitFor(`a 200 from 127.0.0.1:${port} for Host ${host}`, async () => ((await getStatus(port, host)) === 200 ? true : undefined), { timeoutMs: 20_000, intervalMs: 50 });
}
