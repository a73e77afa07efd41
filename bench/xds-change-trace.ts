// One-host changes into a real Envoy, traced: the series bench/scenarios/xds-envoy.ts measures (N hosts loaded,
// then host 0's endpoint port moved back and forth), with every ADS request and response stamped
// (STZ_BENCH_TRACE=1) so each change is split into load -> snapshot set -> EDS sent -> EDS ACKed, and ours' CPU
// per change read from its own stamps. With --cpu-prof, ours runs under node --cpu-prof and the samples of all
// changes are attributed to those steps (by source file of the bundle, and by function).
// A diagnosis, not a measurement: nothing is written to bench/results; the numbers go to stdout.
//
//   npx tsx bench/xds-change-trace.ts [--hosts 1000] [--changes 60] [--peers ours,go-control-plane]
//                                     [--cpu-prof DIR] [--no-build]
import { copyFile, mkdir, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startEnvoy } from '../envoy-bootstrap/envoy.ts';
import { renderBootstrap } from '../envoy-bootstrap/render.ts';
import { buildBundles } from '../scripts/build.ts';
import { TYPE_URLS } from '../snapshots/type-urls.ts';
import { attributeSamples, bundleSources, type Profile } from './lib/cpu-profile.ts';
import { killStarted, track } from './lib/stack.ts';
import { epochNowMs, sleep } from './lib/system.ts';
import { KINDS, startPeer, waitAllAcked, type PeerName } from './lib/xds-peer.ts';
import { prepareXdsFiles } from './scenarios/xds-envoy.ts';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    hosts: { type: 'string', default: '1000' },
    changes: { type: 'string', default: '60' },
    peers: { type: 'string', default: 'ours,go-control-plane' },
    'cpu-prof': { type: 'string' },
    'no-build': { type: 'boolean', default: false },
    // Also one line per change, to see where in the series the slow ones fall.
    verbose: { type: 'boolean', default: false },
  },
});
const hosts = Number(values.hosts);
const changes = Number(values.changes);
const peers = values.peers.split(',') as PeerName[];
const cpuProfDir = values['cpu-prof'] ? path.resolve(values['cpu-prof']) : undefined;
const EDS = TYPE_URLS.endpoint as string;

process.on('SIGINT', () => {
  killStarted('SIGKILL');
  process.exit(130);
});

interface Change {
  startMs: number;
  /** Ours only: CPU µs stamped on the load-start line. */
  cpuAtStartUs?: number;
  hrAtStartUs?: number;
  setMs?: number;
  edsSentMs?: number;
  edsCpuUs?: number;
  ackMs: number;
}

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};
const summary = (label: string, xs: number[]): string =>
  xs.length === 0 ? `${label}: none` : `${label} p50 ${pct(xs, 50).toFixed(1)} p90 ${pct(xs, 90).toFixed(1)} max ${Math.max(...xs).toFixed(1)}`;

/** A profile and the bundle's line-to-source map, read once: the same profile is attributed several times. */
const loadedProfiles = new Map<string, Promise<{ profile: Profile; sourceOf: (line: number) => string }>>();
function loadProfile(file: string): Promise<{ profile: Profile; sourceOf: (line: number) => string }> {
  let loaded = loadedProfiles.get(file);
  if (loaded === undefined) {
    loaded = (async () => ({
      profile: JSON.parse(await readFile(file, 'utf8')) as Profile,
      sourceOf: await bundleSources(path.join(REPO_ROOT, 'dist', 'bench', 'ours.mjs')),
    }))();
    loadedProfiles.set(file, loaded);
  }
  return loaded;
}

