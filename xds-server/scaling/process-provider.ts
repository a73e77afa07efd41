// Runs a backend as a local command (file mode): started on wake, ready when its health check passes on
// one of its configured endpoints, stopped (SIGTERM, then SIGKILL) when scaled to zero.
import { spawn, type ChildProcess } from 'node:child_process';
import { systemClock, type Clock } from '../clock.ts';
import type { Logger } from '../log.ts';
import { forEachLine } from '../stream-lines.ts';
import { probe } from './health.ts';
import type { BackendProvider, ScalableBackend } from './provider.ts';

const STOP_GRACE_MS = 10_000;

interface Running {
  child: ChildProcess;
  exited: Promise<string>;
}

export interface ProcessProviderOptions {
  /** How often a waking backend is probed. Small: it bounds the cold-start delay after the process is ready. */
  probeIntervalMs: number;
  clock?: Clock;
}

export class ProcessProvider implements BackendProvider {
  readonly kind = 'process';
  readonly managesReplicas = true;
  readonly stopsFailedWakes = true;
  private readonly running = new Map<string, Running>();
  private readonly clock: Clock;
  private closed = false;

  constructor(
    private readonly log: Logger,
    private readonly onOutput?: (host: string, line: string) => void,
    private readonly options: ProcessProviderOptions = { probeIntervalMs: 2 },
  ) {
    this.clock = options.clock ?? systemClock;
  }

  workloadKey(host: ScalableBackend): string {
    return `process/${host.name}`;
  }

  async wake(host: ScalableBackend): Promise<void> {
    const workload = host.scaleToZero.workload;
    if (workload.kind !== 'process') throw new Error(`host "${host.name}" is not a process host`);
    if (this.running.has(host.name)) return;
    const [command, ...args] = workload.command;
    const child = spawn(command!, args, {
      cwd: workload.cwd,
      env: { ...process.env, ...workload.env, STZ_HOST: host.name },
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group, so a stop reaches what the command starts too (a shell, npm, ...).
      detached: true,
    });
    const exited = new Promise<string>((resolve) => {
      child.once('error', (err) => resolve(`could not start ${JSON.stringify(workload.command)}: ${err.message}`));
      child.once('exit', (code, signal) => resolve(`the process exited (${signal ?? `code ${code}`})`));
    });
    const entry: Running = { child, exited };
    this.running.set(host.name, entry);
    void exited.then((reason) => {
      if (this.running.get(host.name) === entry) this.running.delete(host.name);
      this.log.info('host process ended', { host: host.name, pid: child.pid, reason });
    });
    for (const stream of [child.stdout!, child.stderr!]) {
      forEachLine(stream, (line) => {
        this.onOutput?.(host.name, line);
        this.log.debug('host output', { host: host.name, line });
      });
    }
    this.log.info('host process started', { host: host.name, pid: child.pid, command: workload.command });
  }

  /** Health-checks the configured endpoints until one passes. */
  async waitReady(host: ScalableBackend, deadline: number, signal: AbortSignal): Promise<void> {
    const { health, wakeTimeoutMs } = host.scaleToZero;
    let last = 'no health check answered yet';
    while (!this.closed) {
      if (signal.aborted) throw new Error(`stopped waiting (last check: ${last})`);
      for (const endpoint of host.endpoints) {
        const result = await probe(endpoint, health);
        if (result.healthy) return;
        last = result.reason;
      }
      if (this.clock.now() >= deadline) throw new Error(`not healthy within wakeTimeoutMs ${wakeTimeoutMs} ms: ${last}`);
      await this.clock.sleep(this.options.probeIntervalMs);
    }
    throw new Error('the control plane is shutting down');
  }

  async stop(host: { name: string }): Promise<void> {
    const entry = this.running.get(host.name);
    if (entry) await terminate(entry);
  }

  failure(host: ScalableBackend): Promise<string> | undefined {
    return this.running.get(host.name)?.exited;
  }

  isRunning(name: string): boolean {
    return this.running.has(name);
  }

  pid(name: string): number | undefined {
    return this.running.get(name)?.child.pid;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.running.values()].map(terminate));
  }
}

/** SIGTERM to the whole process group, SIGKILL after the grace period. */
async function terminate(entry: Running): Promise<void> {
  const signal = (sig: NodeJS.Signals): void => {
    try {
      if (entry.child.pid !== undefined) process.kill(-entry.child.pid, sig);
    } catch {
      // Already gone.
    }
  };
  signal('SIGTERM');
  const timer = setTimeout(() => signal('SIGKILL'), STOP_GRACE_MS);
  await entry.exited;
  clearTimeout(timer);
}
