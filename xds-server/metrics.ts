// Control-plane metrics in Prometheus text format 0.0.4, fed by ADS events, the scaling observer and explicit
// counters. Every family is declared with its type and help, so /metrics lists it (# HELP / # TYPE) even
// before its first sample: a dashboard query can be checked against what this process exports.
import { TYPE_URLS } from '../snapshots/type-urls.ts';
import type { AdsEvents } from './ads/events.ts';
import { compareNames } from '../model/name-order.ts';

type Labels = Record<string, string>;
type Kind = 'counter' | 'gauge' | 'histogram';

interface Family {
  kind: Kind;
  help: string;
}

/** Seconds. Cold starts range from a few ms (a local process) to minutes (an image pull). */
export const DURATION_BUCKETS_SECONDS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

interface HistogramSeries {
  labels: Labels;
  buckets: number[];
  sum: number;
  count: number;
}

/** Every family the control plane exports (the Grafana dashboard test reads this list through /metrics). */
const FAMILIES: Record<string, Family> = {
  stz_xds_streams_opened_total: { kind: 'counter', help: 'ADS streams opened.' },
  stz_xds_streams_closed_total: { kind: 'counter', help: 'ADS streams closed.' },
  stz_xds_responses_total: { kind: 'counter', help: 'xDS responses sent, by type URL.' },
  stz_xds_acks_total: { kind: 'counter', help: 'xDS responses ACKed, by type URL.' },
  stz_xds_nacks_total: { kind: 'counter', help: 'xDS responses rejected (NACK), by type URL; a repeated NACK counts once.' },
  stz_xds_stale_nonces_total: { kind: 'counter', help: 'xDS requests with a stale nonce, by type URL.' },
  stz_xds_push_ack_duration_seconds: { kind: 'histogram', help: 'From an xDS response being sent to the client ACKing that version, by type URL.' },
  stz_xds_connected_streams: { kind: 'gauge', help: 'Open ADS streams.' },
  stz_xds_connected_clients: { kind: 'gauge', help: 'Open ADS streams by client kind (envoy, grpc, xds-client).' },
  stz_xds_tls_refused_total: {
    kind: 'counter',
    help: 'Clients refused on the mTLS xDS/LRS and wake ports, by port (xds, wake) and reason (no_certificate, unknown_ca, expired, not_yet_valid, invalid_certificate, handshake_failed, no_identity, identity_mismatch, wake_not_routed).',
  },
  stz_lrs_connected_streams: { kind: 'gauge', help: 'Open load-report (LRS) streams.' },
  stz_snapshots_published_total: { kind: 'counter', help: 'Snapshots published.' },
  stz_hosts_scaled_to_zero: { kind: 'gauge', help: 'Hosts whose requests Envoy holds now.' },
  stz_filter_generation: { kind: 'gauge', help: 'The filter config generation.' },
  stz_wake_calls_total: { kind: 'counter', help: "The filter's wake calls, by result (accepted, rate_limited)." },
  stz_wakes_total: { kind: 'counter', help: 'Wakes started, by host and source (filter: a held request; admin: the admin API).' },
  stz_wake_failures_total: { kind: 'counter', help: 'Wakes that failed, by host and reason (refused, exited, not_ready, release_failed).' },
  stz_scale_downs_total: { kind: 'counter', help: 'Scale-downs that stopped a backend, by host and cause (idle, admin).' },
  stz_cold_start_duration_seconds: { kind: 'histogram', help: 'Successful cold starts, from the wake to every Envoy having ACKed the release, by host.' },
  stz_cold_start_phase_duration_seconds: { kind: 'histogram', help: 'Cold-start phases by host and phase (wake_to_ready, ready_to_release_acked).' },
  stz_grpc_streams_refused_total: { kind: 'counter', help: 'xDS/LRS streams refused at open, by reason (too_many_streams_per_node, too_many_streams_per_address).' },
  stz_grpc_streams_disconnected_total: { kind: 'counter', help: 'xDS/LRS streams ended for crossing a bound, by reason (rate_limited, slow_client, request_queue_full, message_too_large).' },
  stz_grpc_open_streams: { kind: 'gauge', help: 'Open xDS and LRS streams counted against the per-address bound.' },
  stz_xds_initial_syncs_waiting: { kind: 'gauge', help: 'New ADS streams waiting for an initial-sync turn.' },
  stz_admin_connections_refused_total: { kind: 'counter', help: 'Admin port connections dropped at the connection cap.' },
  stz_requests_held: {
    kind: 'gauge',
    help: "Requests Envoy holds now per host, summed over Envoys, as the filter's wake calls report it (refreshed about once a second while held; 0 once released or failed).",
  },
};

export class Metrics {
  private readonly counters = new Map<string, number>();
  private readonly gauges = new Map<string, () => number>();
  private readonly gaugeFamilies = new Map<string, () => Array<[Labels, number]>>();
  private readonly histograms = new Map<string, Map<string, HistogramSeries>>();

