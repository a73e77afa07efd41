// `npm run bench:xds`: our control plane beside go-control-plane (bench/peer), on one real Envoy and on
// 500 simulated ones, interleaved in one run. Writes bench/results/<out>.json (the data) and <out>.md.
// Every wait is bounded; every process it starts is stopped by its pid, also on Ctrl-C.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ENVOY_BIN, assertEnvoyInstalled } from '../envoy-bootstrap/envoy.ts';
import { buildBundles } from '../scripts/build.ts';
import { killStarted, startedPids } from './lib/stack.ts';
import { distribution, round } from './lib/stats.ts';
import { QuietGate, watchForeignCpu, sleep } from './lib/system.ts';
import type { SimMode } from './lib/sim-envoy.ts';
import { GO_PEER_BIN, oursNodeEnv, oursNodeFlags, type PeerName } from './lib/xds-peer.ts';
import { XDS_SCHEMA_VERSION, renderXdsMarkdown, summarizePhase, type FleetSummary, type XdsResults } from './lib/xds-report.ts';
import { prepareXdsFiles, runXdsEnvoy } from './scenarios/xds-envoy.ts';
import { runXdsFleet } from './scenarios/xds-fleet.ts';

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const REPO_ROOT = path.join(BENCH_DIR, '..');
const QUIET_PERCENT = 25;

const HELP = `Usage: npm run bench:xds -- [options]

  --only LIST          envoy,fleet (default both)
  --sizes LIST         host counts for the real-Envoy cold load (default 100,1000,5000,10000)
  --rounds N           rounds per size and control plane, interleaved (default 5)
  --change-size N      hosts at which one host's endpoint is changed (default 1000; must be in --sizes)
  --changes N          one-host changes per round at the change size (default 20)
  --clients N          simulated Envoys (default 500)
  --fleet-hosts N      hosts the simulated Envoys are served (default 1000)
  --fleet-changes N    one-host changes to all simulated Envoys (default 20)
  --fleet-peers LIST   ours,go-control-plane (default both)
  --fleet-modes LIST   sotw,delta (default both; delta is skipped for a server without delta ADS)
  --quick              smoke run: sizes 100,1000, 1 round, 4 changes, 50 clients, 4 fleet changes
  --out NAME           results name in bench/results/ (default xds for a full default run, else xds-partial)
  --render NAME        only re-render bench/results/NAME.md from NAME.json
  --quiet-wait S       wait at most S seconds in all for other processes to go quiet (default 180)
  -h, --help
`;

const { values } = parseArgs({
  options: {
    only: { type: 'string' },
    sizes: { type: 'string' },
    rounds: { type: 'string' },
    'change-size': { type: 'string' },
    changes: { type: 'string' },
    clients: { type: 'string' },
    'fleet-hosts': { type: 'string' },
    'fleet-changes': { type: 'string' },
    'fleet-peers': { type: 'string' },
    'fleet-modes': { type: 'string' },
    quick: { type: 'boolean', default: false },
    out: { type: 'string' },
    render: { type: 'string' },
    'quiet-wait': { type: 'string', default: '180' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  process.stdout.write(HELP);
  process.exit(0);
}

function ints(name: string, raw: string | undefined, fallback: number[]): number[] {
  if (raw === undefined) return fallback;
  const list = raw.split(',').map((s) => Number(s.trim()));
  if (list.some((n) => !Number.isInteger(n) || n < 1 || n > 100_000)) throw new Error(`--${name}: positive integers up to 100,000, comma-separated`);
  return list;
}
const int = (name: string, raw: string | undefined, fallback: number): number => ints(name, raw, [fallback])[0]!;

const resultsDir = path.join(BENCH_DIR, 'results');
if (values.render) {
  const data = JSON.parse(await readFile(path.join(resultsDir, `${values.render}.json`), 'utf8')) as XdsResults;
  await writeFile(path.join(resultsDir, `${values.render}.md`), renderXdsMarkdown(data));
  process.stdout.write(`rendered bench/results/${values.render}.md\n`);
  process.exit(0);
}

const quick = values.quick;
const opts = {
  only: (values.only ?? 'envoy,fleet').split(','),
  sizes: ints('sizes', values.sizes, quick ? [100, 1000] : [100, 1000, 5000, 10000]),
  rounds: int('rounds', values.rounds, quick ? 1 : 5),
  changeSize: int('change-size', values['change-size'], 1000),
  changes: int('changes', values.changes, quick ? 4 : 20),
  clients: int('clients', values.clients, quick ? 50 : 500),
  fleetHosts: int('fleet-hosts', values['fleet-hosts'], 1000),
  fleetChanges: int('fleet-changes', values['fleet-changes'], quick ? 4 : 20),
  fleetPeers: (values['fleet-peers'] ?? 'ours,go-control-plane').split(',') as PeerName[],
  fleetModes: (values['fleet-modes'] ?? 'sotw,delta').split(',') as SimMode[],
  quietWaitS: int('quiet-wait', values['quiet-wait'], 180),
};
if (!opts.sizes.includes(opts.changeSize)) throw new Error(`--change-size ${opts.changeSize} must be one of --sizes`);
for (const m of opts.fleetModes) if (m !== 'sotw' && m !== 'delta') throw new Error(`--fleet-modes: unknown ${m}`);
for (const p of opts.fleetPeers) if (p !== 'ours' && p !== 'go-control-plane') throw new Error(`--fleet-peers: unknown ${p}`);
const fullRun = !quick && ['sizes', 'rounds', 'change-size', 'changes', 'clients', 'fleet-hosts', 'fleet-changes', 'fleet-peers', 'fleet-modes', 'only'].every((k) => values[k as keyof typeof values] === undefined);
const outName = values.out ?? (fullRun ? 'xds' : 'xds-partial');

const log = (line: string): void => void process.stdout.write(`${line}\n`);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    process.stderr.write(`\n${signal}: stopping ${startedPids.size} started process(es)\n`);
    killStarted('SIGKILL');
    process.exit(130);
  });
}

