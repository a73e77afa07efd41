// Turns LRS reports into "when did this cluster last see traffic", across every reporting Envoy. Keyed by
// Envoy cluster name, as the reports are. Also decides whether silence is evidence of idleness: only the
// clients that route a host can see its traffic, and only those with a load-report stream can tell us.
import type { LoadReport } from '../load-reports/lrs-service.ts';

/** An ADS client that routes a host (subscribes to its cluster), as the idle check sees it. */
export interface RoutingClient {
  nodeId: string;
  /** Epoch ms its ADS stream opened. */
  connectedAt: number;
}

export type IdleEvidence =
  /** Every client that routes the host and reports load has reported since the given time. */
  | { ok: true; cannotReport: string[] }
  /**
   * Why silence does not prove idleness yet (one sentence, stable while the cause lasts: it is logged once).
   * `noLocalEvidence`: no client here could have seen the host's traffic at all (none routes it, or none of
   * those reports load), so another replica's Envoys may decide it.
   */
  | { ok: false; cause: string; noLocalEvidence?: true };

/** What this replica's Envoys reported, for the other replicas (kubernetes/traffic-share.ts). */
export interface LocalTrafficView {
  /** Open load-report streams. */
  reporters: number;
  /** Epoch ms of the stalest open stream's last report; undefined when there is none or one has not reported yet. */
  stalestReportAt: number | undefined;
  /** cluster → epoch ms of its last traffic. */
  lastTraffic: ReadonlyMap<string, number>;
  /**
   * Backends held in the config every client of this replica has applied (set by the Kubernetes mode, which
   * knows the ACKs; undefined while some client has not applied the latest config).
   */
  heldApplied?: readonly string[];
}

export class TrafficMonitor {
  /** cluster → epoch ms of the last report with a request issued or in progress. */
  private readonly lastActive = new Map<string, number>();
  /** cluster → reporter (one LRS stream) → requests in progress in its latest report. */
  private readonly inProgress = new Map<string, Map<string, number>>();
  /** reporter → epoch ms of its latest report. */
  private readonly lastReportAt = new Map<string, number>();
  /** node id → its open LRS streams (reporters). */
  private readonly reporters = new Map<string, Set<string>>();

  /** An LRS stream opened (before its first report is recorded). */
  openReporter(reporter: string, nodeId: string): void {
    let set = this.reporters.get(nodeId);
    if (!set) this.reporters.set(nodeId, (set = new Set()));
    set.add(reporter);
  }

  record(report: LoadReport): void {
    this.openReporter(report.reporter, report.nodeId);
    this.lastReportAt.set(report.reporter, report.at);
    // Envoy leaves clusters with nothing to report out of a load report: absent means zero in progress.
    for (const byReporter of this.inProgress.values()) byReporter.set(report.reporter, 0);
    for (const c of report.clusters) {
      if (c.issued > 0 || c.inProgress > 0) this.lastActive.set(c.cluster, report.at);
      let byReporter = this.inProgress.get(c.cluster);
      if (!byReporter) this.inProgress.set(c.cluster, (byReporter = new Map()));
      byReporter.set(report.reporter, c.inProgress);
    }
  }

  forgetReporter(reporter: string): void {
    for (const byReporter of this.inProgress.values()) byReporter.delete(reporter);
    this.lastReportAt.delete(reporter);
    for (const [node, set] of this.reporters) {
      set.delete(reporter);
      if (set.size === 0) this.reporters.delete(node);
    }
  }

  /** Marks a cluster active now (its backend was just woken: its idle period starts from here). */
  touch(cluster: string, now: number): void {
    this.lastActive.set(cluster, now);
  }

  lastActiveAt(cluster: string): number | undefined {
    return this.lastActive.get(cluster);
  }

  /** This replica's view, to share with the others. */
  localView(): LocalTrafficView {
    let reporters = 0;
    let stalest: number | undefined;
    let unreported = false;
    for (const set of this.reporters.values()) {
      for (const reporter of set) {
        reporters += 1;
        const at = this.lastReportAt.get(reporter);
        if (at === undefined) unreported = true;
        else if (stalest === undefined || at < stalest) stalest = at;
      }
    }
    return { reporters, stalestReportAt: unreported ? undefined : stalest, lastTraffic: this.lastActive };
  }

  /** A node's open load-report streams and its newest report (the status page's freshness). */
  reportsOf(nodeId: string): { streams: number; lastReportAt?: number } {
    const open = this.reporters.get(nodeId);
    let last: number | undefined;
    for (const reporter of open ?? []) {
      const at = this.lastReportAt.get(reporter);
      if (at !== undefined && (last === undefined || at > last)) last = at;
    }
    return { streams: open?.size ?? 0, ...(last !== undefined ? { lastReportAt: last } : {}) };
  }

  /** Open load-report streams, all nodes. */
  reporterCount(): number {
    let n = 0;
    for (const set of this.reporters.values()) n += set.size;
    return n;
  }

  requestsInProgress(cluster: string): number {
    let n = 0;
    for (const v of this.inProgress.get(cluster)?.values() ?? []) n += v;
    return n;
  }

  /**
   * Whether the clients that route a host have all told us about its traffic since `since`. A client with no
   * load-report stream (a proxyless gRPC client, a tool, an Envoy whose bootstrap has no LRS) cannot report:
   * it does not veto, once `graceMs` after it connected has passed (its LRS stream may simply not be open
   * yet). With no routing client at all there is nobody whose silence means anything.
   */
  idleEvidence(routing: readonly RoutingClient[], since: number, now: number, graceMs: number): IdleEvidence {
    if (routing.length === 0) return { ok: false, cause: 'no Envoy that routes the host is connected', noLocalEvidence: true };
    const cannotReport = new Set<string>();
    let reporting = 0;
    for (const client of routing) {
      const open = this.reporters.get(client.nodeId);
      if (!open || open.size === 0) {
        if (now - client.connectedAt < graceMs) return { ok: false, cause: `waiting for the first load report of node "${client.nodeId}", which connected moments ago` };
        cannotReport.add(client.nodeId);
        continue;
      }
      reporting += 1;
      for (const reporter of open) {
        if ((this.lastReportAt.get(reporter) ?? -Infinity) < since) return { ok: false, cause: `no recent load report from node "${client.nodeId}"` };
      }
    }
    if (reporting === 0) return { ok: false, cause: 'no client that routes the host sends load reports, so its traffic cannot be seen', noLocalEvidence: true };
    return { ok: true, cannotReport: [...cannotReport].sort() };
  }
}

/** Remembers the last cause logged per key, so a condition that lasts is logged once, not every tick. */
export class OncePerCause {
  private readonly last = new Map<string, string>();

  /** True when `cause` differs from the last one noted for `key` (log it now). */
  note(key: string, cause: string): boolean {
    if (this.last.get(key) === cause) return false;
    this.last.set(key, cause);
    return true;
  }

  clear(key: string): void {
    this.last.delete(key);
  }
}
