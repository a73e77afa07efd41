// Starts and drives one control plane under test as a process of its own: ours (bench/peer/ours.ts) or the
// go-control-plane peer (bench/peer/go-control-plane, built by bench/peer/build.sh). Both speak the same
// line protocol on stdin/stdout, so the xDS benchmark treats them alike. Stopped by pid only.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { TYPE_URLS, type ResourceKind } from '../../snapshots/type-urls.ts';
import { CONTROL_PLANE_NODE_ENV, CONTROL_PLANE_NODE_FLAGS } from '../../xds-server/node-flags.ts';
import { track } from './stack.ts';
import { readCpuSeconds, withTimeout } from './system.ts';
import { DEFAULT_SCALING_OPTIONS } from '../../xds-server/scaling/backend-controller.ts';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const GO_PEER_BIN = path.join(REPO_ROOT, '.cache', 'bench', 'go-control-plane-peer');
const OURS_BUNDLE = path.join(REPO_ROOT, 'dist', 'bench', 'ours.mjs');
export const KINDS = Object.keys(TYPE_URLS) as ResourceKind[];
const KIND_BY_URL = new Map(KINDS.map((k) => [TYPE_URLS[k] as string, k]));

export type PeerName = 'ours' | 'go-control-plane';
export type Versions = Record<ResourceKind, string>;

export interface Ack {
  stream: number;
  kind: ResourceKind;
  version: string;
  atMs: number;
}

export interface Peer {
  readonly name: PeerName;
  readonly pid: number;
  readonly port: number;
  /** Every ACK the control plane saw, in order (empty when started with acks off). */
  readonly acks: Ack[];
  readonly nacks: string[];
  /** With `trace`: every "trace ..." line the peer printed (STZ_BENCH_TRACE / -trace), in order. */
  readonly trace: string[];
  /** Ours: a gateway config file. go-control-plane: a dump written by ours. Resolves when it is in the cache. */
  load(file: string): Promise<Versions>;
  /** Ours only: writes the last loaded snapshot as the go-control-plane peer's load file. */
  dump(file: string): Promise<void>;
  rssKiB(): Promise<number>;
  /** Peak RSS since the process started (VmHWM). */
  hwmKiB(): Promise<number>;
  cpuSeconds(): Promise<number>;
  stop(): Promise<void>;
}

/**
 * The node flags and environment ours runs with: the product's (xds-server/node-flags.ts), or for a comparison
 * run STZ_BENCH_NODE_FLAGS / STZ_BENCH_NODE_ENV instead (space-separated; empty: none), e.g.
 * STZ_BENCH_NODE_FLAGS='' STZ_BENCH_NODE_ENV='' for plain node.
 */
export function oursNodeFlags(): string[] {
  const custom = process.env.STZ_BENCH_NODE_FLAGS;
  return custom === undefined ? [...CONTROL_PLANE_NODE_FLAGS] : custom.split(' ').filter(Boolean);
}

export function oursNodeEnv(): Record<string, string> {
  const custom = process.env.STZ_BENCH_NODE_ENV;
  if (custom === undefined) return { ...CONTROL_PLANE_NODE_ENV };
  return Object.fromEntries(custom.split(' ').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
}

async function procStatusKiB(pid: number, field: string): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const m = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(status);
  if (!m) throw new Error(`no ${field} for pid ${pid}`);
  return Number(m[1]);
}

export interface PeerOptions {
  configFile?: string;
  stateDir?: string;
  filterWasmPath?: string;
  acks: boolean;
  /** Print every ADS request and response (bench/xds-trace.ts); the lines land in Peer.trace. */
  trace?: boolean;
  /** Ours only: node flags added to the production ones (--cpu-prof, say), for a diagnosis, never a measurement. */
  extraNodeFlags?: string[];
}

