// Scenario 3: Envoy's memory with 0, 1,000 and 10,000 held requests, and whether the big holds are all
// released with 200 while Envoy lives on. A fresh gateway, so "0 held" is a clean base. The big hold is
// done twice: released into the demo upstream, then into the fast Envoy upstream.
import type { MemoryPoint, MemoryResult, UpstreamKind } from '../lib/model.ts';
import { distribution, round, roundDistribution } from '../lib/stats.ts';
import { isAlive, readOpenFileLimit, readRssKiB, sleep } from '../lib/system.ts';
import { clusterOf, HELD_ENVOY_CONCURRENCY, HELD_GAUGE, HOLD_TIMEOUT_MS, MAX_HELD_PER_WORKER, startHeldBench, UPSTREAM_LABELS } from './held.ts';

/** Cluster stats that say where released requests went or why they failed. */
const EXPLAINING_STAT = /\.(upstream_cx_(total|connect_fail|connect_timeout|overflow|pool_overflow|destroy_with_active_rq|destroy_remote_with_active_rq|destroy_local_with_active_rq)|upstream_rq_(total|pending_overflow|pending_failure_eject|pending_total|503|5xx|200|timeout|rx_reset|tx_reset))$/;

export interface MemoryOptions {
  filterWasmPath: string;
  /** Holds in order, e.g. 1,000 then 10,000 → node then 10,000 → envoy. The largest count is "the big hold". */
  steps: { held: number; upstream: UpstreamKind }[];
  log: (line: string) => void;
  notes: string[];
}

