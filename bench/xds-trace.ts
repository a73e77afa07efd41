// A cold load into a real Envoy, traced: ours beside go-control-plane, as bench/scenarios/xds-envoy.ts runs it
// (a fresh control plane and a fresh Envoy, 0 hosts ACKed, then N hosts pushed), but with every ADS request and
// response stamped (STZ_BENCH_TRACE=1 / -trace) and laid out as a timeline from the push: load read, snapshot
// set, each type sent, the EDS request, each type ACKed; and Envoy's own log stamps of when the CDS response
// reached it and when it was done with it (component log levels upstream:info, config:debug: a few lines per
// response, beside both peers). With --cpu-prof, ours runs under node --cpu-prof and its samples are
// attributed to the steps of the timeline (by source file of the bundle, and by function).
// A diagnosis, not a measurement: nothing is written to bench/results; the numbers go to stdout.
//
// Each round also shows Envoy's CPU per thread (main, workers) with its page faults and context switches, and
// ours' CPU while Envoy takes the clusters in, split into its main thread and V8's helpers.
// With --odds, the rounds also estimate how often bench:xds's cold-load verdict (median of 5 rounds each, ours/Go
// ≤ 1.0) would pass on this machine (bench/lib/pass-odds.ts): for ours, and for a control plane that costs
// nothing (each round timed from its first CDS byte instead of from the push: Envoy's work and the wire only).
//
//   npx tsx bench/xds-trace.ts --sizes 5000 --rounds 3 [--peers ours,go-control-plane] [--cpu-prof DIR]
//                              [--node-flags F1,F2] [--no-build] [--verbose] [--odds]
import { copyFile, mkdir, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startEnvoy } from '../envoy-bootstrap/envoy.ts';
import { renderBootstrap } from '../envoy-bootstrap/render.ts';
import { buildBundles } from '../scripts/build.ts';
import { TYPE_URLS, type ResourceKind } from '../snapshots/type-urls.ts';
import { attributeSamples, bundleSources, type Profile } from './lib/cpu-profile.ts';
import { passOdds, seededRandom } from './lib/pass-odds.ts';
import { killStarted, track } from './lib/stack.ts';
import { epochNowMs, readCpuSeconds, sleep } from './lib/system.ts';
import { KINDS, startPeer, waitAllAcked, type PeerName, type Versions } from './lib/xds-peer.ts';
import { prepareXdsFiles } from './scenarios/xds-envoy.ts';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '5000' },
    rounds: { type: 'string', default: '3' },
    peers: { type: 'string', default: 'ours,go-control-plane' },
    'cpu-prof': { type: 'string' },
    // Node flags added to ours' production ones (an experiment: "--max-semi-space-size=8,--stack-size=2000").
    'node-flags': { type: 'string' },
    'no-build': { type: 'boolean', default: false },
    verbose: { type: 'boolean', default: false },
    odds: { type: 'boolean', default: false },
  },
});
const sizes = values.sizes.split(',').map(Number);
const rounds = Number(values.rounds);
const peers = values.peers.split(',') as PeerName[];
const cpuProfDir = values['cpu-prof'] ? path.resolve(values['cpu-prof']) : undefined;
const KIND_BY_NAME = new Map<string, ResourceKind>([...KINDS.map((k) => [k, k] as const), ...KINDS.map((k) => [TYPE_URLS[k] as string, k] as const)]);
const SHORT: Record<ResourceKind, string> = { cluster: 'CDS', endpoint: 'EDS', listener: 'LDS', route: 'RDS', extensionConfig: 'ECDS' };

interface Mark {
  label: string;
  atMs: number;
}

process.on('SIGINT', () => {
  killStarted('SIGKILL');
  process.exit(130);
});