export async function startPeer(name: PeerName, options: PeerOptions): Promise<Peer> {
  let child: ChildProcess;
  if (name === 'ours') {
    if (!options.configFile || !options.stateDir || !options.filterWasmPath) throw new Error('ours needs configFile, stateDir, filterWasmPath');
    // Built by scripts/build.ts like the product (plain node, the production flags), as the Go peer is compiled.
    if (!existsSync(OURS_BUNDLE)) throw new Error(`${OURS_BUNDLE} is missing: run "bash scripts/setup.sh"`);
    const args = [...oursNodeFlags(), ...(options.extraNodeFlags ?? []), OURS_BUNDLE, '--config', options.configFile, '--state-dir', options.stateDir, '--filter', options.filterWasmPath];
    if (!options.acks) args.push('--no-acks');
    const env = { ...process.env, ...oursNodeEnv(), ...(options.trace ? { STZ_BENCH_TRACE: '1' } : {}) };
    child = spawn(process.execPath, args, { cwd: REPO_ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
  } else {
    if (!existsSync(GO_PEER_BIN)) throw new Error(`${GO_PEER_BIN} is missing: run "bash bench/peer/build.sh"`);
    // The Go peer takes Envoy's load reports at our interval too (and drops them): Envoy then builds and sends
    // the same reports beside both control planes, as the bootstrap asks both for them.
    const args = ['-port', '0', `-acks=${options.acks}`, '-lrs-interval-ms', String(DEFAULT_SCALING_OPTIONS.loadReportIntervalMs)];
    if (options.trace) args.push('-trace');
    child = spawn(GO_PEER_BIN, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  }
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${name}`);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  track(pid, exited);
  const stderrTail: string[] = [];
  createInterface({ input: child.stderr! }).on('line', (line) => {
    stderrTail.push(line);
    if (stderrTail.length > 20) stderrTail.shift();
  });
  const acks: Ack[] = [];
  const nacks: string[] = [];
  const trace: string[] = [];
  // Replies to load/dump come back in order (both peers run commands one at a time).
  const pending: { resolve: (fields: string[]) => void; reject: (e: Error) => void }[] = [];
  let listening: (port: number) => void;
  const port = new Promise<number>((resolve) => (listening = resolve));
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const [event, ...f] = line.split(' ');
    if (event === 'ack') {
      const kind = KIND_BY_URL.get(f[1]!);
      if (kind) acks.push({ stream: Number(f[0]), kind, version: f[2]!, atMs: Number(f[3]) });
    } else if (event === 'nack') {
      if (nacks.length < 20) nacks.push(line);
    } else if (event === 'trace') trace.push(line);
    else if (event === 'listening') listening(Number(f[0]));
    else if (event === 'set' || event === 'dumped') pending.shift()?.resolve(f);
    else if (event === 'error') pending.shift()?.reject(new Error(`${name}: ${f.join(' ')}`));
  });
  const command = (line: string, timeoutMs: number): Promise<string[]> => {
    const done = new Promise<string[]>((resolve, reject) => pending.push({ resolve, reject }));
    child.stdin!.write(`${line}\n`);
    return withTimeout(done, timeoutMs, `${name} did not finish "${line}" within ${timeoutMs} ms`);
  };
  const boundPort = await withTimeout(
    Promise.race([port, exited.then((code) => Promise.reject(new Error(`${name} exited (${code}) before listening:\n${stderrTail.join('\n')}`)))]),
    60_000,
    `${name} did not listen within 60 s`,
  );
  return {
    name,
    pid,
    port: boundPort,
    acks,
    nacks,
    trace,
    // Ours answers with its snapshot's versions; go-control-plane serves the versions written in the dump.
    load: async (file) => {
      const reply = await command(`load ${file}`, 180_000);
      return name === 'ours' ? (JSON.parse(reply[0]!) as Versions) : dumpVersions(file);
    },
    dump: async (file) => void (await command(`dump ${file}`, 180_000)),
    rssKiB: () => procStatusKiB(pid, 'VmRSS'),
    hwmKiB: () => procStatusKiB(pid, 'VmHWM'),
    cpuSeconds: () => readCpuSeconds(pid),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.stdin!.end('quit\n');
      const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r('timeout'), 5_000))]);
      if (code === 'timeout') {
        process.kill(pid, 'SIGKILL');
        await exited;
      }
    },
  };
}

/**
 * Waits until the latest ACK of every kind (from any stream: one Envoy) is at `target`, and returns the
 * time the last of them arrived, or `sinceMs` when a kind was already at its target version before then.
 */
export async function waitAllAcked(peer: Peer, target: Versions, sinceMs: number, timeoutMs: number, kinds: readonly ResourceKind[] = KINDS): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const latest = new Map<ResourceKind, Ack>();
    for (const a of peer.acks) latest.set(a.kind, a);
    if (kinds.every((k) => latest.get(k)?.version === target[k])) {
      let last = sinceMs;
      for (const k of kinds) {
        // The first ACK of the target version (the latest may be a re-ACK of the same version).
        const first = peer.acks.find((a) => a.kind === k && a.version === target[k] && a.atMs >= sinceMs);
        if (first && first.atMs > last) last = first.atMs;
      }
      return last;
    }
    if (peer.nacks.length > 0) throw new Error(`${peer.name} got a NACK: ${peer.nacks[0]}`);
    if (Date.now() > deadline) {
      const have = kinds.map((k) => `${k}=${latest.get(k)?.version ?? '-'}/${target[k]}`).join(' ');
      throw new Error(`${peer.name}: not every type ACKed within ${timeoutMs} ms (acked/target: ${have})`);
    }
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** The per-kind versions in a dump file (what go-control-plane serves and ours had published). */
export async function dumpVersions(file: string): Promise<Versions> {
  const { readFile } = await import('node:fs/promises');
  const parsed = JSON.parse(await readFile(file, 'utf8')) as { versions: Record<string, string> };
  const out = {} as Versions;
  for (const k of KINDS) {
    const v = parsed.versions[TYPE_URLS[k]];
    if (v === undefined) throw new Error(`${file} has no version for ${k}`);
    out[k] = v;
  }
  return out;
}
