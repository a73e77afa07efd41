// `npm run bench:wake-cost` (issue 12): where the fixed cost of a wake goes, for one held request, split at
// the points the control plane can see: the wake asked (HostController.wake) → the release decided (the
// releasing snapshot set) → its ECDS response written → Envoy's ACK; and decision → the request at the
// upstream (an Envoy direct_response's START_TIME). Two gateways side by side, interleaved round by round:
// the control plane as shipped, and one with an option changed (--urgent-quiet-ms, the publisher's wait
// before an urgent push), so a change in the control plane's share is measured against the same noise.
// Writes bench/results/<out>.json and .md (default wake-cost).
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT } from '../envoy-bootstrap/envoy.ts';
import { DEFAULT_PUBLISHER_OPTIONS } from '../xds-server/publisher.ts';
import { runBenchmark } from './lib/stack.ts';
import { median, round } from './lib/stats.ts';
import { epochNowMs, runCommand } from './lib/system.ts';
import { startHeldBench, type HeldBench } from './scenarios/held.ts';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '30' },
    'urgent-quiet-ms': { type: 'string', default: '1' },  // the value before issue 12's change
    'trace-rounds': { type: 'string', default: '10' },
    out: { type: 'string', default: 'wake-cost' },
  },
});

interface Sample {
  wakeToDecisionMs: number;
  decisionToSentMs: number;
  sentToAckMs: number;
  decisionToUpstreamMs: number;
  wakeToUpstreamMs: number;
}

const STEPS: [keyof Sample, string][] = [
  ['wakeToDecisionMs', 'wake asked → release decided (snapshot set)'],
  ['decisionToSentMs', 'release decided → ECDS response written'],
  ['sentToAckMs', 'ECDS response written → Envoy ACK'],
  ['decisionToUpstreamMs', 'release decided → held request at the upstream'],
  ['wakeToUpstreamMs', 'wake asked → held request at the upstream'],
];

async function round1(bench: HeldBench, id: string): Promise<Sample> {
  let wokenAt = 0;
  const data = await bench.holdAndRelease(id, 1, 'envoy', { whileHeld: async () => void (wokenAt = epochNowMs()) });
  const s = data.summary;
  if (s.pushSentMs === null || s.ackMs === null || data.atUpstreamMs.length !== 1) throw new Error(`${id}: incomplete round ${JSON.stringify(s)}`);
  return {
    wakeToDecisionMs: data.decisionAt - wokenAt,
    decisionToSentMs: s.pushSentMs,
    sentToAckMs: s.ackMs - s.pushSentMs,
    decisionToUpstreamMs: data.atUpstreamMs[0]!,
    wakeToUpstreamMs: data.atUpstreamMs[0]! + data.decisionAt - wokenAt,
  };
}

/** What Envoy logs (debug, µs timestamps) at each step of applying a release, matched in order. */
const ENVOY_MARKS: [string, RegExp][] = [
  ['RDS received', /Received gRPC message for type\.googleapis\.com\/envoy\.config\.route\.v3\.RouteConfiguration/],
  ['ECDS received', /Received gRPC message for type\.googleapis\.com\/envoy\.config\.core\.v3\.TypedExtensionConfig/],
  ['validation VM created (main thread)', /Thread-Local Wasm created/],
  ['validation VM configured (main thread)', /applied generation/],
  ['worker applied it and resumed the request', /[1-9]\d* held request\(s\) to release/],
  ['request sent upstream (pool ready)', /pool ready/],
  ['ECDS accepted (the ACK follows)', /TypedExtensionConfig accepted/],
];
const TRACE_FORMAT = '[%T.%f][%t][%l][%n] %v';

function lineTime(line: string): number | undefined {
  const m = /^\[(\d\d):(\d\d):(\d\d\.\d+)\]/.exec(line);
  return m ? (Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3])) * 1000 : undefined;
}

/** One traced wake: the time of each mark after ECDS received (ms), from Envoy's own log. */
async function traceRound(bench: HeldBench, lines: string[], id: string): Promise<Record<string, number>> {
  let start = 0;
  await bench.holdAndRelease(id, 1, 'envoy', { whileHeld: async () => void (start = lines.length) });
  await new Promise((r) => setTimeout(r, 100));
  const times: Record<string, number> = {};
  let from = start;
  for (const [label, pattern] of ENVOY_MARKS) {
    for (let i = from; i < lines.length; i++) {
      if (!pattern.test(lines[i]!)) continue;
      const t = lineTime(lines[i]!);
      if (t !== undefined) times[label] = t;
      // Marks come in this order, except the RDS line, which comes before ECDS's.
      if (label !== 'RDS received') from = i;
      break;
    }
  }
  const base = times['ECDS received'];
  if (base === undefined) throw new Error(`${id}: no ECDS line in Envoy's log`);
  return Object.fromEntries(Object.entries(times).map(([k, v]) => [k, round(v - base, 3)]));
}

