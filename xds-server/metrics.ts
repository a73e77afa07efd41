// Control-plane metrics in Prometheus text format, fed only by ADS events and explicit counters.
import { TYPE_URLS } from '../snapshots/type-urls.ts';
import type { AdsEvents } from './ads/events.ts';

export class Metrics {
  private readonly counters = new Map<string, number>();
  private readonly gauges = new Map<string, () => number>();

  constructor(events: AdsEvents) {
    events.on('stream-open', () => this.inc('stz_xds_streams_opened_total'));
    events.on('stream-close', () => this.inc('stz_xds_streams_closed_total'));
    events.on('response', (e) => this.inc('stz_xds_responses_total', { type: TYPE_URLS[e.kind] }));
    events.on('ack', (e) => this.inc('stz_xds_acks_total', { type: TYPE_URLS[e.kind] }));
    events.on('nack', (e) => this.inc('stz_xds_nacks_total', { type: TYPE_URLS[e.kind] }));
    events.on('request', (e) => {
      if (e.verdict.kind === 'stale-nonce') this.inc('stz_xds_stale_nonces_total', { type: TYPE_URLS[e.kind] });
    });
    events.on('snapshot-set', () => this.inc('stz_snapshots_published_total'));
  }

  inc(name: string, labels: Record<string, string> = {}, by = 1): void {
    const key = seriesKey(name, labels);
    this.counters.set(key, (this.counters.get(key) ?? 0) + by);
  }

  gauge(name: string, read: () => number): void {
    this.gauges.set(name, read);
  }

  value(name: string, labels: Record<string, string> = {}): number {
    return this.counters.get(seriesKey(name, labels)) ?? 0;
  }

  render(): string {
    const lines: string[] = [];
    for (const [key, value] of [...this.counters].sort(([a], [b]) => a.localeCompare(b))) lines.push(`${key} ${value}`);
    for (const [name, read] of [...this.gauges].sort(([a], [b]) => a.localeCompare(b))) lines.push(`${name} ${read()}`);
    return lines.join('\n') + '\n';
  }
}

function seriesKey(name: string, labels: Record<string, string>): string {
  const entries = Object.entries(labels).sort(([a], [b]) => a.localeCompare(b));
  if (entries.length === 0) return name;
  return `${name}{${entries.map(([k, v]) => `${k}="${v.replace(/["\\\n]/g, '_')}"`).join(',')}}`;
}
