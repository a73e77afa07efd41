// Scenario 2: release latency. From the control plane's release decision to each held request reaching
// the upstream, for 1 held request (many rounds) and 1,000 held at once (a few rounds), with two upstreams:
// the demo upstream (what the issue names) and a fast Envoy upstream (what the gateway alone costs).
import type { ReleaseCase, ReleaseResult, ReleaseRound, UpstreamKind } from '../lib/model.ts';
import { distribution, roundDistribution } from '../lib/stats.ts';
import { HELD_ENVOY_CONCURRENCY, HOLD_TIMEOUT_MS, MAX_HELD_PER_WORKER, startHeldBench, UPSTREAM_LABELS } from './held.ts';

export interface ReleaseOptions {
  filterWasmPath: string;
  cases: { held: number; rounds: number; upstream: UpstreamKind }[];
  log: (line: string) => void;
  notes: string[];
}

export async function runRelease(o: ReleaseOptions): Promise<ReleaseResult> {
  const bench = await startHeldBench(o.filterWasmPath, 'release');
  try {
    if (!bench.clockCheck.consistent) {
      o.notes.push(`release: the Envoy upstream's clock disagrees with the harness's (${JSON.stringify(bench.clockCheck)}); its arrival times are off by about that much`);
    }
    const cases: ReleaseCase[] = [];
    for (const c of o.cases) {
      const rounds: ReleaseRound[] = [];
      const atUpstream: number[] = [];
      const answered: number[] = [];
      for (let r = 1; r <= c.rounds; r++) {
        const data = await bench.holdAndRelease(`release-${c.upstream}-${c.held}-r${r}`, c.held, c.upstream);
        rounds.push({ round: r, ...data.summary });
        atUpstream.push(...data.atUpstreamMs);
        answered.push(...data.answeredMs);
        const bad = c.held - (data.summary.statuses['200'] ?? 0);
        if (bad > 0) o.notes.push(`release: ${c.held} held (${c.upstream}), round ${r}: ${bad} requests did not get 200 (${JSON.stringify(data.summary.statuses)} ${JSON.stringify(data.summary.clientErrors)} ${JSON.stringify(data.summary.failures)})`);
        if (c.held > 1) {
          o.log(`  ${c.held} held → ${c.upstream}, round ${r}: first ${data.summary.firstAtUpstreamMs} ms, last ${data.summary.lastAtUpstreamMs} ms at the upstream (push sent ${data.summary.pushSentMs} ms, ACK ${data.summary.ackMs} ms)`);
        }
      }
      if (atUpstream.length === 0) throw new Error(`release: no request of the ${c.held}-held case reached the upstream`);
      const d = roundDistribution(distribution(atUpstream));
      cases.push({
        held: c.held,
        upstream: c.upstream,
        upstreamLabel: UPSTREAM_LABELS[c.upstream],
        rounds,
        atUpstreamMs: d,
        answeredMs: answered.length > 0 ? roundDistribution(distribution(answered)) : null,
        allAnswered200: rounds.every((r) => (r.statuses['200'] ?? 0) === c.held),
      });
      o.log(`  ${c.held} held → ${c.upstream} (${c.rounds} rounds): p50 ${d.p50} ms, p99 ${d.p99} ms, max ${d.max} ms over ${d.count} requests`);
    }
    if (bench.gateway.warnings.length > 0) o.notes.push(`release: the control plane logged ${bench.gateway.warnings.length} warnings, first: ${bench.gateway.warnings[0]}`);
    return {
      settings: { envoyConcurrency: HELD_ENVOY_CONCURRENCY, holdTimeoutMs: HOLD_TIMEOUT_MS, maxHeldPerWorker: MAX_HELD_PER_WORKER },
      clockCheck: bench.clockCheck,
      cases,
    };
  } finally {
    await bench.close();
  }
}