/** The timeline of one round: each mark in ms after the push. */
function timeline(trace: string[], acks: { kind: ResourceKind; version: string; atMs: number }[], target: Versions, t0: number): Mark[] {
  const marks: Mark[] = [];
  const once = new Set<string>();
  const add = (label: string, atMs: number): void => {
    if (once.has(label) || atMs < t0) return;
    once.add(label);
    marks.push({ label, atMs: atMs - t0 });
  };
  let sets = 0;
  let cpuAtStart: number | undefined;
  let cpuAtCds: number | undefined;
  let mainAtCds: number | undefined;
  for (const line of trace) {
    const f = line.split(' ');
    const stamp = Number(f[f.length - 1]);
    // Ours stamps its own CPU time (µs) on each line: the CPU it spent from the load to its first CDS byte.
    const cpu = /cpu=(\d+)/.exec(line)?.[1];
    if (f[1] === 'load-start' && cpu !== undefined) cpuAtStart = Number(cpu);
    if (f[1] === 'response' && cpu !== undefined && cpuAtStart !== undefined && KIND_BY_NAME.get(f[3]!) === 'cluster' && f[4] === target.cluster && !once.has('cpu')) {
      once.add('cpu');
      cpuAtCds = Number(cpu);
      const main = /main=(\d+)/.exec(line)?.[1];
      mainAtCds = main === undefined ? undefined : Number(main);
      // Not a time: the CPU ms it took (shown in the ms column, first).
      marks.push({ label: 'ours: CPU ms spent from the load to the first CDS byte', atMs: -(Number(cpu) - cpuAtStart) / 1000 });
    }
    if (f[1] === 'request' && cpu !== undefined && cpuAtCds !== undefined && KIND_BY_NAME.get(f[3]!) === 'endpoint' && Number(/names=(\d+)/.exec(line)?.[1] ?? 0) > 1 && !once.has('cpu-cds')) {
      once.add('cpu-cds');
      // Ours' CPU while Envoy takes the clusters in, up to its EDS request (answered by then: ours stamps after).
      marks.push({ label: 'ours: CPU ms spent from the first CDS byte to the EDS answer', atMs: -(Number(cpu) - cpuAtCds) / 1000 });
      const main = Number(/main=(\d+)/.exec(line)?.[1]);
      if (mainAtCds !== undefined && Number.isFinite(main)) marks.push({ label: 'ours: of which the main thread (10 ms ticks)', atMs: -(main - mainAtCds) / 1000 });
    }
    if (f[1] === 'load-start') add('load read starts', stamp);
    else if (f[1] === 'snapshot-set' && stamp >= t0) add(`snapshot set #${++sets}`, stamp);
    else if (f[1] === 'response') {
      const kind = KIND_BY_NAME.get(f[3]!);
      if (kind && f[4] === target[kind]) add(`${SHORT[kind]} sent (${f[5]})`, stamp);
    } else if (f[1] === 'request') {
      const kind = KIND_BY_NAME.get(f[3]!);
      const names = Number(/names=(\d+)/.exec(line)?.[1] ?? 0);
      // The EDS request for the new clusters (ours stamps a request after answering it; Go on arrival).
      if (kind === 'endpoint' && names > 1) add(`EDS request (names=${names})`, stamp);
    }
  }
  for (const k of KINDS) {
    const a = acks.find((x) => x.kind === k && x.version === target[k] && x.atMs >= t0);
    if (a) add(`${SHORT[k]} ACKed`, a.atMs);
  }
  return marks.sort((a, b) => (a.atMs < 0 ? -Infinity : a.atMs) - (b.atMs < 0 ? -Infinity : b.atMs));
}

/** Envoy's log lines as marks: when the CDS response had reached it whole, and when it was done with it. */
function envoyMarks(lines: string[], t0: number): Mark[] {
  const marks: Mark[] = [];
  for (const line of lines) {
    const at = Date.parse(line.slice(0, line.indexOf(' ')));
    if (!Number.isFinite(at) || at < t0) continue;
    if (line.includes('Received gRPC message for type.googleapis.com/envoy.config.cluster.v3.Cluster') && !marks.some((m) => m.label.startsWith('Envoy: CDS received'))) marks.push({ label: 'Envoy: CDS received', atMs: at - t0 });
    else if (/ cds: added\/updated/.test(line) && !marks.some((m) => m.label.startsWith('Envoy: CDS processed'))) marks.push({ label: 'Envoy: CDS processed', atMs: at - t0 });
  }
  return marks;
}

