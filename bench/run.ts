// `npm run bench`: the benchmark harness. Runs the scenarios (pass-through A/B, release latency, memory
// with held requests, cold start in file mode and in Kubernetes mode), then writes bench/results/<out>.json (the data model) and <out>.md (its rendering).
// Every wait is bounded; every process it starts is stopped by its pid, also on Ctrl-C.
import { existsSync, statSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ENVOY_BIN, assertEnvoyInstalled } from '../envoy-bootstrap/envoy.ts';
import { READABLE_SCHEMA_VERSIONS, SCHEMA_VERSION, type BenchResults, type UpstreamKind } from './lib/model.ts';
import { renderMarkdown } from './lib/render-markdown.ts';
import { killStarted, startedPids } from './lib/stack.ts';
import { QuietGate, ensureWrk, machineFacts, sleep } from './lib/system.ts';
import { evaluateTargets } from './lib/targets.ts';
import { runMemory } from './scenarios/memory.ts';
import { runPassthrough } from './scenarios/passthrough.ts';
import { runRelease } from './scenarios/release.ts';
import { runColdStart } from './scenarios/cold-start.ts';
import { assertKubeColdStartRunnable, runKubeColdStart } from './scenarios/kube-cold-start.ts';

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const REPO_ROOT = path.join(BENCH_DIR, '..');
const SCENARIOS = ['passthrough', 'release', 'memory', 'cold-start', 'kube-cold-start'] as const;
type Scenario = (typeof SCENARIOS)[number];
/** Other processes' CPU (% of one core) under which the machine counts as quiet enough to measure. */
const QUIET_PERCENT = 10;

const HELP = `Usage: npm run bench -- [options]

  --only LIST            scenarios to run, comma-separated: ${SCENARIOS.join(',')} (default: all);
                         kube-cold-start always runs cold-start too, so both modes come from one run
  --rounds N             pass-through rounds per variant (default 5)
  --duration S           seconds per pass-through round (default 8)
  --warmup S             warm-up seconds per variant (default 2)
  --connections N        wrk connections (default 32)
  --single-rounds N      release rounds with 1 held request, per upstream (default 30)
  --thousand-rounds N    release rounds with 1,000 held requests, per upstream (default 3)
  --big N                held requests in the memory scenario's big hold (default 10000)
  --cold-rounds N        cold starts through the process scaler (default 10)
  --kube-rounds N        cold starts in Kubernetes mode, after 1 warm-up (default 20, at most 200)
  --kube-state-batch-ms N     experiment: the control plane's watch-event batch in Kubernetes mode (product: 5)
  --kube-urgent-quiet-ms N    experiment: the publisher's wait before an urgent push (product: 0 = the next event-loop turn)
  --quick                a fast smoke run: 1 × 3 s rounds, 5 single rounds, 1 thousand round, big 2000
  --no-pin               do not pin processes to CPUs with taskset
  --out NAME             results file name in bench/results/ (default: latest for a full default run, else partial)
  --render NAME          only re-render bench/results/NAME.md from NAME.json (no measuring)
  --filter-wait S        wait up to S seconds for filter/build/filter.wasm to appear (default 600)
  --quiet-wait S         wait at most S seconds in all for other processes to go quiet before measuring (default 180)
  -h, --help             this text
`;

