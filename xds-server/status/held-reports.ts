// Requests held now, per host and Envoy process, as far as the control plane can know it. Held requests wait in the
// filter, before Envoy's router, so Envoy's load reports (LRS, upstream requests) never count them. The
// filter's wake call, sent about once a second per host and Envoy while requests are held (one worker wins
// a shared lease), carries the Envoy-wide value of its per-host gauge (scale_to_zero.host.<name>.held) and
// an id the filter gives its Envoy process (the filter cannot read the node id: Envoy does not answer the
// `node` property to it). A report is trusted for `ttlMs` (a wake call that stops coming means nothing is held
// any more) and dropped at once when the host is released or its wake fails (the filter then answers or
// releases everything it holds).

export interface HeldReport {
  /** The id the filter gives its Envoy process (x-scale-to-zero-envoy). */
  envoy: string;
  count: number;
  at: number;
}

export class HeldReports {
  private readonly byHost = new Map<string, Map<string, HeldReport>>();

  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  record(host: string, envoy: string, count: number): void {
    let byEnvoy = this.byHost.get(host);
    if (!byEnvoy) this.byHost.set(host, (byEnvoy = new Map()));
    byEnvoy.set(envoy, { envoy, count, at: this.now() });
  }

  /** The host's held requests were released or answered. */
  clear(host: string): void {
    this.byHost.delete(host);
  }

  /** The reports still fresh for a host, one per Envoy. */
  reports(host: string): HeldReport[] {
    const byEnvoy = this.byHost.get(host);
    if (!byEnvoy) return [];
    const now = this.now();
    for (const [envoy, r] of byEnvoy) if (now - r.at > this.ttlMs) byEnvoy.delete(envoy);
    return [...byEnvoy.values()];
  }

  total(host: string): number {
    return this.reports(host).reduce((n, r) => n + r.count, 0);
  }
}
