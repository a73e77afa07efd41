// Facts about processes and the machine, read from /proc and a few commands. Everything the harness
// starts or waits on is bounded here, so a stuck step fails with a message instead of hanging the run.
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import { performance } from 'node:perf_hooks';

/**
 * Epoch milliseconds with sub-millisecond precision. Date.now() is whole milliseconds; this is the same
 * clock the demo upstream stamps `receivedAt` with, so the two can be subtracted.
 */
export function epochNowMs(): number {
  return performance.timeOrigin + performance.now();
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls until `check` returns a value other than undefined, or throws after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, options: { timeoutMs: number; intervalMs?: number }): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const why = lastError instanceof Error ? `: ${lastError.message}` : '';
      throw new Error(`timed out after ${options.timeoutMs} ms waiting for ${what}${why}`);
    }
    await sleep(options.intervalMs ?? 25);
  }
}

export interface CommandResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion (bounded), never through a shell. */
export function runCommand(file: string, args: string[], timeoutMs = 60_000): Promise<CommandResult> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      // A non-zero exit puts the exit status in err.code; a spawn failure puts a string (ENOENT) there.
      const raw = (err as { code?: unknown } | null)?.code;
      const code = err ? (typeof raw === 'number' ? raw : null) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) || (err && code === null ? err.message : '') });
    });
  });
}