const { values } = parseArgs({
  options: {
    only: { type: 'string' },
    rounds: { type: 'string' },
    duration: { type: 'string' },
    warmup: { type: 'string' },
    connections: { type: 'string' },
    'single-rounds': { type: 'string' },
    'cold-rounds': { type: 'string' },
    'kube-rounds': { type: 'string' },
    'kube-state-batch-ms': { type: 'string' },
    'kube-urgent-quiet-ms': { type: 'string' },
    'thousand-rounds': { type: 'string' },
    big: { type: 'string' },
    quick: { type: 'boolean', default: false },
    'no-pin': { type: 'boolean', default: false },
    out: { type: 'string' },
    render: { type: 'string' },
    'filter-wait': { type: 'string', default: '600' },
    'quiet-wait': { type: 'string', default: '180' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (values.help) {
  process.stdout.write(HELP);
  process.exit(0);
}

function positiveInt(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) {
    process.stderr.write(`--${name} must be a positive integer, got "${raw}"\n${HELP}`);
    process.exit(2);
  }
  return n;
}

function nonNegativeInt(name: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) {
    process.stderr.write(`--${name} must be a non-negative integer, got "${raw}"\n${HELP}`);
    process.exit(2);
  }
  return n;
}

const quick = values.quick;
const opts = {
  rounds: positiveInt('rounds', values.rounds, quick ? 1 : 5),
  durationS: positiveInt('duration', values.duration, quick ? 3 : 8),
  warmupS: positiveInt('warmup', values.warmup, quick ? 1 : 2),
  connections: positiveInt('connections', values.connections, 32),
  singleRounds: positiveInt('single-rounds', values['single-rounds'], quick ? 5 : 30),
  coldRounds: positiveInt('cold-rounds', values['cold-rounds'], quick ? 3 : 10),
  kubeRounds: Math.min(200, positiveInt('kube-rounds', values['kube-rounds'], quick ? 3 : 20)),
  thousandRounds: positiveInt('thousand-rounds', values['thousand-rounds'], quick ? 1 : 3),
  big: positiveInt('big', values.big, quick ? 2000 : 10_000),
  filterWaitS: positiveInt('filter-wait', values['filter-wait'], 600),
  quietWaitS: positiveInt('quiet-wait', values['quiet-wait'], 180),
  pin: !values['no-pin'],
  kubeTuning: {
    ...(values['kube-state-batch-ms'] !== undefined ? { stateBatchMs: nonNegativeInt('kube-state-batch-ms', values['kube-state-batch-ms']) } : {}),
    ...(values['kube-urgent-quiet-ms'] !== undefined ? { publisherUrgentQuietMs: nonNegativeInt('kube-urgent-quiet-ms', values['kube-urgent-quiet-ms']) } : {}),
  },
};
const only = (values.only ?? SCENARIOS.join(',')).split(',').map((s) => s.trim()).filter(Boolean);
for (const s of only) {
  if (!(SCENARIOS as readonly string[]).includes(s)) {
    process.stderr.write(`unknown scenario "${s}"\n${HELP}`);
    process.exit(2);
  }
}
// The Kubernetes cold start is reported beside the file-mode one: both come from the same run.
if (only.includes('kube-cold-start') && !only.includes('cold-start')) only.push('cold-start');
const scenarios = SCENARIOS.filter((s) => only.includes(s));
// Only a full run with the default sizes may replace latest.*: that is what the README links to.
const isFullDefaultRun = scenarios.length === SCENARIOS.length && !quick && ['rounds', 'duration', 'warmup', 'connections', 'single-rounds', 'thousand-rounds', 'big', 'cold-rounds', 'kube-rounds', 'kube-state-batch-ms', 'kube-urgent-quiet-ms'].every((k) => values[k as keyof typeof values] === undefined) && !values['no-pin'];
const outName = values.out ?? (isFullDefaultRun ? 'latest' : 'partial');
if (!/^[A-Za-z0-9._-]+$/.test(outName)) {
  process.stderr.write(`--out must be a plain file name, got "${outName}"\n`);
  process.exit(2);
}

const t0 = performance.now();
const log = (line: string): void => {
  process.stdout.write(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${line}\n`);
};

// Ctrl-C or a kill: stop exactly the processes this run started (Envoys, wrk, the hold client), by pid.
let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    process.stderr.write(`\n${signal}: stopping ${startedPids.size} started process(es)\n`);
    killStarted('SIGTERM');
    setTimeout(() => process.exit(130), 2_000).unref();
  });
}

async function waitForFilter(file: string, timeoutS: number): Promise<void> {
  const deadline = Date.now() + timeoutS * 1000;
  let lastSize = -1;
  let announced = false;
  // Present and the same size on two looks a second apart: the compiler has finished writing it.
  for (;;) {
    const size = existsSync(file) ? statSync(file).size : -1;
    if (size > 0 && size === lastSize) return;
    if (Date.now() > deadline) throw new Error(`${file} did not appear within ${timeoutS} s; build it with "npm run build:filter"`);
    if (size <= 0 && !announced) {
      log(`waiting for ${path.relative(REPO_ROOT, file)} (build it with "npm run build:filter"); up to ${timeoutS} s`);
      announced = true;
    }
    lastSize = size;
    await sleep(1_000);
  }
}

/** Write-then-rename, so a reader (or a crash) never sees half a file. */
async function writeAtomically(file: string, text: string): Promise<void> {
  await writeFile(`${file}.tmp`, text);
  await rename(`${file}.tmp`, file);
}

async function main(): Promise<void> {
  if (values.render !== undefined) {
    // The Markdown is a pure rendering of the JSON, so it can be redone without measuring again.
    if (!/^[A-Za-z0-9._-]+$/.test(values.render)) throw new Error(`--render must be a plain file name, got "${values.render}"`);
    const base = path.join(BENCH_DIR, 'results', values.render);
    const data = JSON.parse(await readFile(`${base}.json`, 'utf8')) as BenchResults;
    if (!READABLE_SCHEMA_VERSIONS.includes(data.schemaVersion)) throw new Error(`${base}.json has schema ${data.schemaVersion}; this renderer reads ${READABLE_SCHEMA_VERSIONS.join(', ')}`);
    await writeAtomically(`${base}.md`, renderMarkdown(data));
    log(`rendered bench/results/${values.render}.md`);
    return;
  }
  assertEnvoyInstalled();
  // Before anything is measured: a missing binary must not cost the minutes of the other scenarios.
  if (scenarios.includes('kube-cold-start')) assertKubeColdStartRunnable();
  const filterWasmPath = process.env.STZ_FILTER_WASM ?? path.join(REPO_ROOT, 'filter', 'build', 'filter.wasm');
  await waitForFilter(filterWasmPath, opts.filterWaitS);
  const wrkBin = scenarios.includes('passthrough') ? await ensureWrk(log) : 'wrk';
  const startedAt = new Date().toISOString();
  const machine = await machineFacts(ENVOY_BIN, wrkBin, filterWasmPath, REPO_ROOT);
  log(`Envoy ${machine.envoyVersion}, Node ${machine.nodeVersion}, ${machine.nproc} CPUs; scenarios: ${scenarios.join(', ')}; results → bench/results/${outName}.{json,md}`);
  const notes: string[] = [];
  if (!machine.tasksetAvailable && opts.pin) notes.push('taskset is not available: nothing was pinned to a CPU');
  if (machine.nproc < 2 && opts.pin) notes.push(`only ${machine.nproc} CPU: pinning gateway and client to separate CPUs is impossible; pass-through numbers are not comparable to a 2-CPU run`);

  // The machine may be shared (other sessions run test suites): measure when the others are quiet, within
  // one bounded budget for the whole run, and say so in the results when they were not.
  const quiet = new QuietGate(opts.quietWaitS, QUIET_PERCENT, log);
  const waitQuiet = async (scenario: Scenario): Promise<void> => {
    const last = await quiet.wait(scenario);
    if (last.percent > QUIET_PERCENT) {
      const line = `${scenario}: started although other processes used ${last.percent}% CPU (${last.top.map((t) => `${t.comm} ${t.percent}%`).join(', ')}); the wait budget of ${opts.quietWaitS} s was spent`;
      notes.push(line);
      log(`warning: ${line}`);
    }
  };

  const results: Partial<BenchResults> = {};
  const pin = opts.pin && machine.tasksetAvailable && machine.nproc >= 2;
  if (scenarios.includes('passthrough')) {
    await waitQuiet('passthrough');
    log(`1. pass-through: ${opts.rounds} rounds × ${opts.durationS} s per variant, interleaved A,B`);
    results.passthrough = await runPassthrough({ wrkBin, filterWasmPath, rounds: opts.rounds, durationS: opts.durationS, warmupS: opts.warmupS, connections: opts.connections, pin, pinUpstream: true, quiet, log, notes });
    log(`   A/B throughput ${(results.passthrough.throughputRatio * 100).toFixed(1)} %`);
  }
  if (scenarios.includes('release')) {
    await waitQuiet('release');
    log(`2. release latency: 1 held × ${opts.singleRounds} rounds and 1,000 held × ${opts.thousandRounds} rounds, into each upstream`);
    results.release = await runRelease({
      filterWasmPath,
      cases: [
        { held: 1, rounds: opts.singleRounds, upstream: 'node' },
        { held: 1_000, rounds: opts.thousandRounds, upstream: 'node' },
        { held: 1, rounds: opts.singleRounds, upstream: 'envoy' },
        { held: 1_000, rounds: opts.thousandRounds, upstream: 'envoy' },
      ],
      log,
      notes,
    });
  }
  if (scenarios.includes('memory')) {
    await waitQuiet('memory');
    log(`3. memory: 0, 1,000 and ${opts.big.toLocaleString('en-US')} held`);
    const steps: { held: number; upstream: UpstreamKind }[] = opts.big > 1_000 ? [{ held: 1_000, upstream: 'node' }] : [];
    steps.push({ held: opts.big, upstream: 'node' }, { held: opts.big, upstream: 'envoy' });
    results.memory = await runMemory({ filterWasmPath, steps, log, notes });
  }

  if (scenarios.includes('cold-start')) {
    await waitQuiet('cold-start');
    log(`4. cold start through the process scaler: ${opts.coldRounds} rounds`);
    results.coldStart = await runColdStart({ filterWasmPath, rounds: opts.coldRounds, log });
    log(`   ready → first byte p50 ${results.coldStart.readyToFirstByteMs.p50.toFixed(1)} ms`);
  }
  if (scenarios.includes('kube-cold-start')) {
    await waitQuiet('kube-cold-start');
    log(`5. cold start in Kubernetes mode (local API server, kwok, pod servers): 1 warm-up + ${opts.kubeRounds} rounds`);
    if (Object.keys(opts.kubeTuning).length > 0) notes.push(`kube-cold-start: experiment with control-plane options that are not the product's defaults: ${JSON.stringify(opts.kubeTuning)}`);
    results.kubeColdStart = await runKubeColdStart({ filterWasmPath, rounds: opts.kubeRounds, tuning: opts.kubeTuning, log, notes });
    log(`   EndpointSlice ready → request at upstream p50 ${results.kubeColdStart.sliceReadyToAtUpstreamMs.p50.toFixed(1)} ms, p99 ${results.kubeColdStart.sliceReadyToAtUpstreamMs.p99.toFixed(1)} ms`);
  }

  const finishedAt = new Date().toISOString();
  const full: BenchResults = {
    schemaVersion: SCHEMA_VERSION,
    startedAt,
    finishedAt,
    durationS: Math.round((performance.now() - t0) / 100) / 10,
    command: ['npm run bench', ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2)] : [])].join(' '),
    machine,
    scenariosRun: scenarios,
    ...results,
    targets: evaluateTargets(results),
    notes,
  };
  const dir = path.join(BENCH_DIR, 'results');
  await mkdir(dir, { recursive: true });
  await writeAtomically(path.join(dir, `${outName}.json`), JSON.stringify(full, null, 2) + '\n');
  await writeAtomically(path.join(dir, `${outName}.md`), renderMarkdown(full));
  log(`wrote bench/results/${outName}.json and .md in ${full.durationS} s`);
  for (const t of full.targets) log(`  ${t.pass === null ? 'n/a ' : t.pass ? 'pass' : 'FAIL'}  ${t.description}: ${t.measured} ${t.unit} (target ${t.target}, ${t.level})`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
    killStarted('SIGTERM');
    process.exit(1);
  },
);