  constructor(events: AdsEvents, now: () => number = Date.now) {
    events.on('stream-open', () => this.inc('stz_xds_streams_opened_total'));
    events.on('stream-close', (e) => {
      this.inc('stz_xds_streams_closed_total');
      for (const key of [...sent.keys()]) if (key.startsWith(`${e.streamId}/`)) sent.delete(key);
    });
    // Push-to-ACK: the time of the response that carried a version, until the client ACKs that version.
    const sent = new Map<string, { version: string; at: number }>();
    events.on('response', (e) => {
      this.inc('stz_xds_responses_total', { type: TYPE_URLS[e.kind] });
      const key = `${e.streamId}/${e.kind}`;
      // A resend of the same version (NACK backoff) keeps the first send time: the wait is the client's.
      if (sent.get(key)?.version !== e.version) sent.set(key, { version: e.version, at: now() });
    });
    events.on('ack', (e) => {
      this.inc('stz_xds_acks_total', { type: TYPE_URLS[e.kind] });
      const key = `${e.streamId}/${e.kind}`;
      const s = sent.get(key);
      if (s && s.version === e.version) {
        sent.delete(key);
        this.observe('stz_xds_push_ack_duration_seconds', { type: TYPE_URLS[e.kind] }, (now() - s.at) / 1000);
      }
    });
    events.on('nack', (e) => this.inc('stz_xds_nacks_total', { type: TYPE_URLS[e.kind] }));
    events.on('request', (e) => {
      if (e.verdict.kind === 'stale-nonce') this.inc('stz_xds_stale_nonces_total', { type: TYPE_URLS[e.kind] });
    });
    events.on('snapshot-set', () => this.inc('stz_snapshots_published_total'));
  }

  inc(name: string, labels: Labels = {}, by = 1): void {
    const key = seriesKey(name, labels);
    this.counters.set(key, (this.counters.get(key) ?? 0) + by);
  }

  gauge(name: string, read: () => number): void {
    this.gauges.set(name, read);
  }

  /** A gauge with labels, read when scraped. */
  gaugeFamily(name: string, read: () => Array<[Labels, number]>): void {
    this.gaugeFamilies.set(name, read);
  }

  observe(name: string, labels: Labels, seconds: number): void {
    let family = this.histograms.get(name);
    if (!family) this.histograms.set(name, (family = new Map()));
    const key = seriesKey('', labels);
    let series = family.get(key);
    if (!series) family.set(key, (series = { labels, buckets: DURATION_BUCKETS_SECONDS.map(() => 0), sum: 0, count: 0 }));
    DURATION_BUCKETS_SECONDS.forEach((le, i) => {
      if (seconds <= le) series.buckets[i]! += 1;
    });
    series.sum += seconds;
    series.count += 1;
  }

  value(name: string, labels: Labels = {}): number {
    return this.counters.get(seriesKey(name, labels)) ?? 0;
  }

  /** Observations of a histogram series (tests). */
  histogramCount(name: string, labels: Labels = {}): number {
    return this.histograms.get(name)?.get(seriesKey('', labels))?.count ?? 0;
  }

  render(): string {
    const byFamily = new Map<string, string[]>();
    const add = (family: string, line: string): void => {
      let lines = byFamily.get(family);
      if (!lines) byFamily.set(family, (lines = []));
      lines.push(line);
    };
    for (const [key, value] of this.counters) add(key.replace(/\{.*$/, ''), `${key} ${value}`);
    for (const [name, read] of this.gauges) add(name, `${name} ${read()}`);
    for (const [name, read] of this.gaugeFamilies) for (const [labels, value] of read()) add(name, `${seriesKey(name, labels)} ${value}`);
    for (const [name, family] of this.histograms) {
      for (const s of family.values()) {
        DURATION_BUCKETS_SECONDS.forEach((le, i) => add(name, `${seriesKey(`${name}_bucket`, { ...s.labels, le: String(le) })} ${s.buckets[i]}`));
        add(name, `${seriesKey(`${name}_bucket`, { ...s.labels, le: '+Inf' })} ${s.count}`);
        add(name, `${seriesKey(`${name}_sum`, s.labels)} ${s.sum}`);
        add(name, `${seriesKey(`${name}_count`, s.labels)} ${s.count}`);
      }
    }
    const names = [...new Set([...Object.keys(FAMILIES), ...byFamily.keys()])].sort();
    const out: string[] = [];
    for (const name of names) {
      const f = FAMILIES[name];
      if (f) out.push(`# HELP ${name} ${f.help}`, `# TYPE ${name} ${f.kind}`);
      const lines = byFamily.get(name) ?? [];
      // Histogram buckets stay in increasing `le` order, as the text format requires.
      out.push(...(f?.kind === 'histogram' || this.histograms.has(name) ? lines : lines.sort()));
    }
    return out.join('\n') + '\n';
  }
}

function seriesKey(name: string, labels: Labels): string {
  const entries = Object.entries(labels).sort(([a], [b]) => compareNames(a, b));
  if (entries.length === 0) return name;
  return `${name}{${entries.map(([k, v]) => `${k}="${v.replace(/["\\\n]/g, '_')}"`).join(',')}}`;
}
