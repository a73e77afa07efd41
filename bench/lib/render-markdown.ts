// Renders the results model as bench/results/latest.md. Reads only the model: every number shown is in
// latest.json; the prose here only explains what the numbers mean.
import type { BenchResults, ReleaseCase, TargetCheck } from './model.ts';
import { median } from './stats.ts';

type Cell = string | number | boolean | null | undefined;

function round(v: number): number {
  return Math.round(v * 10) / 10;
}

function table(header: string[], rows: Cell[][]): string {
  const fmt = (c: Cell): string => (c === null || c === undefined ? '–' : typeof c === 'boolean' ? (c ? 'yes' : 'no') : String(c)).replace(/\|/g, '\\|');
  return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.map(fmt).join(' | ')} |`)].join('\n');
}

const int = (n: number): string => Math.round(n).toLocaleString('en-US');
const ms = (n: number | null | undefined): string => (n === null || n === undefined ? '–' : n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : n.toFixed(0));
const us = (n: number): string => (n >= 1000 ? `${(n / 1000).toFixed(2)} ms` : `${n} µs`);
const verdict = (t: TargetCheck): string => (t.pass === null ? 'n/a' : t.pass ? '**pass**' : '**FAIL**');
const statuses = (s: Record<string, number>): string => Object.entries(s).map(([k, v]) => `${k}×${v}`).join(', ') || 'none';
const upstreamName = (c: { upstream: string }): string => (c.upstream === 'node' ? 'demo upstream (Node)' : 'Envoy direct_response');

export function renderMarkdown(r: BenchResults): string {
  const out: string[] = [];
  const m = r.machine;
  out.push('# Benchmark results', '');
  out.push(`Run ${r.startedAt} → ${r.finishedAt} (${Math.round(r.durationS)} s) with \`${r.command}\`; scenarios: ${r.scenariosRun.join(', ')}.`, '');
  out.push('Produced by `npm run bench` (bench/run.ts); the same data, with every sample summary, is in the `.json` file of the same name. How to rerun: bench/README.md.', '');

  out.push('## Machine', '');
  out.push(
    table(
      ['fact', 'value'],
      [
        ['date', m.date],
        ['nproc', m.nproc],
        ['CPU', m.cpuModel],
        ['memory', `${m.memTotalMiB} MiB`],
        ['kernel', m.kernel],
        ['Envoy', m.envoyVersion],
        ['Node.js', m.nodeVersion],
        ['wrk', m.wrkVersion],
        ['taskset', m.tasksetAvailable],
        ['open-file limit', m.openFileLimit],
        ['git commit', `${m.gitCommit}${m.gitDirty ? ' (working tree has uncommitted changes)' : ''}`],
        ['filter.wasm', `${m.filterWasmBytes} bytes, sha256 ${m.filterWasmSha256.slice(0, 16)}…`],
      ],
    ),
    '',
  );

  out.push('## Targets', '');
  if (r.targets.length === 0) out.push('No scenario with targets ran.', '');
  else {
    out.push(
      table(
        ['scenario', 'what', 'kind', 'target', 'measured', 'result'],
        r.targets.map((t) => [t.scenario, t.description, t.level, t.target, t.unit === 'bool' ? (t.measured === 1 ? 'yes' : 'no') : `${t.measured ?? '–'} ${t.unit}`, verdict(t)]),
      ),
      '',
    );
    out.push('*issue* = what the issue asks for; *goal* = the project\'s stricter aim; *check* = must hold.', '');
  }

  if (r.passthrough) {
    const p = r.passthrough;
    const s = p.settings;
    out.push('## 1. Pass-through throughput and latency (READY host)', '');
    out.push(
      `Same Envoy binary, \`--concurrency ${s.gatewayConcurrency}\` for both gateways; upstream: a third Envoy answering with direct_response. ` +
        `wrk \`-t${s.wrkThreads} -c${s.connections}\`, ${s.rounds} rounds × ${s.durationS} s per variant, interleaved ${s.order}. ` +
        (s.pinning.gateways === null
          ? 'Not pinned to CPUs.'
          : `Pinned: gateways on CPU ${s.pinning.gateways}, wrk on CPU ${s.pinning.wrk}, upstream ${s.pinning.upstream === null ? 'not pinned' : `on CPU ${s.pinning.upstream}`}.`),
      '',
    );
    out.push('- **A** — our gateway: Envoy configured by our control plane; the buffer filter is in the HCM but disabled on the route (the product\'s fast path).');
    out.push('- **B** — the same listener/route/cluster rendered from `buildSnapshot` as a static config, with no Wasm filter at all.', '');
    out.push(
      table(
        ['variant', 'median req/s', 'p50', 'p90', 'p99', 'gateway CPU', 'req/s per gateway core'],
        [p.a, p.b].map((v) => [`**${v.id}** ${v.label}`, int(v.medianRequestsPerSecond), us(v.medianLatencyUs.p50), us(v.medianLatencyUs.p90), us(v.medianLatencyUs.p99), `${v.medianGatewayCpuPercent} %`, int(v.medianRequestsPerCoreSecond)]),
      ),
      '',
    );
    const pct = (x: number): string => `${(x * 100).toFixed(1)} %`;
    out.push(
      `**A/B throughput: ${pct(p.throughputRatio)}** (median req/s of A ÷ median req/s of B; this is what the target is judged on). ` +
        `A/B of each interleaved pair: ${p.pairRatios.map(pct).join(', ')}; their median: ${pct(p.medianPairRatio)}. ` +
        `A/B of req/s per gateway core: ${pct(p.efficiencyRatio)}. The spread of the pairs is this machine's round-to-round noise.`,
      '',
    );
    out.push('Latencies are the median over rounds of each round\'s wrk percentile. Every round:', '');
    const rounds = p.a.rounds.flatMap((a, i) => {
      const b = p.b.rounds[i];
      const row = (v: 'A' | 'B', x: typeof a): Cell[] => [x.round, v, int(x.requestsPerSecond), us(x.latencyUs.p50), us(x.latencyUs.p90), us(x.latencyUs.p99), us(x.latencyUs.max), `${x.gatewayCpuPercent} %`, `${x.upstreamCpuPercent} %`, `${x.otherCpuPercent} %`, Object.values(x.errors).reduce((s2, n) => s2 + n, 0)];
      return b ? [row('A', a), row('B', b)] : [row('A', a)];
    });
    out.push(table(['round', 'variant', 'req/s', 'p50', 'p90', 'p99', 'max', 'gateway CPU', 'upstream CPU', 'other processes CPU', 'wrk errors'], rounds), '');
    if (p.discarded.length > 0) {
      out.push(`${p.discarded.length / 2} pair(s) were measured again because other processes were busy during them (kept in the JSON under \`passthrough.discarded\`).`, '');
    }
    out.push(`Checks: A accepted the buffer filter's ECDS config ${p.checks.aFilterConfigReloads} time(s); B's listeners contain no Wasm: ${p.checks.bHasNoWasm ? 'yes' : 'NO'}.`, '');
  }

  if (r.release) {
    const rel = r.release;
    out.push('## 2. Release latency', '');
    out.push(
      'From the control plane\'s decision to release (the `snapshot-set` event of the wake\'s snapshot) to each held request reaching the upstream. ' +
        `Envoy \`--concurrency ${rel.settings.envoyConcurrency}\`; the requests are held by a separate client process (bench/hold-client.ts), one HTTP/1.1 connection each. ` +
        'Two upstreams: the demo upstream (Node, in the measuring process, arrival = its `receivedAt`, same clock as the decision) and an Envoy answering with direct_response ' +
        '(arrival = its `START_TIME`, system clock).',
      '',
    );
    out.push(
      `Clock check of the Envoy upstream against the harness (${rel.clockCheck.samples} direct requests): smallest send→start ${rel.clockCheck.minLeadMs} ms, start→answer ${rel.clockCheck.minLagMs} ms ` +
        `(${rel.clockCheck.consistent ? 'consistent' : 'INCONSISTENT: the Envoy-upstream numbers are off by about that much'}).`,
      '',
    );
    out.push(
      table(
        ['held', 'upstream', 'rounds', 'requests', 'p50', 'p90', 'p99', 'max', 'decision → ECDS sent (median)', 'decision → ACK (median)', 'all 200'],
        rel.cases.map((c) => [int(c.held), upstreamName(c), c.rounds.length, int(c.atUpstreamMs.count), ms(c.atUpstreamMs.p50), ms(c.atUpstreamMs.p90), ms(c.atUpstreamMs.p99), ms(c.atUpstreamMs.max), ms(medianOf(c, 'pushSentMs')), ms(medianOf(c, 'ackMs')), c.allAnswered200]),
      ),
      '',
    );
    out.push('All times in ms. Percentiles are nearest-rank over every request of every round (with 30 samples, p99 is the maximum).', '');
    const multi = rel.cases.filter((c) => c.held > 1);
    if (multi.length > 0) {
      out.push('Rounds with many held requests:', '');
      out.push(
        table(
          ['held', 'upstream', 'round', 'ECDS sent', 'ACK', 'first at upstream', 'last at upstream', 'longest pause between arrivals', 'last answer at client', 'answers'],
          multi.flatMap((c) => c.rounds.map((x) => [int(c.held), upstreamName(c), x.round, ms(x.pushSentMs), ms(x.ackMs), ms(x.firstAtUpstreamMs), ms(x.lastAtUpstreamMs), ms(x.largestGapMs), ms(x.lastAnsweredMs), statuses(x.statuses)])),
        ),
        '',
      );
    }
    const answered = rel.cases.filter((c) => c.answeredMs);
    if (answered.length > 0) {
      out.push('Decision → answer seen by the hold client (another process; same epoch clock, read there):', '');
      out.push(table(['held', 'upstream', 'p50', 'p99', 'max'], answered.map((c) => [int(c.held), upstreamName(c), ms(c.answeredMs!.p50), ms(c.answeredMs!.p99), ms(c.answeredMs!.max)])), '');
    }
  }

  if (r.memory) {
    const mem = r.memory;
    out.push('## 3. Envoy memory with held requests', '');
    out.push(`Envoy \`--concurrency ${mem.settings.envoyConcurrency}\`, maxHeld ${int(mem.settings.maxHeldPerWorker)} per worker, holdTimeoutMs ${int(mem.settings.holdTimeoutMs)}; RSS = VmRSS of the Envoy process.`, '');
    out.push(table(['moment', 'held gauge', 'Envoy RSS (MiB)'], mem.points.map((p) => [p.label, int(p.heldGauge), p.rssMiB.toFixed(1)])), '');
    out.push(`About **${mem.kibPerHeldRequest} KiB per held request** ((RSS at the first ${int(mem.settings.held)}-request hold − fresh RSS) ÷ ${int(mem.settings.held)}). Envoy keeps memory after a release, so later rows start higher.`, '');
    out.push(
      table(
        ['released', 'into', 'answered 200', 'other answers / errors', 'decision → last at upstream', 'decision → last answer at client', 'p50 at upstream', 'p99 at upstream', 'Envoy running', 'Envoy LIVE'],
        mem.bigReleases.map((b) => [int(b.held), upstreamName(b), int(b.answered200), `${statuses(Object.fromEntries(Object.entries(b.statuses).filter(([k]) => k !== '200')))}; ${statuses(b.clientErrors)}`, `${ms(b.lastAtUpstreamMs)} ms`, `${ms(b.lastAnsweredMs)} ms`, `${ms(b.atUpstreamMs?.p50)} ms`, `${ms(b.atUpstreamMs?.p99)} ms`, b.envoyRunningAfter, b.envoyLiveAfter]),
      ),
      '',
    );
    for (const b of mem.bigReleases) {
      const failures = Object.entries(b.failures);
      out.push(
        `Releasing ${int(b.held)} into the ${upstreamName(b)}: gateway cluster stats over the release: ` +
          `${Object.entries(b.clusterStats).map(([k, v]) => `\`${k}\` ${v}`).join(', ') || 'no change'}. ` +
          `Sockets: ${int(b.openFiles.downstream)} held downstream connections + ${int(b.openFiles.newUpstreamConnections)} upstream connections opened during the release (at most that many open at once), ` +
          `against the gateway Envoy's open-file limit of ${b.openFiles.envoyLimit === null ? 'unknown' : int(b.openFiles.envoyLimit)}.` +
          (failures.length > 0 ? ` Failed answers: ${failures.map(([k, v]) => `${v} × "${k}"`).join('; ')}.` : '') +
          (b.envoyLog.length > 0 ? ` Envoy logged: ${b.envoyLog.map((l) => `\`${l.slice(0, 200)}\``).join(' ')}` : ''),
        '',
      );
    }
    out.push(`Filter counters at the end: ${Object.entries(mem.filterCounters).map(([k, v]) => `\`${k}\` ${v}`).join(', ')}.`, '');
  }

  if (r.coldStart) {
    const c = r.coldStart;
    out.push('## 4. Cold start through the process scaler', '');
    out.push(
      'The demo upstream (Node) is stopped; one request arrives; the control plane starts the process, health-checks it every 2 ms, pushes the release, and the held request goes through. Envoy `--concurrency 2`. *ready → first byte* runs from the upstream\'s own `readyAt` (printed when both its ports accept) to the first response byte at the client: what the gateway adds after the backend is up. *request → first byte* includes the backend\'s own start-up.',
      '',
    );
    out.push(
      table(
        ['measure', 'rounds', 'p50', 'p90', 'max'],
        [
          ['ready → first byte (ms)', c.readyToFirstByteMs.count, round(c.readyToFirstByteMs.p50), round(c.readyToFirstByteMs.p90), round(c.readyToFirstByteMs.max)],
          ['request → first byte (ms)', c.requestToFirstByteMs.count, round(c.requestToFirstByteMs.p50), round(c.requestToFirstByteMs.p90), round(c.requestToFirstByteMs.max)],
        ],
      ),
      '',
    );
    out.push(
      table(
        ['round', 'ready → release published (ms)', 'ready → first byte (ms)', 'request → first byte (ms)', 'status'],
        c.rounds.map((x, i) => [i + 1, x.readyToReleaseMs === null ? null : round(x.readyToReleaseMs), round(x.readyToFirstByteMs), round(x.requestToFirstByteMs), x.status]),
      ),
      '',
    );
  }

  out.push('## Notes', '');
  if (r.notes.length === 0) out.push('Nothing unusual was recorded during the run.', '');
  else out.push(...r.notes.map((n) => `- ${n}`), '');
  return out.join('\n');
}

function medianOf(c: ReleaseCase, key: 'pushSentMs' | 'ackMs'): number | null {
  const v = c.rounds.map((x) => x[key]).filter((x): x is number => x !== null);
  return v.length === 0 ? null : median(v);
}