/** Main-thread time (and GC) of each change from its load to its ACK, from the one profile in `dir`. */
async function mainThreadPerChange(dir: string, series: Change[]): Promise<{ busyUs: number; gcUs: number }[] | undefined> {
  const profiles = (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile'));
  if (profiles.length !== 1 || series.some((c) => c.hrAtStartUs === undefined)) return undefined;
  const { profile, sourceOf } = await loadProfile(path.join(dir, profiles[0]!));
  const windows = series.map((c, i) => ({ bucket: i, from: c.hrAtStartUs!, to: c.hrAtStartUs! + (c.ackMs - c.startMs) * 1000 }));
  return attributeSamples(profile, sourceOf, windows, series.length);
}

/** Self time of all changes, per step: load -> set, set -> EDS sent, EDS sent -> ACK, ACK -> next load. */
async function attribute(profileFile: string, series: Change[]): Promise<Map<string, number>> {
  const { profile, sourceOf } = await loadProfile(profileFile);
  // Profile µs = hr µs at the load-start line + (epoch ms - that line's epoch ms) * 1000.
  const steps = ['load -> snapshot set', 'snapshot set -> EDS sent', 'EDS sent -> EDS ACKed', 'EDS ACKed -> next load'];
  const windows: { bucket: number; from: number; to: number }[] = [];
  series.forEach((c, i) => {
    const at = (ms: number): number => c.hrAtStartUs! + (ms - c.startMs) * 1000;
    const next = series[i + 1];
    const end = next ? next.hrAtStartUs! : at(c.ackMs + 300);
    const marks = [at(c.startMs), at(c.setMs ?? c.startMs), at(c.edsSentMs ?? c.ackMs), at(c.ackMs), end];
    for (let s = 0; s < 4; s++) windows.push({ bucket: s, from: marks[s]!, to: marks[s + 1]! });
  });
  const samples = attributeSamples(profile, sourceOf, windows, steps.length);
  const buckets = steps.map((label, i) => ({ label, ...samples[i]! }));
  const n = series.length;
  const top = (m: Map<string, number>, k: number): string =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, k)
      .map(([key, v]) => `${key} ${(v / 1000 / n).toFixed(2)}`)
      .join('; ');
  process.stdout.write(`  profile: ms of CPU per change (${n} changes), by step\n`);
  for (const b of buckets) {
    process.stdout.write(`    [${b.label}] busy ${(b.busyUs / 1000 / n).toFixed(2)} ms (GC ${(b.gcUs / 1000 / n).toFixed(2)})\n`);
    process.stdout.write(`      by source: ${top(b.sources, 10)}\n`);
    process.stdout.write(`      by function: ${top(b.functions, 14)}\n`);
  }
  // Every step together, per change: what a change costs by function.
  const all = new Map<string, number>();
  for (const b of buckets) for (const [k, v] of b.functions) all.set(k, (all.get(k) ?? 0) + v / n);
  return all;
}