/** Self time per step of the timeline: by source (file / package) and by function. */
async function attribute(profileFile: string, loadStartHrUs: number, loadStartEpochMs: number, t0: number, marks: Mark[]): Promise<void> {
  const profile = JSON.parse(await readFile(profileFile, 'utf8')) as Profile;
  const sourceOf = await bundleSources(path.join(REPO_ROOT, 'dist', 'bench', 'ours.mjs'));
  const toProfileUs = (msAfterT0: number): number => loadStartHrUs + (t0 + msAfterT0 - loadStartEpochMs) * 1000;
  const edges = [{ label: 'before the push', from: -Infinity, to: toProfileUs(0) }];
  let prev = 0;
  let prevLabel = 'push';
  for (const m of marks.filter((x) => x.atMs >= 0)) {
    edges.push({ label: `${prevLabel} → ${m.label}`, from: toProfileUs(prev), to: toProfileUs(m.atMs) });
    prev = m.atMs;
    prevLabel = m.label;
  }
  edges.push({ label: `after ${prevLabel}`, from: toProfileUs(prev), to: Infinity });
  const samples = attributeSamples(profile, sourceOf, edges.map((e, bucket) => ({ bucket, from: e.from, to: e.to })), edges.length);
  const buckets = edges.map((e, i) => ({ ...e, ...samples[i]! }));
  const top = (m: Map<string, number>, n: number): string =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, v]) => `${k} ${(v / 1000).toFixed(1)}`)
      .join('; ');
  for (const b of buckets.slice(1)) {
    if (b.busyUs < 1000) continue;
    process.stdout.write(`    [${b.label}] busy ${(b.busyUs / 1000).toFixed(1)} ms (GC ${(b.gcUs / 1000).toFixed(1)})\n`);
    process.stdout.write(`      by source: ${top(b.sources, 8)}\n`);
    process.stdout.write(`      by function: ${top(b.functions, 8)}\n`);
  }
}

/** Push → the last type ACKed, and the part of it from the peer's first CDS byte on (undefined if not traced). */
function coldOf(marks: Mark[]): { doneMs: number; fromCdsMs: number | undefined } {
  const doneMs = Math.max(...marks.filter((m) => m.label.endsWith(' ACKed')).map((m) => m.atMs));
  const cds = marks.find((m) => m.label.startsWith('CDS sent'));
  return { doneMs, fromCdsMs: cds ? doneMs - cds.atMs : undefined };
}

/** bench:xds's cold-load verdict, redrawn from these rounds: how often it would pass (see the header). */
function printOdds(all: Map<string, { marks: Mark[] }[]>): void {
  const options = { roundsPerRun: 5, draws: 20_000, bound: 1.0 };
  process.stdout.write(`\nOdds that bench:xds's verdict (median of ${options.roundsPerRun} rounds each, ours/Go ≤ ${options.bound}) passes, from these rounds (${options.draws} drawn runs):\n`);
  let both = { ours: 1, free: 1 };
  for (const hosts of sizes) {
    const ours = (all.get(`ours ${hosts}`) ?? []).map((r) => coldOf(r.marks));
    const go = (all.get(`go-control-plane ${hosts}`) ?? []).map((r) => coldOf(r.marks));
    if (ours.length === 0 || go.length === 0) continue;
    const free = [...ours, ...go].map((r) => r.fromCdsMs).filter((x): x is number => x !== undefined);
    const goDone = go.map((r) => r.doneMs);
    const oursOdds = passOdds(ours.map((r) => r.doneMs), goDone, { ...options, random: seededRandom(hosts) });
    const freeOdds = passOdds(free, goDone, { ...options, random: seededRandom(hosts + 1) });
    both = { ours: both.ours * oursOdds, free: both.free * freeOdds };
    const spread = (xs: number[]): string => `${Math.min(...xs).toFixed(0)}-${Math.max(...xs).toFixed(0)} ms`;
    const pre = (rs: { doneMs: number; fromCdsMs: number | undefined }[]): string => spread(rs.filter((r) => r.fromCdsMs !== undefined).map((r) => r.doneMs - r.fromCdsMs!));
    process.stdout.write(`  ${hosts} hosts: ours ${(oursOdds * 100).toFixed(0)} %, a control plane that costs nothing ${(freeOdds * 100).toFixed(0)} %`);
    process.stdout.write(` (Go's rounds ${spread(goDone)}; push → first CDS byte: ours ${pre(ours)}, Go ${pre(go)})\n`);
  }
  if (sizes.length > 1) process.stdout.write(`  every size in one run: ours ${(both.ours * 100).toFixed(0)} %, a control plane that costs nothing ${(both.free * 100).toFixed(0)} %\n`);
}

