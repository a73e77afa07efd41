// Turns LRS reports into "when did this cluster last see traffic", across every reporting Envoy. Keyed by
// Envoy cluster name, as the reports are.
import type { LoadReport } from '../load-reports/lrs-service.ts';

export class TrafficMonitor {
  /** cluster → epoch ms of the last report with a request issued or in progress. */
  private readonly lastActive = new Map<string, number>();
  /** cluster → reporter (one LRS stream) → requests in progress in its latest report. */
  private readonly inProgress = new Map<string, Map<string, number>>();
  private readonly lastReportAt = new Map<string, number>();

  record(report: LoadReport): void {
    this.lastReportAt.set(report.nodeId, report.at);
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
  }

  /** Marks a cluster active now (its backend was just woken: its idle period starts from here). */
  touch(cluster: string, now: number): void {
    this.lastActive.set(cluster, now);
  }

  lastActiveAt(cluster: string): number | undefined {
    return this.lastActive.get(cluster);
  }

  requestsInProgress(cluster: string): number {
    let n = 0;
    for (const v of this.inProgress.get(cluster)?.values() ?? []) n += v;
    return n;
  }

  /** True when every given node has reported since `since` (so silence means no traffic, not no data). */
  allReportedSince(nodes: readonly string[], since: number): boolean {
    return nodes.length > 0 && nodes.every((n) => (this.lastReportAt.get(n) ?? 0) >= since);
  }
}