assertEnvoyInstalled();
const filterWasmPath = path.join(REPO_ROOT, 'filter', 'build', 'filter.wasm');
if (!existsSync(filterWasmPath)) throw new Error(`${filterWasmPath} is missing: run "npm run build:filter"`);
if (!existsSync(GO_PEER_BIN)) throw new Error(`${GO_PEER_BIN} is missing: run "bash bench/peer/build.sh" (npm run bench:xds does)`);
// Ours runs as production runs it, bundled (scripts/build.ts): built afresh here, so it is never a stale build.
await buildBundles(path.join(REPO_ROOT, 'dist'));

const sh = (file: string, args: string[]): string => {
  try {
    return execFileSync(file, args, { encoding: 'utf8', timeout: 30_000 }).trim();
  } catch (err) {
    return `unavailable (${(err as Error).message.split('\n')[0]})`;
  }
};
const startedAt = new Date().toISOString();
const machine: XdsResults['machine'] = {
  cpus: os.cpus().length,
  cpuModel: os.cpus()[0]?.model ?? 'unknown',
  memTotalMiB: Math.round(os.totalmem() / 1024 / 1024),
  node: process.version,
  envoy: sh(ENVOY_BIN, ['--version']).replace(/^.*version: /s, '').split('\n')[0] ?? '',
  go: sh('go', ['version']),
  goControlPlane: 'github.com/envoyproxy/go-control-plane v0.14.0 (bench/peer/go-control-plane/go.mod)',
  gitCommit: sh('git', ['-C', REPO_ROOT, 'rev-parse', '--short', 'HEAD']),
  gitDirty: sh('git', ['-C', REPO_ROOT, 'status', '--porcelain']) !== '',
  loadAverageAtStart: os.loadavg().map((v) => v.toFixed(2)).join(' '),
};
const notes: string[] = [];
const gate = new QuietGate(opts.quietWaitS, QUIET_PERCENT, log);
const runLook = await watchForeignCpu();
const dir = await mkdtemp(path.join(os.tmpdir(), 'stz-bench-xds-'));
const results: XdsResults = { schemaVersion: XDS_SCHEMA_VERSION, startedAt, finishedAt: '', machine, options: opts, envoy: [], fleet: [], notes };
try {
  if (opts.only.includes('envoy')) {
    log(`[bench:xds] one real Envoy each, sizes ${opts.sizes.join(', ')}, ${opts.rounds} rounds, ${opts.changes} changes per round at ${opts.changeSize}`);
    results.envoy = await runXdsEnvoy({ sizes: opts.sizes, rounds: opts.rounds, changeSize: opts.changeSize, changesPerRound: opts.changes, dir: path.join(dir, 'envoy'), filterWasmPath, gate, log });
    for (const r of results.envoy) {
      r.coldMs = round(r.coldMs);
      if (r.changeMs) r.changeMs = r.changeMs.map((v) => round(v));
    }
  }
  if (opts.only.includes('fleet')) {
    log(`[bench:xds] ${opts.clients} simulated Envoys, ${opts.fleetHosts} hosts, ${opts.fleetChanges} changes, on ${opts.fleetPeers.join(' and ')}, ${opts.fleetModes.join(' and ')}`);
    await sleep(1_000);
    const fleetDir = path.join(dir, 'fleet');
    const files = await prepareXdsFiles({ sizes: [opts.fleetHosts], changeSize: opts.fleetHosts, dir: fleetDir, filterWasmPath });
    const runs = opts.fleetModes.flatMap((mode) => opts.fleetPeers.map((peer) => ({ peer, mode })));
    const { results: raw, skipped } = await runXdsFleet({ runs, clients: opts.clients, hosts: opts.fleetHosts, changes: opts.fleetChanges, files, dir: fleetDir, filterWasmPath, gate, log });
    notes.push(...skipped);
    results.fleet = raw.map((f): FleetSummary => {
      const changeAllAckedMs = f.changes.map((c) => round(c.allAckedMs));
      return {
        peer: f.peer,
        mode: f.mode,
        clients: f.clients,
        hosts: f.hosts,
        rssIdleKiB: f.rssIdleKiB,
        hwmKiB: f.hwmKiB,
        cold: summarizePhase(f.cold.perClientMs, f.cold),
        changeAllAckedMs,
        changeAllAcked: distribution(changeAllAckedMs),
        changeCpuSecondsPerChange: round(f.changes.reduce((s, c) => s + c.cpuSeconds, 0) / f.changes.length),
        changeSimCpuSecondsPerChange: round(f.changes.reduce((s, c) => s + c.simCpuSeconds, 0) / f.changes.length),
        storm: summarizePhase(f.storm.perClientMs, f.storm),
        clientErrors: f.clientErrors,
        foreignPercent: f.foreignPercent,
      };
    });
  }
  const whole = await runLook();
  notes.push(`other processes used ${whole.percent}% of one core on average over the whole run (top: ${whole.top.map((t) => `${t.comm} ${t.percent}%`).join(', ') || 'none'})`);
  notes.push(`the machine's load average at the end: ${os.loadavg().map((v) => v.toFixed(2)).join(' ')}`);
  notes.push('Envoy\'s bootstrap asks both control planes for load reports (LRS): ours reads them (its idle signal), the Go peer asks for every cluster at the same interval (1 s) and drops them (bench/peer/go-control-plane/main.go, -lrs-interval-ms), so Envoy builds and sends the same reports beside both');
  const flags = oursNodeFlags().join(' ') || 'none';
  const env = Object.entries(oursNodeEnv()).map(([k, v]) => `${k}=${v}`).join(' ') || 'none';
  const custom = process.env.STZ_BENCH_NODE_FLAGS !== undefined || process.env.STZ_BENCH_NODE_ENV !== undefined;
  notes.push(`ours runs the esbuild bundle (dist/bench/ours.mjs, built by scripts/build.ts at the start of the run) under plain node, as the Go peer runs compiled, with node flags: ${flags}; environment: ${env} (${custom ? 'NOT the product\'s: set by STZ_BENCH_NODE_FLAGS / STZ_BENCH_NODE_ENV for a comparison' : 'the product\'s, xds-server/node-flags.ts'})`);
  notes.push('a one-host change in ours goes through the product\'s file reload (re-read and re-validate only the host entries whose text changed, then rebuild, re-hash and re-encode only what changed); the Go peer is handed ready-made encoded resources (ours\' dump), so its time is decode + SetSnapshot + serving');
  results.finishedAt = new Date().toISOString();
  await mkdir(resultsDir, { recursive: true });
  await writeFile(path.join(resultsDir, `${outName}.json`), `${JSON.stringify(results, null, 2)}\n`);
  await writeFile(path.join(resultsDir, `${outName}.md`), renderXdsMarkdown(results));
  log(`[bench:xds] wrote bench/results/${outName}.json and .md`);
} finally {
  killStarted('SIGKILL');
  await rm(dir, { recursive: true, force: true });
}
process.exit(0);
