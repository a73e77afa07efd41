// Idleness across replicas. Each Envoy streams its load reports to whichever replica it is connected to, but
// only the leader scales down: so every replica publishes what its Envoys told it, in a record of its own in
// the API server, and the leader decides from its own reports plus every other replica's record.
//
// What a record holds, and why:
//  - per cluster, how long ago the replica last saw traffic; ages, not timestamps, so that the leader can
//    place them on its own clock (it times from when it saw the record change, as the leader election does)
//    and clock skew between replicas cannot make a busy backend look idle;
//  - how many load-report streams the replica has open, and how long ago the stalest of them last reported:
//    silence is evidence of idleness only when every replica that has Envoys has heard from all of them.
//
// Writes are bounded: a replica writes its record when it changed in a way that matters (a cluster's last
// traffic moved on by more than the granularity, the set of reporters changed), and at least every
// heartbeat so the leader can tell a live replica from a gone or cut-off one; never more often than once per
// `minIntervalMs`. With the defaults that is at most one write per second per replica, and one every 5 s
// when nothing moves. A record the leader has not seen change for `staleAfterMs` postpones every scale-down:
// that replica may be serving Envoys whose traffic nobody else can see.
import type { LocalTrafficView } from '../scaling/traffic.ts';
import { compareNames } from '../../model/name-order.ts';

export interface TrafficRecord {
  /** The replica's identity (its pod name). */
  replica: string;
  /** Open load-report streams on that replica when it wrote. */
  reporters: number;
  /** Age at write time of the stalest reporter's last report (ms); absent when there are no reporters. */
  stalestReportAgeMs?: number;
  /** cluster → age at write time of its last traffic (ms). Only clusters that have seen traffic. */
  lastTrafficAgeMs: Record<string, number>;
  /** Backends whose hold every client of that replica has applied; absent while one has not applied the latest config. */
  heldApplied?: string[];
}

/** What one replica knows now, on its own clock (TrafficMonitor.localView()). */
export type LocalTraffic = LocalTrafficView;

export interface TrafficShareTiming {
  /** Write at least this often, even when nothing changed. */
  heartbeatMs: number;
  /** Never write more often than this. */
  minIntervalMs: number;
  /** A cluster's last traffic must have moved on by this much to be worth a write before the heartbeat. */
  granularityMs: number;
  /** A record not seen to change for this long marks its replica as gone or cut off. */
  staleAfterMs: number;
}

export const DEFAULT_TRAFFIC_SHARE: TrafficShareTiming = { heartbeatMs: 5_000, minIntervalMs: 1_000, granularityMs: 5_000, staleAfterMs: 20_000 };

export function toRecord(replica: string, local: LocalTraffic, now: number): TrafficRecord {
  const lastTrafficAgeMs: Record<string, number> = {};
  for (const [cluster, at] of [...local.lastTraffic].sort(([a], [b]) => compareNames(a, b))) lastTrafficAgeMs[cluster] = Math.max(0, now - at);
  return {
    replica,
    reporters: local.reporters,
    ...(local.reporters > 0 && local.stalestReportAt !== undefined ? { stalestReportAgeMs: Math.max(0, now - local.stalestReportAt) } : {}),
    lastTrafficAgeMs,
    ...(local.heldApplied ? { heldApplied: [...local.heldApplied].sort() } : {}),
  };
}

/** Whether `local` (now) differs from what was last written (at `writtenAt`) enough to write before the heartbeat. */
export function worthWriting(previous: { record: TrafficRecord; writtenAt: number } | undefined, local: LocalTraffic, now: number, timing: TrafficShareTiming): boolean {
  if (!previous) return true;
  const since = now - previous.writtenAt;
  if (since < timing.minIntervalMs) return false;
  if (since >= timing.heartbeatMs) return true;
  if (previous.record.reporters !== local.reporters) return true;
  // A leader draining a backend waits for every replica to report its hold applied: no heartbeat delay.
  if ((previous.record.heldApplied ?? []).join('\n') !== [...(local.heldApplied ?? [])].sort().join('\n')) return true;
  for (const [cluster, at] of local.lastTraffic) {
    const written = previous.record.lastTrafficAgeMs[cluster];
    if (written === undefined) return true;
    if (at - (previous.writtenAt - written) >= timing.granularityMs) return true;
  }
  return false;
}