async function runPeer(name: PeerName, files: Awaited<ReturnType<typeof prepareXdsFiles>>, dir: string, filterWasmPath: string): Promise<void> {
  const pick = (f: { ours: string; go: string }): string => (name === 'ours' ? f.ours : f.go);
  const roundDir = path.join(dir, `peer-${name}`);
  await mkdir(roundDir, { recursive: true });
  const configFile = path.join(roundDir, 'gateway.json');
  await copyFile(files.zero.ours, configFile);
  const profDir = cpuProfDir && name === 'ours' ? path.join(cpuProfDir, `change-${hosts}`) : undefined;
  if (profDir) await rm(profDir, { recursive: true, force: true });
  const peer = await startPeer(name, {
    configFile,
    stateDir: path.join(roundDir, 'state'),
    filterWasmPath,
    acks: true,
    trace: true,
    extraNodeFlags: profDir ? ['--cpu-prof', '--cpu-prof-dir', profDir, '--cpu-prof-interval', '200'] : [],
  });
  const envoy = await startEnvoy({ bootstrap: renderBootstrap({ nodeId: `bench-xds-change-trace-${name}`, xdsAddress: '127.0.0.1', xdsPort: peer.port }), concurrency: 2, logLevel: 'error' });
  track(envoy.pid, envoy.exited);
  const series: Change[] = [];
  let cpuPerChange: number;
  try {
    const zeroTarget = await peer.load(pick(files.zero));
    await waitAllAcked(peer, zeroTarget, 0, 30_000, KINDS.filter((k) => k !== 'endpoint'));
    const t0 = epochNowMs();
    await waitAllAcked(peer, await peer.load(pick(files.base.get(hosts)!)), t0, 300_000);
    await sleep(500);
    const c0 = await peer.cpuSeconds();
    for (let i = 0; i < changes; i++) {
      const file = i % 2 === 0 ? pick(files.changed) : pick(files.base.get(hosts)!);
      await sleep(100 + Math.random() * 50);
      const from = peer.trace.length;
      const start = epochNowMs();
      const target = await peer.load(file);
      const ackMs = await waitAllAcked(peer, target, start, 60_000);
      const lines = peer.trace.slice(from);
      const c: Change = { startMs: start, ackMs };
      for (const line of lines) {
        const f = line.split(' ');
        const stamp = Number(f.at(-1));
        const cpu = /cpu=(\d+)/.exec(line)?.[1];
        if (f[1] === 'load-start') {
          c.startMs = stamp;
          c.hrAtStartUs = Number(f[2]);
          if (cpu) c.cpuAtStartUs = Number(cpu);
        } else if (f[1] === 'snapshot-set' && c.setMs === undefined) c.setMs = stamp;
        else if (f[1] === 'response' && (f[3] === EDS || f[3] === 'endpoint') && f[4] === target.endpoint && c.edsSentMs === undefined) {
          c.edsSentMs = stamp;
          if (cpu) c.edsCpuUs = Number(cpu);
        }
      }
      series.push(c);
    }
    await sleep(300);
    cpuPerChange = ((await peer.cpuSeconds()) - c0) / changes;
  } finally {
    await envoy.stop();
    await peer.stop();
  }
  const d = (f: (c: Change) => number | undefined): number[] => series.map(f).filter((x): x is number => x !== undefined && Number.isFinite(x));
  process.stdout.write(`${name} ${hosts} hosts, ${changes} one-host changes: CPU ${(cpuPerChange * 1000).toFixed(1)} ms per change (/proc, everything)\n`);
  process.stdout.write(`  ${summary('load -> EDS ACKed (ms)', d((c) => c.ackMs - c.startMs))}\n`);
  process.stdout.write(`  ${summary('load -> snapshot set', d((c) => (c.setMs === undefined ? undefined : c.setMs - c.startMs)))}\n`);
  process.stdout.write(`  ${summary('load -> EDS sent', d((c) => (c.edsSentMs === undefined ? undefined : c.edsSentMs - c.startMs)))}\n`);
  process.stdout.write(`  ${summary('EDS sent -> ACKed', d((c) => (c.edsSentMs === undefined ? undefined : c.ackMs - c.edsSentMs)))}\n`);
  if (values.verbose) {
    // With a profile: each change's main-thread time and garbage collection from its load to its ACK, to tell
    // a slow change that collected from one that ran code not compiled yet.
    const perChange = profDir ? await mainThreadPerChange(profDir, series) : undefined;
    series.forEach((c, i) => {
      const cpu = c.edsCpuUs !== undefined && c.cpuAtStartUs !== undefined ? ` cpu ${((c.edsCpuUs - c.cpuAtStartUs) / 1000).toFixed(1)}` : '';
      const rel = (x: number | undefined): string => (x === undefined ? '-' : (x - c.startMs).toFixed(1));
      const main = perChange?.[i] ? ` main ${(perChange[i]!.busyUs / 1000).toFixed(1)} (GC ${(perChange[i]!.gcUs / 1000).toFixed(1)})` : '';
      // at: the load's start on the profile's clock (µs), to find the change in it.
      const at = c.hrAtStartUs !== undefined ? ` at ${c.hrAtStartUs}` : '';
      process.stdout.write(`    #${i} set ${rel(c.setMs)} eds ${rel(c.edsSentMs)} ack ${rel(c.ackMs)}${cpu}${main}${at}\n`);
    });
  }
  const cpuToEds = d((c) => (c.edsCpuUs === undefined || c.cpuAtStartUs === undefined ? undefined : (c.edsCpuUs - c.cpuAtStartUs) / 1000));
  if (cpuToEds.length) process.stdout.write(`  ${summary('ours CPU ms load -> EDS sent', cpuToEds)}\n`);
  if (profDir) {
    const profiles = (await readdir(profDir)).filter((f) => f.endsWith('.cpuprofile'));
    const traced = series.filter((c) => c.hrAtStartUs !== undefined);
    if (profiles.length === 1) {
      // The first changes of a fresh process run code the cold load never ran (lazily compiled, interpreted):
      // the series' tail. Apart from the rest.
      process.stdout.write('  the first change:\n');
      await attribute(path.join(profDir, profiles[0]!), traced.slice(0, 1));
      process.stdout.write('  changes 10 on:\n');
      const steady = await attribute(path.join(profDir, profiles[0]!), traced.slice(10));
      const first = await attribute(path.join(profDir, profiles[0]!), traced.slice(0, 1));
      const extra = [...first].map(([k, v]) => [k, v - (steady.get(k) ?? 0)] as const).sort((a, b) => b[1] - a[1]).slice(0, 25);
      process.stdout.write(`  the first change's CPU beyond a later one's, by function (ms): ${extra.map(([k, v]) => `${k} ${(v / 1000).toFixed(2)}`).join('; ')}\n`);
    }
  }
}

async function main(): Promise<void> {
  if (!values['no-build']) await buildBundles(path.join(REPO_ROOT, 'dist'));
  const filterWasmPath = path.join(REPO_ROOT, 'filter', 'build', 'filter.wasm');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'stz-xds-change-trace-'));
  try {
    const files = await prepareXdsFiles({ sizes: [hosts], changeSize: hosts, dir, filterWasmPath });
    for (const name of peers) await runPeer(name, files, dir, filterWasmPath);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

try {
  await main();
} finally {
  killStarted('SIGKILL');
}