interface ThreadStat { name: string; utime: number; stime: number; minflt: number; vol: number; invol: number }
/** Per thread of a process: its name, CPU ticks (user, system), minor faults, context switches. */
async function threadStats(pid: number): Promise<Map<string, ThreadStat>> {
  const out = new Map<string, ThreadStat>();
  for (const tid of await readdir(`/proc/${pid}/task`)) {
    try {
      const stat = await readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const status = await readFile(`/proc/${pid}/task/${tid}/status`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const num = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
      out.set(tid, { name, utime: Number(f[11]), stime: Number(f[12]), minflt: Number(f[7]), vol: num('voluntary_ctxt_switches'), invol: num('nonvoluntary_ctxt_switches') });
    } catch {
      // The thread ended.
    }
  }
  return out;
}

function threadDelta(before: Map<string, ThreadStat>, after: Map<string, ThreadStat>): string {
  const groups = new Map<string, ThreadStat>();
  for (const [tid, a] of after) {
    const b = before.get(tid) ?? { name: a.name, utime: 0, stime: 0, minflt: 0, vol: 0, invol: 0 };
    const key = a.name.startsWith('wrk:') ? 'workers' : a.name;
    const g = groups.get(key) ?? { name: key, utime: 0, stime: 0, minflt: 0, vol: 0, invol: 0 };
    groups.set(key, { name: key, utime: g.utime + a.utime - b.utime, stime: g.stime + a.stime - b.stime, minflt: g.minflt + a.minflt - b.minflt, vol: g.vol + a.vol - b.vol, invol: g.invol + a.invol - b.invol });
  }
  return [...groups.values()].filter((g) => g.utime + g.stime > 0 || g.invol > 10).map((g) => `${g.name}: user ${g.utime * 10} ms sys ${g.stime * 10} ms faults ${g.minflt} cs ${g.vol}/${g.invol}`).join('; ');
}

async function main(): Promise<void> {
  if (!values['no-build']) await buildBundles(path.join(REPO_ROOT, 'dist'));
  const filterWasmPath = path.join(REPO_ROOT, 'filter', 'build', 'filter.wasm');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'stz-xds-trace-'));
  try {
    const files = await prepareXdsFiles({ sizes, changeSize: sizes[0]!, dir, filterWasmPath });
    const all = new Map<string, { marks: Mark[]; cpu: number; envoyCpu: number }[]>();
    let serial = 0;
    for (const hosts of sizes) {
      for (let round = 0; round < rounds; round++) {
        const order = round % 2 === 0 ? peers : [...peers].reverse();
        for (const name of order) {
          const pick = (f: { ours: string; go: string }): string => (name === 'ours' ? f.ours : f.go);
          const roundDir = path.join(dir, `round-${serial++}`);
          await mkdir(roundDir, { recursive: true });
          const configFile = path.join(roundDir, 'gateway.json');
          await copyFile(files.zero.ours, configFile);
          const profDir = cpuProfDir && name === 'ours' ? path.join(cpuProfDir, `${hosts}-${round}`) : undefined;
          if (profDir) await rm(profDir, { recursive: true, force: true });
          const peer = await startPeer(name, {
            configFile,
            stateDir: path.join(roundDir, 'state'),
            filterWasmPath,
            acks: true,
            trace: true,
            extraNodeFlags: [...(values['node-flags'] ? values['node-flags'].split(',') : []), ...(profDir ? ['--cpu-prof', '--cpu-prof-dir', profDir] : [])],
          });
          // Envoy's own word on when it took the clusters in: its CDS log lines, stamped to the ms (UTC).
          const envoyLog: string[] = [];
          const envoy = await startEnvoy({
            bootstrap: renderBootstrap({ nodeId: `bench-xds-trace-${serial}`, xdsAddress: '127.0.0.1', xdsPort: peer.port }),
            concurrency: 2,
            logLevel: 'error',
            componentLogLevel: 'upstream:info,config:debug',
            logFormat: '%Y-%m-%dT%T.%eZ %v',
            onLog: (line) => {
              // --verbose: every line of those components, to see what Envoy does between the marks.
              if (values.verbose || line.includes(' cds: ') || line.includes('Received gRPC message for')) envoyLog.push(line);
            },
          });
          track(envoy.pid, envoy.exited);
          let marks: Mark[];
          let cpu: number;
          let envoyCpu: number;
          let loadStart: string | undefined;
          try {
            const zeroTarget = await peer.load(pick(files.zero));
            await waitAllAcked(peer, zeroTarget, 0, 30_000, KINDS.filter((k) => k !== 'endpoint'));
            await sleep(300);
            const traceFrom = peer.trace.length;
            const cpu0 = await peer.cpuSeconds();
            const envoyCpu0 = await readCpuSeconds(envoy.pid);
            const threads0 = await threadStats(envoy.pid);
            const t0 = epochNowMs();
            const target = await peer.load(pick(files.base.get(hosts)!));
            await waitAllAcked(peer, target, t0, 300_000);
            cpu = (await peer.cpuSeconds()) - cpu0;
            envoyCpu = (await readCpuSeconds(envoy.pid)) - envoyCpu0;
            const envoyThreads = threadDelta(threads0, await threadStats(envoy.pid));
            await sleep(200);
            const trace = peer.trace.slice(traceFrom);
            marks = timeline(trace, peer.acks, target, t0);
            marks.push(...envoyMarks(envoyLog, t0));
            marks.sort((a, b) => (a.atMs < 0 ? -Infinity : a.atMs) - (b.atMs < 0 ? -Infinity : b.atMs));
            loadStart = trace.find((l) => l.startsWith('trace load-start'));
            if (values.verbose) {
              // Ours' trace lines and Envoy's log lines after the push, on one time line.
              const envoyLines = envoyLog.map((l) => ({ at: Date.parse(l.slice(0, l.indexOf(' '))), text: `envoy: ${l.slice(l.indexOf(' ') + 1).slice(0, 200)}` }));
              const ourLines = trace.map((l) => ({ at: Number(l.split(' ').at(-1)), text: l }));
              const all = [...ourLines, ...envoyLines.filter((l) => Number.isFinite(l.at) && l.at >= t0)].sort((a, b) => a.at - b.at);
              for (const l of all) process.stdout.write(`      ${(l.at - t0).toFixed(1).padStart(8)} ${l.text}\n`);
            }
            process.stdout.write(`${name} ${hosts} hosts round ${round + 1}: CPU ${cpu.toFixed(2)} s, Envoy's CPU ${envoyCpu.toFixed(2)} s\n`);
            process.stdout.write(`  Envoy's threads: ${envoyThreads}\n`);
            for (const m of marks) process.stdout.write(`  ${Math.abs(m.atMs).toFixed(1).padStart(8)} ms  ${m.label}\n`);
            if (profDir && loadStart) {
              await envoy.stop();
              await peer.stop();
              const profiles = (await readdir(profDir)).filter((f) => f.endsWith('.cpuprofile'));
              const fields = loadStart.split(' ');
              const hr = fields[2]!;
              const epoch = fields.at(-1)!;
              process.stdout.write(`    profile ${path.join(profDir, profiles[0] ?? '?')}, load read starts at ${hr} µs on its clock\n`);
              if (profiles.length === 1) await attribute(path.join(profDir, profiles[0]!), Number(hr), Number(epoch), t0, marks);
            }
          } finally {
            await envoy.stop();
            await peer.stop();
          }
          const key = `${name} ${hosts}`;
          all.set(key, [...(all.get(key) ?? []), { marks, cpu, envoyCpu }]);
        }
      }
    }
    process.stdout.write('\nMedians over rounds (ms after the push):\n');
    for (const [key, runs] of all) {
      const labels = [...new Set(runs.flatMap((r) => r.marks.map((m) => m.label.replace(/ \(.*\)$/, ''))))];
      const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
      const rows = labels
        .map((label) => ({ label, ms: med(runs.map((r) => r.marks.find((m) => m.label.replace(/ \(.*\)$/, '') === label)?.atMs).filter((x): x is number => x !== undefined)) }))
        .sort((a, b) => (a.ms < 0 ? -Infinity : a.ms) - (b.ms < 0 ? -Infinity : b.ms));
      process.stdout.write(`${key}: CPU ${med(runs.map((r) => r.cpu)).toFixed(2)} s, Envoy's CPU ${med(runs.map((r) => r.envoyCpu)).toFixed(2)} s\n`);
      for (const r of rows) process.stdout.write(`  ${Math.abs(r.ms).toFixed(1).padStart(8)}  ${r.label}\n`);
    }
    if (values.odds) printOdds(all);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

try {
  await main();
} finally {
  killStarted('SIGKILL');
}
