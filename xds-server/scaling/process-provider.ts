// Runs a backend as a local command (file mode): started on wake, ready when its health check passes on
// one of its configured endpoints or when the process says so itself (the readiness signal), stopped
// (SIGTERM, then SIGKILL) when scaled to zero.
//
// Readiness signal, two ways (like sd_notify's READY=1), whichever the process finds easier:
// - STZ_READY_FD=3: a pipe to the control plane on file descriptor 3; the process writes the line
//   "READY=1" to it once it serves. Only that process (and what it starts) holds the pipe.
// - STZ_READY_URL (the control plane's POST /v1/ready/<host> on loopback) and STZ_READY_TOKEN: the process
//   POSTs there with the header `x-scale-to-zero-ready-token: <token>`. Each start gets a fresh random
//   token, good for that start only, so a process of an earlier start cannot release a later one.
// Probing goes on beside it: a process that never signals is found by its health check.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Readable } from 'node:stream';
import { systemClock, type Clock } from '../clock.ts';
import type { Logger } from '../log.ts';
import { identify, liveGroupMembers, processGroupOf, readProcessRecords, removeFile, removeProcessRecord, sameProcess, writeProcessRecord, type ProcessRecord } from '../state/process-records.ts';
import { forEachLine } from '../stream-lines.ts';
import { probe } from './health.ts';
import type { BackendProvider, ReadyEvidence, ScalableBackend } from './provider.ts';

const STOP_GRACE_MS = 10_000;

interface Running {
  child: ChildProcess;
  exited: Promise<string>;
  /** This start's readiness token (hex). */
  readyToken: string;
  /** Resolves when the process signalled readiness with its token. */
  signalled: Promise<void>;
  signal: () => void;
  /** Epoch ms the spawn returned. */
  spawnedAt: number;
}

/** What a readiness signal did: accepted, or why not (the admin route answers with it). */
export type ReadySignalResult = 'accepted' | 'no_start' | 'wrong_token';

export const READY_URL_ENV = 'STZ_READY_URL';
export const READY_TOKEN_ENV = 'STZ_READY_TOKEN';
export const READY_FD_ENV = 'STZ_READY_FD';
/** The descriptor the readiness pipe is on in the started process. */
const READY_FD = 3;
export const READY_TOKEN_HEADER = 'x-scale-to-zero-ready-token';

export interface ProcessProviderOptions {
  /** How often a waking backend is probed. Small: it bounds the cold-start delay after the process is ready. */
  probeIntervalMs: number;
  clock?: Clock;
  /**
   * Where each started process is recorded (<stateDir>/processes/), so that a copy left running by a
   * control plane that died is stopped by the next one (stopOrphans) instead of blocking its port.
   */
  stateDir?: string;
}

export class ProcessProvider implements BackendProvider {
  readonly kind = 'process';
  readonly managesReplicas = true;
  readonly stopsFailedWakes = true;
  private readonly running = new Map<string, Running>();
  private readonly clock: Clock;
  private closed = false;
  /** The admin API's base URL as a process can call it (set once the admin port is bound). */
  private readyUrlBase: string | undefined;

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

  /** Where started processes send their readiness signal: the admin API, e.g. http://127.0.0.1:9902. */
  setReadyUrlBase(base: string): void {
    this.readyUrlBase = base.replace(/\/+$/, '');
  }

  /**
   * A process says it is ready. Accepted only with the token of the host's current start; accepting twice
   * is harmless.
   */
  signalReady(name: string, token: string): ReadySignalResult {
    const entry = this.running.get(name);
    if (!entry) return 'no_start';
    const a = Buffer.from(token);
    const b = Buffer.from(entry.readyToken);
    if (a.length !== b.length || !timingSafeEqual(a, b)) return 'wrong_token';
    entry.signal();
    return 'accepted';
  }

  /** When the host's current process was spawned (epoch ms), if one runs. */
  spawnedAt(name: string): number | undefined {
    return this.running.get(name)?.spawnedAt;
  }