export async function runMemory(o: MemoryOptions): Promise<MemoryResult> {
  const bench = await startHeldBench(o.filterWasmPath, 'memory');
  const { envoy } = bench.gateway;
  // Envoy keeps its last 400 log lines; the count before a release tells which lines came after.
  const envoyLogLines = (): string[] => envoy.logTail(400).split('\n').filter(Boolean);
  const rssMiB = async (): Promise<number> => {
    const kib = await readRssKiB(envoy.pid);
    if (kib === undefined) throw new Error(`Envoy (pid ${envoy.pid}) is gone`);
    return round(kib / 1024, 1);
  };
  const gauge = async (): Promise<number> => (await envoy.stats('scale_to_zero')).get(HELD_GAUGE) ?? 0;
  const live = (): Promise<boolean> =>
    envoy
      .admin('/ready')
      .then(async (r) => /LIVE/.test(await r.text()))
      .catch(() => false);
  const fdLimit = (await readOpenFileLimit(envoy.pid)) ?? null;
  try {
    // Let start-up allocations settle before the baseline.
    await sleep(1_000);
    const points: MemoryPoint[] = [{ label: 'none held (fresh Envoy)', held: 0, heldGauge: await gauge(), rssMiB: await rssMiB() }];
    o.log(`  0 held: RSS ${points[0]!.rssMiB} MiB`);
    const biggest = Math.max(...o.steps.map((s) => s.held));
    const bigReleases: MemoryResult['bigReleases'] = [];
    for (const step of o.steps) {
      const cluster = clusterOf(step.upstream);
      const clusterStats = async (): Promise<Map<string, number>> => envoy.stats(`^cluster\\.${cluster}\\.`);
      let statsBefore = new Map<string, number>();
      let logLinesBefore = 0;
      const data = await bench.holdAndRelease(`memory-${step.upstream}-${step.held}`, step.held, step.upstream, {
        whileHeld: async () => {
          statsBefore = await clusterStats();
          logLinesBefore = envoyLogLines().length;
          // A moment for the filter and Envoy to finish allocating for the last requests.
          await sleep(500);
          points.push({ label: `${step.held} held (for ${step.upstream})`, held: step.held, heldGauge: await gauge(), rssMiB: await rssMiB() });
          o.log(`  ${step.held} held: RSS ${points[points.length - 1]!.rssMiB} MiB`);
        },
      });
      points.push({ label: `after releasing ${step.held} into ${step.upstream}`, held: 0, heldGauge: await gauge(), rssMiB: await rssMiB() });
      const s = data.summary;
      o.log(`  released ${step.held} → ${step.upstream}: ${JSON.stringify(s.statuses)}, last at upstream ${s.lastAtUpstreamMs} ms, last answer ${s.lastAnsweredMs} ms; RSS ${points[points.length - 1]!.rssMiB} MiB`);
      if (step.held !== biggest) continue;
      const statsAfter = await clusterStats();
      const deltas = Object.fromEntries(
        [...statsAfter]
          .filter(([k]) => EXPLAINING_STAT.test(k))
          .map(([k, v]) => [k.slice(`cluster.${cluster}.`.length), v - (statsBefore.get(k) ?? 0)] as const)
          .filter(([, v]) => v !== 0),
      );
      const envoyLog = envoyLogLines().slice(logLinesBefore).filter((l) => /\]\[(warning|error|critical)\]/.test(l)).slice(0, 5);
      const answered200 = s.statuses['200'] ?? 0;
      const openFiles = { downstream: step.held, newUpstreamConnections: deltas['upstream_cx_total'] ?? 0, envoyLimit: fdLimit };
      const fdShare = fdLimit ? (openFiles.downstream + openFiles.newUpstreamConnections) / fdLimit : 0;
      if (step.held === biggest && fdShare > 0.85) {
        o.notes.push(
          `memory: releasing ${step.held} into ${step.upstream} opened ${openFiles.newUpstreamConnections} upstream connections on top of ${step.held} held downstream ones: ` +
            `${Math.round(fdShare * 100)}% of the gateway Envoy's open-file limit (${fdLimit}). At the limit, socket(2) fails with EMFILE (Envoy logs an envoy_bug) and ` +
            'the requests that needed a new connection are answered 503 "local connection failure"; the cluster\'s max_connections (50,000) does not stop this',
        );
      }
      if (answered200 !== step.held) o.notes.push(`memory: only ${answered200} of ${step.held} requests released into ${step.upstream} got 200 (${JSON.stringify(s.statuses)} ${JSON.stringify(s.clientErrors)} ${JSON.stringify(s.failures)}; gateway cluster stats: ${JSON.stringify(deltas)})`);
      bigReleases.push({
        held: step.held,
        upstream: step.upstream,
        upstreamLabel: UPSTREAM_LABELS[step.upstream],
        answered200,
        statuses: s.statuses,
        clientErrors: s.clientErrors,
        failures: s.failures,
        clusterStats: deltas,
        openFiles,
        envoyLog,
        lastAtUpstreamMs: s.lastAtUpstreamMs,
        lastAnsweredMs: s.lastAnsweredMs,
        atUpstreamMs: data.atUpstreamMs.length > 0 ? roundDistribution(distribution(data.atUpstreamMs)) : null,
        envoyRunningAfter: envoy.isRunning() && isAlive(envoy.pid),
        envoyLiveAfter: await live(),
      });
    }
    const peak = points.find((p) => p.held === biggest)!;
    const stats = await envoy.stats('scale_to_zero');
    // The filter's own totals (the stats filter also matches cluster and ECDS stats).
    const filterCounters = Object.fromEntries([...stats].filter(([k]) => k.startsWith('wasmcustom.scale_to_zero.') && !k.includes('.host.')).map(([k, v]) => [k.replace('wasmcustom.', ''), v]));
    if (bench.gateway.warnings.length > 0) o.notes.push(`memory: the control plane logged ${bench.gateway.warnings.length} warnings, first: ${bench.gateway.warnings[0]}`);
    return {
      settings: { envoyConcurrency: HELD_ENVOY_CONCURRENCY, holdTimeoutMs: HOLD_TIMEOUT_MS, maxHeldPerWorker: MAX_HELD_PER_WORKER, held: biggest },
      points,
      kibPerHeldRequest: round(((peak.rssMiB - points[0]!.rssMiB) * 1024) / biggest, 1),
      bigReleases,
      filterCounters,
    };
  } finally {
    await bench.close();
  }
}
