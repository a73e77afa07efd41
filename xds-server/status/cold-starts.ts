// The last cold starts per host, with the phases the control plane sees, in order: the wake (start
// requested), the replicas started (process spawned; /scale written), the backend ready (its health check
// passed, or the process signalled it: `readyBy`), the release pushed (the snapshot that releases it written
// to the Envoys' streams), the release ACKed by every connected Envoy, and the first load report after the
// push in which the backend's cluster had traffic (it may arrive before the ACK is counted: see loadReport).
// The first request's answer itself is not visible here: it passes Envoy without the control plane; the load
// report only bounds it (it arrives up to one report interval, 1 s by default, after the request reached the
// backend). Also feeds the cold-start histograms.
import type { LoadReport } from '../load-reports/lrs-service.ts';
import type { Metrics } from '../metrics.ts';
import type { WakeSource } from '../scaling/backend-controller.ts';
import type { ScalingObserver, WakeFailureReason } from '../scaling/observer.ts';
import type { ReadyEvidence } from '../scaling/provider.ts';

export const COLD_STARTS_KEPT_PER_HOST = 10;

export interface ColdStart {
  host: string;
  source: WakeSource;
  reason: string;
  outcome: 'waking' | 'ready' | 'failed';
  startedAt: number;
  spawnedAt?: number;
  readyAt?: number;
  /** How a process host's readiness was known: its health check, or its own signal (unset for others). */
  readyBy?: ReadyEvidence;
  releasePushedAt?: number;
  releaseAckedAt?: number;
  /** Envoys that had not applied (or rejected) the release when the wait for them ended. */
  notApplied?: number;
  firstTrafficReportedAt?: number;
  failure?: { reason: WakeFailureReason; message: string };
}

export class ColdStartLog implements ScalingObserver {
  private readonly byHost = new Map<string, ColdStart[]>();

  constructor(
    private readonly metrics: Pick<Metrics, 'observe'>,
    /** The Envoy cluster of a host (load reports name clusters). */
    private readonly clusterOf: (host: string) => string | undefined,
    private readonly onChange: () => void = () => {},
    private readonly now: () => number = Date.now,
  ) {}

  /** Newest first. */
  recent(host: string): readonly ColdStart[] {
    return this.byHost.get(host) ?? [];
  }

  wakeStarted(host: string, source: WakeSource, reason: string): void {
    let list = this.byHost.get(host);
    if (!list) this.byHost.set(host, (list = []));
    list.unshift({ host, source, reason, outcome: 'waking', startedAt: this.now() });
    list.length = Math.min(list.length, COLD_STARTS_KEPT_PER_HOST);
    this.onChange();
  }

  wakeSpawned(host: string): void {
    const c = this.current(host);
    if (!c) return;
    c.spawnedAt = this.now();
    this.metrics.observe('stz_cold_start_phase_duration_seconds', { host, phase: 'wake_to_spawned' }, (c.spawnedAt - c.startedAt) / 1000);
    this.onChange();
  }

  wakeReady(host: string, by?: ReadyEvidence): void {
    const c = this.current(host);
    if (!c) return;
    c.readyAt = this.now();
    if (by !== undefined) c.readyBy = by;
    this.metrics.observe('stz_cold_start_phase_duration_seconds', { host, phase: 'wake_to_ready' }, (c.readyAt - c.startedAt) / 1000);
    if (c.spawnedAt !== undefined) {
      this.metrics.observe('stz_cold_start_phase_duration_seconds', { host, phase: 'spawned_to_ready' }, (c.readyAt - c.spawnedAt) / 1000);
    }
    this.onChange();
  }

  releasePushed(host: string): void {
    const c = this.current(host);
    if (!c || c.readyAt === undefined) return;
    c.releasePushedAt = this.now();
    this.metrics.observe('stz_cold_start_phase_duration_seconds', { host, phase: 'ready_to_release_pushed' }, (c.releasePushedAt - c.readyAt) / 1000);
    this.onChange();
  }

  released(host: string, notApplied: number): void {
    const c = this.current(host);
    if (!c) return;
    c.releaseAckedAt = this.now();
    c.outcome = 'ready';
    if (notApplied > 0) c.notApplied = notApplied;
    if (c.readyAt !== undefined) {
      this.metrics.observe('stz_cold_start_phase_duration_seconds', { host, phase: 'ready_to_release_acked' }, (c.releaseAckedAt - c.readyAt) / 1000);
    }
    if (c.releasePushedAt !== undefined) {
      this.metrics.observe('stz_cold_start_phase_duration_seconds', { host, phase: 'release_pushed_to_acked' }, (c.releaseAckedAt - c.releasePushedAt) / 1000);
    }
    this.metrics.observe('stz_cold_start_duration_seconds', { host }, (c.releaseAckedAt - c.startedAt) / 1000);
    this.onChange();
  }

  wakeFailed(host: string, reason: WakeFailureReason, message: string): void {
    const c = this.current(host);
    if (!c) return;
    c.outcome = 'failed';
    c.failure = { reason, message };
    this.onChange();
  }

  /**
   * A load report: the first one with traffic for a released cold start's cluster closes its record. Released
   * means pushed: an Envoy worker can apply the release, and its load report reach us, before we have handled
   * its ACK (two streams, and the ACK is counted once every Envoy has sent one). Such a report's counts are for
   * its interval only, so waiting for the ACK lost a single request's traffic for good.
   */
  loadReport(report: LoadReport): void {
    let changed = false;
    for (const [host, list] of this.byHost) {
      const c = list[0];
      if (!c || c.firstTrafficReportedAt !== undefined) continue;
      const released = c.releaseAckedAt !== undefined || (c.releasePushedAt !== undefined && c.outcome === 'waking');
      if (!released) continue;
      const cluster = this.clusterOf(host);
      if (report.clusters.some((l) => l.cluster === cluster && (l.issued > 0 || l.inProgress > 0))) {
        c.firstTrafficReportedAt = report.at;
        changed = true;
      }
    }
    if (changed) this.onChange();
  }

  /** The wake in progress (the newest record, while it is waking). */
  private current(host: string): ColdStart | undefined {
    const c = this.byHost.get(host)?.[0];
    return c && c.outcome === 'waking' ? c : undefined;
  }
}