  async wake(host: ScalableBackend): Promise<void> {
    const workload = host.scaleToZero.workload;
    if (workload.kind !== 'process') throw new Error(`host "${host.name}" is not a process host`);
    if (this.running.has(host.name)) return;
    const [command, ...args] = workload.command;
    const readyToken = randomBytes(16).toString('hex');
    const readyEnv: Record<string, string> = this.readyUrlBase === undefined
      ? {}
      : { [READY_URL_ENV]: `${this.readyUrlBase}/v1/ready/${encodeURIComponent(host.name)}`, [READY_TOKEN_ENV]: readyToken };
    const child = spawn(command!, args, {
      cwd: workload.cwd,
      env: { ...process.env, ...workload.env, STZ_HOST: host.name, ...readyEnv, [READY_FD_ENV]: String(READY_FD) },
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
      // Its own process group, so a stop reaches what the command starts too (a shell, npm, ...).
      detached: true,
    });
    const exited = new Promise<string>((resolve) => {
      child.once('error', (err) => resolve(`could not start ${JSON.stringify(workload.command)}: ${err.message}`));
      child.once('exit', (code, signal) => resolve(`the process exited (${signal ?? `code ${code}`})`));
    });
    let signal!: () => void;
    const signalled = new Promise<void>((resolve) => (signal = resolve));
    const entry: Running = { child, exited, readyToken, signalled, signal, spawnedAt: this.clock.now() };
    this.running.set(host.name, entry);
    const recorded = child.pid === undefined ? Promise.resolve(false) : this.record(host.name, child.pid, workload.command);
    void exited.then(async (reason) => {
      if (this.running.get(host.name) === entry) this.running.delete(host.name);
      this.log.info('host process ended', { host: host.name, pid: child.pid, reason });
      if ((await recorded) && this.options.stateDir !== undefined) {
        await removeProcessRecord(this.options.stateDir, host.name, child.pid!).catch((err: Error) => this.log.warn('could not remove a process record', { host: host.name, error: err.message }));
      }
    });
    const notify = child.stdio[READY_FD] as Readable | null;
    if (notify) {
      forEachLine(notify, (line) => {
        if (line.trim() !== 'READY=1') return;
        if (this.running.get(host.name) === entry) entry.signal();
        this.log.info('readiness signalled by the host process', { host: host.name, via: `fd ${READY_FD}` });
      });
    }
    for (const stream of [child.stdout!, child.stderr!]) {
      forEachLine(stream, (line) => {
        this.onOutput?.(host.name, line);
        this.log.debug('host output', { host: host.name, line });
      });
    }
    this.log.info('host process started', { host: host.name, pid: child.pid, command: workload.command });
  }

  /** Writes the process's record; false when there is nowhere to write it or it cannot be identified. */
  private async record(host: string, pid: number, command: string[]): Promise<boolean> {
    const stateDir = this.options.stateDir;
    const started = identify(pid);
    const controlPlane = identify(process.pid);
    if (stateDir === undefined || started === undefined || controlPlane === undefined) return false;
    try {
      await writeProcessRecord(stateDir, { formatVersion: 1, host, process: started, command, startedAt: new Date().toISOString(), controlPlane });
      return true;
    } catch (err) {
      this.log.warn('could not record the host process; if this control plane dies, stop it by hand', { host, pid, error: (err as Error).message });
      return false;
    }
  }

