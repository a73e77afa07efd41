// Where our control plane's memory goes, measured the way bench/scenarios/xds-envoy.ts measures its RSS:
// the bundled driver (dist/bench/ours.mjs, with CONTROL_PLANE_NODE_FLAGS), 0 hosts, one real Envoy ACKs
// everything, 300 ms, "idle"; then N hosts loaded, all ACKed, 300 ms, "loaded"; then RSS every second for
// --watch seconds (Envoy's load reports keep coming). Each point: VmRSS, RssAnon, RssFile, VmHWM, and from
// inside the process (the driver's `mem` command) V8's heap spaces and process.memoryUsage().
//
//   npx tsx bench/memory-probe.ts [--hosts 5000] [--rounds 3] [--watch 0] [--node-flag F]... [--env K=V]...
//                                 [--heap-snapshot DIR] [--smaps] [--plain] [--collect-after-load]
//
// --node-flag=--expose-gc adds the heap still in use after a full collection (which then changes what
// follows: for retention, not for RSS); with --collect-after-load too, a full collection runs as soon as
// the load is ACKed, before the 300 ms (what RSS would be with the load's garbage collected). --smaps:
// resident memory by kind of mapping.
//
// --node-flag / --env add node flags / environment for a comparison (e.g. --node-flag=--max-semi-space-size=4,
// --env MALLOC_ARENA_MAX=2); without them it measures what the product runs (--plain: without the product's
// own node flags and environment).
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startEnvoy } from '../envoy-bootstrap/envoy.ts';
import { renderBootstrap } from '../envoy-bootstrap/render.ts';
import { TYPE_URLS, type ResourceKind } from '../snapshots/type-urls.ts';
import { CONTROL_PLANE_NODE_ENV, CONTROL_PLANE_NODE_FLAGS } from '../xds-server/node-flags.ts';
import { writeXdsConfig } from './lib/xds-configs.ts';
import { readCpuSeconds, sleep } from './lib/system.ts';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    hosts: { type: 'string', default: '5000' },
    rounds: { type: 'string', default: '3' },
    watch: { type: 'string', default: '0' },
    'node-flag': { type: 'string', multiple: true, default: [] },
    env: { type: 'string', multiple: true, default: [] },
    'heap-snapshot': { type: 'string' },
    smaps: { type: 'boolean', default: false },
    plain: { type: 'boolean', default: false },
    'collect-after-load': { type: 'boolean', default: false },
  },
});
const hosts = Number(values.hosts);
const rounds = Number(values.rounds);
const watchSeconds = Number(values.watch);
// --plain: none of the product's node flags and environment (xds-server/node-flags.ts), for a before/after.
const productFlags = values.plain ? [] : [...CONTROL_PLANE_NODE_FLAGS];
const productEnv = values.plain ? {} : { ...CONTROL_PLANE_NODE_ENV };
const KINDS = Object.keys(TYPE_URLS) as ResourceKind[];
const KIND_BY_URL = new Map(KINDS.map((k) => [TYPE_URLS[k] as string, k]));
const MiB = (kib: number): string => (kib / 1024).toFixed(1);

interface Point {
  rss: number;
  anon: number;
  file: number;
  hwm: number;
  cpu: number;
  mem: { usage: NodeJS.MemoryUsage; spaces: Record<string, { size: number; used: number }>; liveHeap?: number };
}

async function status(pid: number): Promise<{ rss: number; anon: number; file: number; hwm: number }> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(text)![1]);
  return { rss: field('VmRSS'), anon: field('RssAnon'), file: field('RssFile') + field('RssShmem'), hwm: field('VmHWM') };
}

