// Runs a host as a local command: started on wake, stopped (SIGTERM, then SIGKILL) when scaled to zero.
import { spawn, type ChildProcess } from 'node:child_process';
import type { HostConfig } from '../../sources/file/config.ts';
import type { Logger } from '../log.ts';
import { forEachLine } from '../stream-lines.ts';
import type { Scaler } from './scaler.ts';

const STOP_GRACE_MS = 10_000;

interface Running {
  child: ChildProcess;
  exited: Promise<string>;
}

export class ProcessScaler implements Scaler {
  readonly kind = 'process';
  private readonly running = new Map<string, Running>();

  constructor(
    private readonly log: Logger,
    private readonly onOutput?: (host: string, line: string) => void,
  ) {}

  async start(host: HostConfig): Promise<void> {
    if (host.scaler.kind !== 'process') throw new Error(`host "${host.name}" is not a process host`);
    if (this.running.has(host.name)) return;
    const [command, ...args] = host.scaler.command;
    const child = spawn(command!, args, {
      cwd: host.scaler.cwd,
      env: { ...process.env, ...host.scaler.env, STZ_HOST: host.name },
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group, so a stop reaches what the command starts too (a shell, npm, ...).
      detached: true,
    });
    const exited = new Promise<string>((resolve) => {
      child.once('error', (err) => resolve(`could not start ${JSON.stringify(host.scaler.kind === 'process' ? host.scaler.command : [])}: ${err.message}`));
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
    this.log.info('host process started', { host: host.name, pid: child.pid, command: host.scaler.command });
  }

  async stop(host: HostConfig): Promise<void> {
    const entry = this.running.get(host.name);
    if (entry) await terminate(entry);
  }

  failure(host: HostConfig): Promise<string> | undefined {
    return this.running.get(host.name)?.exited;
  }

  isRunning(name: string): boolean {
    return this.running.has(name);
  }

  pid(name: string): number | undefined {
    return this.running.get(name)?.child.pid;
  }

  async close(): Promise<void> {
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