  /**
   * Stops every process a previous control plane on this state dir started and left running (it was
   * killed, or crashed): SIGTERM to its process group, SIGKILL after the grace period. Only processes whose
   * pid, start time and boot id match the record are signalled, never a process that reused the pid; and
   * none of a control plane that is still running. Run once at start-up, before any host is woken.
   */
  async stopOrphans(): Promise<void> {
    const stateDir = this.options.stateDir;
    if (stateDir === undefined) return;
    const { records, unreadable } = await readProcessRecords(stateDir);
    for (const u of unreadable) {
      this.log.warn('ignoring an unreadable process record', u);
      await removeFile(u.file);
    }
    const ownGroup = processGroupOf(process.pid);
    for (const record of records) {
      const { host, process: proc, controlPlane } = record;
      if (sameProcess(controlPlane, identify(controlPlane.pid))) {
        if (controlPlane.pid !== process.pid) {
          this.log.warn('another control plane that is still running uses this state dir; its process is left alone', { host, pid: proc.pid, controlPlanePid: controlPlane.pid, stateDir });
        }
        continue;
      }
      const members = liveGroupMembers(record);
      if (members.length > 0 && proc.pid > 1 && proc.pid !== ownGroup && proc.pid !== process.pid) {
        this.log.warn('stopping a host process left running by a control plane that did not stop it (killed or crashed)', { host, pid: proc.pid, processes: members, command: record.command, startedAt: record.startedAt });
        await this.stopGroup(record);
      }
      await removeProcessRecord(stateDir, host, proc.pid);
    }
  }

  private async stopGroup(record: ProcessRecord): Promise<void> {
    const signal = (sig: NodeJS.Signals): void => {
      try {
        process.kill(-record.process.pid, sig);
      } catch {
        // Gone meanwhile.
      }
    };
    signal('SIGTERM');
    const deadline = this.clock.now() + STOP_GRACE_MS;
    while (liveGroupMembers(record).length > 0) {
      if (this.clock.now() >= deadline) {
        this.log.warn('the orphan host process did not stop within the grace period; killing it', { host: record.host, pid: record.process.pid });
        signal('SIGKILL');
        break;
      }
      await this.clock.sleep(20);
    }
    // After SIGKILL the kernel still has to reap them; give it a moment so the port is free.
    for (let i = 0; i < 100 && liveGroupMembers(record).length > 0; i++) await this.clock.sleep(20);
  }

  /**
   * Ready when the process signals it (its token) or a health check of a configured endpoint passes,
   * whichever comes first; the signal also cuts a probe interval short.
   */
  async waitReady(host: ScalableBackend, deadline: number, signal: AbortSignal): Promise<ReadyEvidence> {
    const signalled = this.running.get(host.name)?.signalled;
    let isSignalled = false;
    // Wakes the probe loop's sleep at once when the signal comes (no timer left behind).
    const woken = new AbortController();
    const onAbort = (): void => woken.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    void signalled?.then(() => {
      isSignalled = true;
      woken.abort();
    });
    try {
      // A probe in flight does not hold the signal up: a freshly started process can take a while to answer
      // its first request, and the signal is what it sends when it knows it serves.
      const probing = this.probeUntilReady(host, deadline, signal, woken.signal, () => isSignalled);
      if (!signalled) return await probing;
      probing.catch(() => {});
      return await Promise.race([probing, signalled.then((): ReadyEvidence => 'signal')]);
    } finally {
      signal.removeEventListener('abort', onAbort);
      woken.abort();
    }
  }

  private async probeUntilReady(host: ScalableBackend, deadline: number, signal: AbortSignal, woken: AbortSignal, isSignalled: () => boolean): Promise<ReadyEvidence> {
    const { health, wakeTimeoutMs } = host.scaleToZero;
    let last = 'no health check answered yet';
    while (!this.closed) {
      if (isSignalled()) return 'signal';
      if (signal.aborted) throw new Error(`stopped waiting (last check: ${last})`);
      for (const endpoint of host.endpoints) {
        const result = await probe(endpoint, health);
        if (result.healthy) return 'probe';
        last = result.reason;
      }
      if (isSignalled()) return 'signal';
      if (this.clock.now() >= deadline) throw new Error(`not healthy within wakeTimeoutMs ${wakeTimeoutMs} ms: ${last}`);
      await this.clock.sleep(Math.min(this.options.probeIntervalMs, Math.max(0, deadline - this.clock.now())), woken);
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