async function oneRound(round: number, dir: string, zero: string, loaded: string): Promise<{ idle: Point; loaded: Point; watch: number[] }> {
  const roundDir = await mkdtemp(path.join(dir, `round-${round}-`));
  const configFile = path.join(roundDir, 'gateway.json');
  await (await import('node:fs/promises')).copyFile(zero, configFile);
  const env = { ...process.env, ...productEnv };
  for (const kv of values.env!) {
    const i = kv.indexOf('=');
    env[kv.slice(0, i)] = kv.slice(i + 1);
  }
  const args = [...productFlags, ...values['node-flag']!, path.join(REPO_ROOT, 'dist/bench/ours.mjs'), '--config', configFile, '--state-dir', path.join(roundDir, 'state'), '--filter', path.join(REPO_ROOT, 'filter/build/filter.wasm')];
  const child = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'inherit'], env });
  const pid = child.pid!;
  const acked = new Map<ResourceKind, string>();
  const waiters: (() => void)[] = [];
  const replies: ((line: string) => void)[] = [];
  let port = 0;
  let listening!: () => void;
  const listen = new Promise<void>((r) => (listening = r));
  createInterface({ input: child.stdout! }).on('line', (line) => {
    // --trace-gc and the like: passed through.
    if (line.startsWith('[')) process.stderr.write(`${line}\n`);
    const [event, ...f] = line.split(' ');
    if (event === 'ack') {
      acked.set(KIND_BY_URL.get(f[1]!)!, f[2]!);
      for (const w of waiters.splice(0)) w();
    } else if (event === 'listening') {
      port = Number(f[0]);
      listening();
    } else if (event === 'set' || event === 'mem') replies.shift()!(f.join(' '));
    else if (event === 'error' || event === 'nack') throw new Error(line);
  });
  const command = (line: string): Promise<string> => {
    const p = new Promise<string>((r) => replies.push(r));
    child.stdin!.write(`${line}\n`);
    return p;
  };
  const load = async (file: string): Promise<Record<ResourceKind, string>> => JSON.parse((await command(`load ${file}`)).split(' ')[0]!) as Record<ResourceKind, string>;
  const waitAcked = async (target: Record<ResourceKind, string>, kinds: ResourceKind[]): Promise<void> => {
    while (!kinds.every((k) => acked.get(k) === target[k])) await new Promise<void>((r) => waiters.push(r));
  };
  const point = async (snapshot?: string): Promise<Point> => {
    if (values.smaps) process.stderr.write(await smapsSummary(pid));
    const s = await status(pid);
    const cpu = await readCpuSeconds(pid);
    const mem = JSON.parse(await command(snapshot ? `mem ${snapshot}` : 'mem')) as Point['mem'];
    return { ...s, cpu, mem };
  };
  await listen;
  let envoy: Awaited<ReturnType<typeof startEnvoy>> | undefined;
  try {
    const zeroTarget = await load(zero);
    envoy = await startEnvoy({ bootstrap: renderBootstrap({ nodeId: `mem-probe-${round}`, xdsAddress: '127.0.0.1', xdsPort: port }), concurrency: 2, logLevel: 'error' });
    await waitAcked(zeroTarget, KINDS.filter((k) => k !== 'endpoint'));
    await sleep(300);
    process.stderr.write('--- idle point\n');
    const idle = await point(values['heap-snapshot'] ? path.join(values['heap-snapshot'], `idle-${round}.heapsnapshot`) : undefined);
    process.stderr.write('--- load\n');
    const target = await load(loaded);
    await waitAcked(target, KINDS);
    // What a full collection right after the load would leave (the driver collects in `mem` with --expose-gc).
    if (values['collect-after-load']) await command('mem');
    await sleep(300);
    process.stderr.write('--- loaded point\n');
    const loadedPoint = await point(values['heap-snapshot'] ? path.join(values['heap-snapshot'], `loaded-${round}.heapsnapshot`) : undefined);
    const watch: number[] = [];
    for (let i = 0; i < watchSeconds; i++) {
      await sleep(1000);
      watch.push((await status(pid)).rss);
    }
    return { idle, loaded: loadedPoint, watch };
  } finally {
    await envoy?.stop();
    child.stdin!.end('quit\n');
    await new Promise((r) => child.once('exit', r));
  }
}

