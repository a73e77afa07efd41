// What the status page shows, as one JSON document: every scalable host (phase, since, wakes, last error,
// requests held now, requests in progress at the backend, last cold starts) and every connected xDS client
// (versions ACKed per type, the standing and the last NACK, load-report freshness). Built on demand from the
// live pieces; STATUS_SCHEMA (admin/schemas.ts) describes it.
import type { StreamStatus } from '../ads/stream-session.ts';
import type { HostController } from '../scaling/backend-controller.ts';
import type { TrafficMonitor } from '../scaling/traffic.ts';
import type { BackendState } from '../state/backend-state.ts';
import type { ColdStart, ColdStartLog } from './cold-starts.ts';
import type { HeldReports } from './held-reports.ts';

export interface LastNack {
  type: string;
  version: string;
  message: string;
  at: string;
}

export interface StatusSources {
  state: Pick<BackendState, 'scalable'>;
  hosts: Pick<HostController, 'status'>;
  sessions: () => { status(): StreamStatus }[];
  traffic: Pick<TrafficMonitor, 'requestsInProgress' | 'reportsOf'>;
  held: HeldReports;
  coldStarts: Pick<ColdStartLog, 'recent'>;
  /** The newest NACK of each stream, kept after the client accepts a later version. */
  lastNack: (streamId: number) => LastNack | undefined;
  loadReportIntervalMs: number;
  now?: () => number;
}

const iso = (ms: number | undefined): string | undefined => (ms === undefined ? undefined : new Date(ms).toISOString());
const defined = <T extends Record<string, unknown>>(o: T): T => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;

/** The phases a cold start reached, in order, each with the time since the one before. */
export function coldStartPhases(c: ColdStart): { phase: string; at: string; sincePreviousMs: number }[] {
  const steps: [string, number | undefined][] = [
    ['start_requested', c.startedAt],
    ['spawned', c.spawnedAt],
    ['ready', c.readyAt],
    ['release_pushed', c.releasePushedAt],
    ['release_acked', c.releaseAckedAt],
    ['first_traffic_reported', c.firstTrafficReportedAt],
  ];
  const out: { phase: string; at: string; sincePreviousMs: number }[] = [];
  let previous = c.startedAt;
  for (const [phase, at] of steps) {
    if (at === undefined) continue;
    out.push({ phase, at: iso(at)!, sincePreviousMs: Math.max(0, at - previous) });
    previous = at;
  }
  return out;
}

function coldStartJson(c: ColdStart): Record<string, unknown> {
  return defined({
    source: c.source,
    reason: c.reason,
    outcome: c.outcome,
    startedAt: iso(c.startedAt)!,
    spawnedAt: iso(c.spawnedAt),
    readyAt: iso(c.readyAt),
    readyBy: c.readyBy,
    releasePushedAt: iso(c.releasePushedAt),
    releaseAckedAt: iso(c.releaseAckedAt),
    firstTrafficReportedAt: iso(c.firstTrafficReportedAt),
    phases: coldStartPhases(c),
    wakeToReadyMs: c.readyAt !== undefined ? c.readyAt - c.startedAt : undefined,
    readyToReleaseAckedMs: c.readyAt !== undefined && c.releaseAckedAt !== undefined ? c.releaseAckedAt - c.readyAt : undefined,
    totalMs: c.releaseAckedAt !== undefined ? c.releaseAckedAt - c.startedAt : undefined,
    notApplied: c.notApplied,
    failure: c.failure,
  });
}

export function buildStatus(src: StatusSources): Record<string, unknown> {
  const now = (src.now ?? Date.now)();
  const hosts = src.state.scalable().map((view) => {
    const b = view.backend;
    const scaling = src.hosts.status(b.name);
    const held = src.held.reports(b.name);
    return defined({
      name: b.name,
      domains: b.scaleToZero.exclusiveDomains,
      protocol: b.protocol,
      scaler: b.scaleToZero.workload.kind,
      state: view.held ? 'scaled_to_zero' : 'ready',
      phase: scaling?.phase ?? (view.held ? 'scaled_to_zero' : 'ready'),
      since: scaling?.since ?? view.changedAt,
      wakeCount: scaling?.wakeCount ?? 0,
      lastError: scaling?.lastError,
      lastErrorAt: scaling?.lastErrorAt,
      held: { total: held.reduce((n, r) => n + r.count, 0), byEnvoy: held.map((r) => ({ envoy: r.envoy, count: r.count, reportedAt: iso(r.at)! })) },
      inProgress: src.traffic.requestsInProgress(b.clusterName),
      coldStarts: src.coldStarts.recent(b.name).map(coldStartJson),
    });
  });
  const nodes = src.sessions().map((session) => {
    const s = session.status();
    const types: Record<string, unknown> = {};
    for (const [kind, t] of Object.entries(s.types)) {
      if (!t) continue;
      types[kind] = defined({
        sentVersion: t.sentVersion,
        ackedVersion: t.ackedVersion,
        nack: t.nack ? { version: t.nack.rejectedVersion, message: t.nack.message, at: t.nack.at } : undefined,
      });
    }
    const reports = src.traffic.reportsOf(s.nodeId);
    return defined({
      streamId: s.streamId,
      nodeId: s.nodeId,
      clientKind: s.clientKind,
      userAgent: s.userAgent,
      connectedAt: s.connectedAt,
      types,
      lastNack: src.lastNack(s.streamId),
      loadReports: defined({
        streams: reports.streams,
        lastReportAt: iso(reports.lastReportAt),
        // Fresh: a report within three intervals (what the idle detector trusts).
        fresh: reports.lastReportAt !== undefined && now - reports.lastReportAt <= 3 * src.loadReportIntervalMs,
      }),
    });
  });
  return { generatedAt: new Date(now).toISOString(), loadReportIntervalMs: src.loadReportIntervalMs, hosts, nodes };
}
