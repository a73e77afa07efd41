// Pushes the status document to every open status stream (server-sent events) when it changes. Changes are
// signalled by whoever knows (ADS events, the scaling observer, load reports, wake calls) and coalesced
// over `debounceMs`; a document equal to the last one sent is not sent again. A slow tick (only while
// someone listens) catches what changes with time alone: held-request reports expiring, load reports
// going stale.
export type StatusListener = (json: string) => void;

export class StatusFeed {
  private readonly listeners = new Set<StatusListener>();
  private pending: NodeJS.Timeout | undefined;
  private tick: NodeJS.Timeout | undefined;
  private last = '';
  private lastBody = '';

  constructor(
    private readonly build: () => Record<string, unknown>,
    private readonly debounceMs = 50,
    private readonly tickMs = 1_000,
  ) {}

  /** Something may have changed. */
  changed(): void {
    if (this.listeners.size === 0 || this.pending) return;
    this.pending = setTimeout(() => {
      this.pending = undefined;
      this.flush();
    }, this.debounceMs);
  }

  /** The current document, as JSON. */
  current(): Record<string, unknown> {
    return this.build();
  }

  /** Listens; the current document is sent at once. Returns the unsubscribe. */
  subscribe(listener: StatusListener): () => void {
    this.listeners.add(listener);
    listener(JSON.stringify(this.build()));
    if (!this.tick) {
      this.tick = setInterval(() => this.changed(), this.tickMs);
      this.tick.unref();
    }
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.stop();
    };
  }

  get listenerCount(): number {
    return this.listeners.size;
  }

  stop(): void {
    clearInterval(this.tick);
    this.tick = undefined;
    clearTimeout(this.pending);
    this.pending = undefined;
  }

  private flush(): void {
    const doc = this.build();
    // generatedAt changes every time: compare the rest.
    const { generatedAt: _, ...rest } = doc;
    const body = JSON.stringify(rest);
    if (body === this.lastBody) return;
    this.lastBody = body;
    this.last = JSON.stringify(doc);
    for (const l of this.listeners) l(this.last);
  }
}