async function main(): Promise<void> {
  const rounds = Number(values.rounds);
  const changedQuiet = Number(values['urgent-quiet-ms']);
  const wasm = path.join(REPO_ROOT, 'filter', 'build', 'filter.wasm');
  const shipped = await startHeldBench(wasm, 'wake-shipped');
  const changed = await startHeldBench(wasm, 'wake-changed', { controlPlane: { publisher: { urgentQuietMs: changedQuiet } } });
  const samples: Record<'shipped' | 'changed', Sample[]> = { shipped: [], changed: [] };
  try {
    for (const b of [shipped, changed]) await round1(b, 'warm');
    for (let r = 1; r <= rounds; r++) {
      const order: ('shipped' | 'changed')[] = r % 2 === 1 ? ['shipped', 'changed'] : ['changed', 'shipped'];
      for (const which of order) samples[which].push(await round1(which === 'shipped' ? shipped : changed, `${which}-r${r}`));
    }
  } finally {
    await changed.close();
    await shipped.close();
  }
  // The Envoy side, from its own debug log with µs timestamps (a separate gateway: debug logging costs time).
  const traceRounds = Number(values['trace-rounds']);
  const envoyTrace: Record<string, number>[] = [];
  if (traceRounds > 0) {
    const lines: string[] = [];
    const traced = await startHeldBench(wasm, 'wake-traced', { envoyLog: { componentLogLevel: 'config:debug,wasm:debug,router:debug,pool:debug', logFormat: TRACE_FORMAT, onLog: (l) => lines.push(l) } });
    try {
      await round1(traced, 'warm');
      for (let r = 1; r <= traceRounds; r++) {
        envoyTrace.push(await traceRound(traced, lines, `traced-r${r}`));
        lines.length = 0;
      }
    } finally {
      await traced.close();
    }
  }
  const envoySteps = ENVOY_MARKS.map(([label]) => {
    const v = envoyTrace.map((t) => t[label]).filter((x): x is number => x !== undefined);
    return { label, medianMs: v.length > 0 ? round(median(v), 3) : null, rounds: v.length };
  });
  const med = (which: 'shipped' | 'changed', k: keyof Sample): number => round(median(samples[which].map((s) => s[k])), 2);
  const commit = (await runCommand('git', ['-C', REPO_ROOT, 'rev-parse', 'HEAD'])).stdout.trim();
  const out = path.isAbsolute(values.out!) ? values.out! : path.join(REPO_ROOT, 'bench', 'results', values.out!);
  const table = STEPS.map(([k, label]) => ({ step: k, label, shipped: med('shipped', k), changed: med('changed', k) }));
  await writeFile(`${out}.json`, JSON.stringify({ date: new Date().toISOString(), gitCommit: commit, rounds, urgentQuietMs: { shipped: DEFAULT_PUBLISHER_OPTIONS.urgentQuietMs, changed: changedQuiet }, table, samples, envoySteps, envoyTrace }, null, 2) + '\n');
  const md = [
    '# The fixed cost of a wake, step by step',
    '',
    `Run ${new Date().toISOString()} with \`npm run bench:wake-cost\` (bench/wake-cost.ts); git ${commit.slice(0, 12)}; 2 CPUs shared with other work. Two gateways (each its control plane in this process + Envoy \`--concurrency 2\`), interleaved, ${rounds} rounds each after one warm-up: one request held for a host in front of an Envoy \`direct_response\` upstream, then \`HostController.wake\` (what the admin API and the filter's wake call run; a manual host, so no process start).`,
    '',
    `**shipped**: the control plane as configured by default (urgent publish after ${DEFAULT_PUBLISHER_OPTIONS.urgentQuietMs} ms); **changed**: \`publisher.urgentQuietMs = ${changedQuiet}\`.`,
    '',
    '| step (median ms) | shipped | changed |',
    '|---|---|---|',
    ...table.map((t) => `| ${t.label} | ${t.shipped} | ${t.changed} |`),
    '',
    '## Inside Envoy',
    '',
    `A third gateway like *shipped*, with Envoy logging \`config\`, \`wasm\`, \`router\` and \`pool\` at debug with µs timestamps (which slows it a little), ${traceRounds} traced wakes. Median time of each step after Envoy received the ECDS response (the RDS response of the same push comes just before it):`,
    '',
    '| step (Envoy\'s log) | median ms after ECDS received | rounds |',
    '|---|---|---|',
    ...envoySteps.map((e) => `| ${e.label} | ${e.medianMs ?? '–'} | ${e.rounds} |`),
    '',
    '*Validation VM*: for every new plugin configuration Envoy first clones a throwaway VM on its main thread and runs the filter\'s start, on_vm_start and on_configure in it (proxy-wasm-cpp-host\'s canary); only if that succeeds are the workers given the config, and their on_configure releases. The time before the clone is Envoy building the new filter config (reading the Wasm file, the VM key, the clone itself).',
    '',
    'Stamps: the wake asked is taken just before the call; the decision is the cache\'s `snapshot-set` event; ECDS written and ACK are the ADS service\'s `response` and `ack` events for that version; the arrival is the upstream\'s `START_TIME` (system clock, checked against ours). Timings depend on what else runs on the machine.',
    '',
  ].join('\n');
  await writeFile(`${out}.md`, md);
  for (const t of table) process.stdout.write(`${t.label}: shipped ${t.shipped} ms, changed ${t.changed} ms\n`);
  for (const e of envoySteps) process.stdout.write(`envoy: ${e.label}: ${e.medianMs} ms after ECDS received (${e.rounds} rounds)\n`);
}

runBenchmark(main);
