// Runs bench/hold-client.ts as a child process and speaks its line protocol.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { ClientEvent, ConnectedEvent, DoneEvent, HoldCommand, SentEvent } from '../hold-client.ts';
import { track } from './stack.ts';

const BENCH_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const REPO_ROOT = path.join(BENCH_DIR, '..');

export interface HoldHandle {
  sent: Promise<SentEvent>;
  done: Promise<DoneEvent>;
  /** deferWrite only: every connection is open and nothing is written yet; then call go(). */
  connected: Promise<ConnectedEvent>;
  /** deferWrite only: write every request now. */
  go(): void;
}

export class HoldClient {
  private readonly waiters = new Map<string, { sent: (e: SentEvent) => void; done: (e: DoneEvent) => void; connected: (e: ConnectedEvent) => void; fail: (e: Error) => void }>();
  private exited = false;
  private stderr = '';

  private constructor(private readonly child: ChildProcess) {
    const lines = readline.createInterface({ input: child.stdout! });
    lines.on('line', (line) => this.onLine(line));
    child.stderr!.setEncoding('utf8').on('data', (c: string) => {
      this.stderr = (this.stderr + c).slice(-4000);
    });
    // 'close', not 'exit': the last lines of stdout may still be unread at 'exit'.
    child.on('close', (code) => {
      this.exited = true;
      const err = new Error(`hold-client exited (${code}) with requests outstanding: ${this.stderr}`);
      for (const w of this.waiters.values()) w.fail(err);
      this.waiters.clear();
    });
  }

  /**
   * The open-file limit is raised to the hard limit in the child's own shell: it needs one descriptor per
   * held request, and this process's limit must not change.
   */
  static start(): HoldClient {
    const child = spawn('bash', ['-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"', 'bash', process.execPath, '--import', 'tsx', path.join(BENCH_DIR, 'hold-client.ts')], {
      cwd: REPO_ROOT,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    track(child.pid, new Promise((resolve) => child.once('exit', resolve)));
    return new HoldClient(child);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  hold(command: Omit<HoldCommand, 'cmd'>): HoldHandle {
    if (this.exited) throw new Error(`hold-client is not running: ${this.stderr}`);
    let resolveSent!: (e: SentEvent) => void;
    let resolveDone!: (e: DoneEvent) => void;
    let rejectSent!: (e: Error) => void;
    let rejectDone!: (e: Error) => void;
    const sent = new Promise<SentEvent>((res, rej) => ((resolveSent = res), (rejectSent = rej)));
    const done = new Promise<DoneEvent>((res, rej) => ((resolveDone = res), (rejectDone = rej)));
    let resolveConnected!: (e: ConnectedEvent) => void;
    let rejectConnected!: (e: Error) => void;
    const connected = new Promise<ConnectedEvent>((res, rej) => ((resolveConnected = res), (rejectConnected = rej)));
    // Callers may await only some of them; the others must not become unhandled rejections.
    sent.catch(() => {});
    done.catch(() => {});
    connected.catch(() => {});
    this.waiters.set(command.id, {
      sent: resolveSent,
      done: resolveDone,
      connected: resolveConnected,
      fail: (e) => {
        rejectSent(e);
        rejectDone(e);
        rejectConnected(e);
      },
    });
    this.child.stdin!.write(JSON.stringify({ cmd: 'hold', ...command }) + '\n');
    const go = (): void => void this.child.stdin!.write(JSON.stringify({ cmd: 'go', id: command.id }) + '\n');
    return { sent, done, connected, go };
  }

  async close(): Promise<void> {
    if (this.exited) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.stdin!.end(JSON.stringify({ cmd: 'exit' }) + '\n');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }

  private onLine(line: string): void {
    let event: ClientEvent;
    try {
      event = JSON.parse(line) as ClientEvent;
    } catch {
      return;
    }
    if (event.event === 'error') {
      for (const w of this.waiters.values()) w.fail(new Error(`hold-client: ${event.message}`));
      this.waiters.clear();
      return;
    }
    const w = this.waiters.get(event.id);
    if (!w) return;
    if (event.event === 'sent') w.sent(event);
    else if (event.event === 'connected') w.connected(event);
    else {
      this.waiters.delete(event.id);
      w.done(event);
    }
  }
}