/** Resident anonymous memory by kind of mapping: [heap] (malloc's main arena), thread stacks, the rest by size. */
async function smapsSummary(pid: number): Promise<string> {
  const text = await readFile(`/proc/${pid}/smaps`, 'utf8');
  const sums = new Map<string, { rss: number; count: number }>();
  let label = '';
  for (const line of text.split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      const size = (parseInt(head[2]!, 16) - parseInt(head[1]!, 16)) / 1024;
      const name = head[4]!;
      label = name ? (name.startsWith('/') ? `file ${path.basename(name)} ${head[3]}` : name) : `anon ${head[3]} ${size >= 65536 ? '>=64M' : size >= 8192 ? '8-64M' : size >= 1024 ? '1-8M' : size >= 256 ? '256K-1M' : '<256K'}`;
      continue;
    }
    const rss = /^Rss:\s+(\d+)/.exec(line);
    if (rss) {
      const s = sums.get(label) ?? { rss: 0, count: 0 };
      s.rss += Number(rss[1]);
      s.count += 1;
      sums.set(label, s);
    }
  }
  return [...sums].filter(([, s]) => s.rss >= 512).sort((a, b) => b[1].rss - a[1].rss).map(([k, s]) => `    smaps ${MiB(s.rss).padStart(6)} MiB ${String(s.count).padStart(4)}x ${k}\n`).join('');
}

function describe(label: string, p: Point): string {
  const spaces = Object.entries(p.mem.spaces)
    .filter(([, s]) => s.size > 0)
    .map(([name, s]) => `${name.replace('_space', '')} ${MiB(s.size / 1024)}/${MiB(s.used / 1024)}`)
    .join(', ');
  const u = p.mem.usage;
  return `${label}: VmRSS ${MiB(p.rss)} (anon ${MiB(p.anon)}, file ${MiB(p.file)}), HWM ${MiB(p.hwm)}, CPU ${p.cpu.toFixed(2)} s; heapTotal ${MiB(u.heapTotal / 1024)} used ${MiB(u.heapUsed / 1024)} external ${MiB(u.external / 1024)} arrayBuffers ${MiB(u.arrayBuffers / 1024)}${p.mem.liveHeap !== undefined ? `; live after a full GC ${MiB(p.mem.liveHeap / 1024)}` : ''}\n    spaces (committed/used MiB): ${spaces}`;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;

const dir = await mkdtemp(path.join(os.tmpdir(), 'stz-mem-probe-'));
if (values['heap-snapshot']) await mkdir(values['heap-snapshot'], { recursive: true });
try {
  const zero = await writeXdsConfig(dir, 0);
  const loaded = await writeXdsConfig(dir, hosts);
  const results: Awaited<ReturnType<typeof oneRound>>[] = [];
  const envText = [...Object.entries(productEnv).map(([k, v]) => `${k}=${v}`), ...values.env!].join(' ');
  process.stdout.write(`flags: ${[...productFlags, ...values['node-flag']!].join(' ') || '(none)'}; env: ${envText || '(none)'}; ${hosts} hosts\n`);
  for (let r = 0; r < rounds; r++) {
    const res = await oneRound(r, dir, zero, loaded);
    results.push(res);
    process.stdout.write(`round ${r + 1}\n  ${describe('idle', res.idle)}\n  ${describe('loaded', res.loaded)}\n`);
    if (res.watch.length) process.stdout.write(`  watch VmRSS: ${res.watch.map(MiB).join(' ')}\n`);
  }
  const m = (f: (x: (typeof results)[number]) => number): string => MiB(median(results.map(f)));
  process.stdout.write(`median of ${rounds}: idle VmRSS ${m((x) => x.idle.rss)} (anon ${m((x) => x.idle.anon)}, file ${m((x) => x.idle.file)}); loaded VmRSS ${m((x) => x.loaded.rss)} (anon ${m((x) => x.loaded.anon)}, file ${m((x) => x.loaded.file)}), HWM ${m((x) => x.loaded.hwm)}; CPU of the load (idle point to loaded point) ${median(results.map((x) => x.loaded.cpu - x.idle.cpu)).toFixed(2)} s${results[0]!.loaded.mem.liveHeap !== undefined ? `; live heap idle ${m((x) => x.idle.mem.liveHeap! / 1024)} loaded ${m((x) => x.loaded.mem.liveHeap! / 1024)}` : ''}\n`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