/** Another replica's record as the leader holds it: `observedAt` is when the leader saw this content arrive. */
export interface ObservedRecord {
  record: TrafficRecord;
  observedAt: number;
}

export type SharedEvidence = { ok: true } | { ok: false; cause: string };

/**
 * The latest traffic of a cluster over every replica's record, on the leader's clock: each age counts from when
 * the leader saw that record change. Undefined when no replica has seen any.
 */
export function sharedLastTraffic(cluster: string, others: readonly ObservedRecord[]): number | undefined {
  let latest: number | undefined;
  for (const o of others) {
    const age = o.record.lastTrafficAgeMs[cluster];
    if (age === undefined) continue;
    const at = o.observedAt - age;
    if (latest === undefined || at > latest) latest = at;
  }
  return latest;
}

/**
 * Whether the other replicas' records allow treating silence as idleness since `since` (leader's clock): every
 * record is fresh, and each replica with reporters heard from all of them after `since`. The leader's own
 * Envoys are judged by its local evidence; this adds everyone else's.
 */
export function sharedEvidence(others: readonly ObservedRecord[], since: number, now: number, timing: TrafficShareTiming): SharedEvidence {
  for (const o of [...others].sort((a, b) => compareNames(a.record.replica, b.record.replica))) {
    if (now - o.observedAt >= timing.staleAfterMs) {
      return { ok: false, cause: `replica "${o.record.replica}" has not refreshed its traffic record for ${Math.round((now - o.observedAt) / 1000)} s (gone, or cut off from the API server)` };
    }
    if (o.record.reporters === 0) continue;
    if (o.record.stalestReportAgeMs === undefined) return { ok: false, cause: `replica "${o.record.replica}" has Envoys that have not reported load yet` };
    if (o.observedAt - o.record.stalestReportAgeMs < since) return { ok: false, cause: `no recent load report from an Envoy connected to replica "${o.record.replica}"` };
  }
  return { ok: true };
}

/** Parses a record read from the API server; a malformed one is an error the caller logs (and ignores). */
export function parseRecord(text: string): TrafficRecord {
  const value = JSON.parse(text) as unknown;
  const problem = (what: string): never => {
    throw new Error(`traffic record: ${what}`);
  };
  if (typeof value !== 'object' || value === null) problem('not an object');
  const v = value as Record<string, unknown>;
  if (typeof v.replica !== 'string' || v.replica === '') problem('replica must be a non-empty string');
  if (!Number.isInteger(v.reporters) || (v.reporters as number) < 0) problem('reporters must be a count');
  if (v.stalestReportAgeMs !== undefined && !(typeof v.stalestReportAgeMs === 'number' && v.stalestReportAgeMs >= 0)) problem('stalestReportAgeMs must be >= 0');
  if (typeof v.lastTrafficAgeMs !== 'object' || v.lastTrafficAgeMs === null || Array.isArray(v.lastTrafficAgeMs)) problem('lastTrafficAgeMs must be an object');
  if (v.heldApplied !== undefined && !(Array.isArray(v.heldApplied) && v.heldApplied.every((n) => typeof n === 'string'))) problem('heldApplied must be a list of names');
  for (const [k, age] of Object.entries(v.lastTrafficAgeMs as Record<string, unknown>)) {
    if (typeof age !== 'number' || !(age >= 0)) problem(`lastTrafficAgeMs["${k}"] must be >= 0`);
  }
  return v as unknown as TrafficRecord;
}

/**
 * The replicas (fresh records only; a stale one's Envoys have moved on or are cut off) that have not yet
 * reported every one of `backends` held and applied by all their clients.
 */
export function replicasNotHolding(backends: readonly string[], others: readonly ObservedRecord[], now: number, timing: TrafficShareTiming): string[] {
  return others
    .filter((o) => now - o.observedAt < timing.staleAfterMs)
    .filter((o) => !backends.every((b) => o.record.heldApplied?.includes(b)))
    .map((o) => o.record.replica)
    .sort();
}