/** Resident set size of a process in KiB (VmRSS), or undefined when the process is gone. */
export async function readRssKiB(pid: number): Promise<number | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** A process's soft limit on open files (from /proc/<pid>/limits), or undefined if unreadable. */
export async function readOpenFileLimit(pid: number): Promise<number | undefined> {
  try {
    const limits = await readFile(`/proc/${pid}/limits`, 'utf8');
    const m = /^Max open files\s+(\d+)/m.exec(limits);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

let clockTicks: number | undefined;

/** CPU seconds (user + system, all threads) a process has used so far. */
export async function readCpuSeconds(pid: number): Promise<number> {
  clockTicks ??= Number((await runCommand('getconf', ['CLK_TCK'])).stdout.trim()) || 100;
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may contain spaces; fields are counted after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return (utime + stime) / clockTicks;
}

export function tasksetAvailable(): boolean {
  return existsSync('/usr/bin/taskset') || existsSync('/bin/taskset');
}

/** Pins every thread of a running process to one CPU (threads it creates later inherit the mask). */
export async function pinProcess(pid: number, cpu: number): Promise<boolean> {
  if (!tasksetAvailable()) return false;
  const r = await runCommand('taskset', ['-a', '-p', '-c', String(cpu), String(pid)]);
  return r.code === 0;
}

/**
 * wrk is a system package, not an npm one. Installs it with apt-get when missing and running as root;
 * otherwise fails with the command to run.
 */
export async function ensureWrk(log: (line: string) => void): Promise<string> {
  const found = await runCommand('sh', ['-c', 'command -v wrk']);
  if (found.code === 0 && found.stdout.trim()) return found.stdout.trim();
  const hint = 'wrk is not installed; install it with: apt-get install -y wrk (as root)';
  if (process.getuid?.() !== 0) throw new Error(hint);
  log('wrk is missing; running apt-get install -y wrk');
  const code = await new Promise<number | null>((resolve) => {
    const child = spawn('apt-get', ['install', '-y', 'wrk'], { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    const timer = setTimeout(() => child.kill('SIGTERM'), 300_000);
    child.on('error', () => resolve(null));
    child.on('exit', (c) => {
      clearTimeout(timer);
      resolve(c);
    });
  });
  const again = await runCommand('sh', ['-c', 'command -v wrk']);
  if (code !== 0 || again.code !== 0) throw new Error(`${hint} (apt-get exited with ${code}; an "apt-get update" first may help)`);
  return again.stdout.trim();
}

export async function sha256File(file: string): Promise<string> {
  return createHash('sha256').update(await readFile(file)).digest('hex');
}

export interface MachineFacts {
  date: string;
  hostname: string;
  nproc: number;
  cpuModel: string;
  memTotalMiB: number;
  kernel: string;
  nodeVersion: string;
  envoyVersion: string;
  wrkVersion: string;
  tasksetAvailable: boolean;
  openFileLimit: string;
  gitCommit: string;
  gitDirty: boolean;
  filterWasmSha256: string;
  filterWasmBytes: number;
}

export async function machineFacts(envoyBin: string, wrkBin: string, filterWasm: string, repoRoot: string): Promise<MachineFacts> {
  const cpuinfo = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  const envoy = await runCommand(envoyBin, ['--version']);
  // `wrk -v` prints its banner and exits non-zero; the first line is all we want.
  const wrk = await runCommand(wrkBin, ['-v']);
  const limit = await runCommand('sh', ['-c', 'ulimit -n']);
  const commit = await runCommand('git', ['-C', repoRoot, 'rev-parse', 'HEAD']);
  const dirty = await runCommand('git', ['-C', repoRoot, 'status', '--porcelain']);
  const wasm = await readFile(filterWasm);
  return {
    date: new Date().toISOString(),
    hostname: os.hostname(),
    nproc: os.availableParallelism(),
    cpuModel: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? 'unknown',
    memTotalMiB: Math.round(os.totalmem() / 1024 / 1024),
    kernel: `${os.type()} ${os.release()}`,
    nodeVersion: process.version,
    envoyVersion: /version:\s*(\S+)/.exec(envoy.stdout + envoy.stderr)?.[1] ?? 'unknown',
    wrkVersion: ((wrk.stdout + wrk.stderr).split('\n')[0] ?? '').trim() || 'unknown',
    tasksetAvailable: tasksetAvailable(),
    openFileLimit: limit.stdout.trim(),
    gitCommit: commit.stdout.trim() || 'unknown',
    gitDirty: dirty.stdout.trim().length > 0,
    filterWasmSha256: createHash('sha256').update(wasm).digest('hex'),
    filterWasmBytes: wasm.length,
  };
}

interface ProcSample {
  ppid: number;
  comm: string;
  ticks: number;
  /** Start time since boot, in ticks: tells a reused pid from the same process (comm can change). */
  started: number;
}

async function sampleProcesses(): Promise<Map<number, ProcSample>> {
  clockTicks ??= Number((await runCommand('getconf', ['CLK_TCK'])).stdout.trim()) || 100;
  const out = new Map<number, ProcSample>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      const fields = stat.slice(close + 2).split(' ');
      // utime + stime, plus cutime + cstime: the CPU of children that already ended and were reaped, so
      // a test runner's short-lived children are seen through their parent.
      const ticks = Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
      out.set(Number(entry), { ppid: Number(fields[1]), comm, ticks, started: Number(fields[19]) });
    } catch {
      // The process ended between readdir and read.
    }
  }
  return out;
}

export interface ForeignCpu {
  /** CPU used by processes outside this benchmark's process tree, % of one core. */
  percent: number;
  top: { pid: number; comm: string; percent: number }[];
}

/**
 * Watches what processes OTHER than this benchmark and its children use while a measurement runs: the
 * machine is shared, and a test suite running next to the benchmark changes its numbers. Processes that
 * start during the window count with all their CPU; ones that end count through their parent once it
 * reaps them. A process that starts and ends inside the window under a parent that has not reaped it yet
 * slips through, so this is a lower bound.
 */
export async function watchForeignCpu(): Promise<() => Promise<ForeignCpu>> {
  const before = await sampleProcesses();
  const t0 = performance.now();
  return async () => {
    const after = await sampleProcesses();
    const seconds = (performance.now() - t0) / 1000;
    const ours = new Set<number>([process.pid]);
    // Parents come before children in pid order only usually; iterate until no new descendant appears.
    for (let grew = true; grew; ) {
      grew = false;
      for (const snap of [before, after]) {
        for (const [pid, s] of snap) {
          if (!ours.has(pid) && ours.has(s.ppid)) {
            ours.add(pid);
            grew = true;
          }
        }
      }
    }
    const top: ForeignCpu['top'] = [];
    let total = 0;
    // A child that ended inside the window lands in its parent's cutime with ALL its CPU, including what it
    // used before the window: take that earlier part back off.
    let usedBefore = 0;
    for (const [pid, b] of before) {
      if (after.has(pid) || ours.has(pid) || b.ppid === 2 || ours.has(b.ppid)) continue;
      if (after.has(b.ppid)) usedBefore += b.ticks;
    }
    for (const [pid, a] of after) {
      // Kernel threads (children of kthreadd, pid 2) are left out: their work (network softirqs, memory
      // reclaim) is largely caused by the benchmark's own traffic and cannot be told apart.
      if (ours.has(pid) || pid === 2 || a.ppid === 2) continue;
      const b = before.get(pid);
      // A pid seen only at the end (or reused by another process) started inside the window.
      const used = b && b.started === a.started ? a.ticks - b.ticks : a.ticks;
      const percent = (used / clockTicks! / seconds) * 100;
      if (percent <= 0) continue;
      total += percent;
      top.push({ pid, comm: a.comm, percent: Math.round(percent * 10) / 10 });
    }
    top.sort((x, y) => y.percent - x.percent);
    total = Math.max(0, total - (usedBefore / clockTicks! / seconds) * 100);
    return { percent: Math.round(total * 10) / 10, top: top.slice(0, 5) };
  };
}

/** Resolves like `promise`, or rejects with `message` after `ms`; the timer never outlives the race. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Waits for the machine to be quiet (other processes under `limitPercent` of a core over a 1 s look)
 * before a measurement, from one time budget shared by every wait of the run, so the total stays bounded.
 */
export class QuietGate {
  private remainingMs: number;

  constructor(
    budgetS: number,
    private readonly limitPercent: number,
    private readonly log: (line: string) => void,
  ) {
    this.remainingMs = budgetS * 1000;
  }

  /** Resolves with the last look: quiet, or busy once the budget is spent. */
  async wait(what: string): Promise<ForeignCpu> {
    let announced = false;
    for (;;) {
      const t = Date.now();
      const look = await watchForeignCpu();
      await sleep(1_000);
      const busy = await look();
      if (busy.percent <= this.limitPercent) return busy;
      this.remainingMs -= Date.now() - t;
      if (this.remainingMs <= 0) return busy;
      if (!announced) {
        this.log(`  waiting (up to ${Math.round(this.remainingMs / 1000)} s left in all) for other processes to go quiet before ${what}: ${busy.percent}% CPU (${busy.top.map((p) => `${p.comm} ${p.percent}%`).join(', ')})`);
        announced = true;
      }
    }
  }
}
