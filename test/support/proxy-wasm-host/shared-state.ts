// Process-wide state that several emulated VMs share, as Envoy's workers do: the shared key-value
// store (with proxy-wasm-cpp-host's compare-and-swap rules), the stats store and the monotonic clock.

export const Status = {
  Ok: 0,
  NotFound: 1,
  BadArgument: 2,
  Empty: 7,
  CasMismatch: 8,
} as const;

/** Mirrors proxy-wasm-cpp-host SharedData::set: cas 0 is unconditional, and a missing key ignores cas. */
export class SharedDataStore {
  private readonly data = new Map<string, { value: Buffer; cas: number }>();
  private nextCas = 1;

  get(key: string): { value: Buffer; cas: number } | undefined {
    return this.data.get(key);
  }

  set(key: string, value: Buffer, cas: number): number {
    const current = this.data.get(key);
    if (current && cas !== 0 && cas !== current.cas) return Status.CasMismatch;
    this.data.set(key, { value: Buffer.from(value), cas: this.takeCas() });
    return Status.Ok;
  }

  getText(key: string): string | undefined {
    return this.data.get(key)?.value.toString('utf8');
  }

  keys(): string[] {
    return [...this.data.keys()];
  }

  private takeCas(): number {
    const cas = this.nextCas;
    this.nextCas = (this.nextCas + 1) >>> 0 || 1;
    return cas;
  }
}

export type MetricKind = 'counter' | 'gauge' | 'histogram';

/** One value per stat name, like Envoy's stats scope: every VM defining a name shares its value. */
export class StatsStore {
  readonly values = new Map<string, { kind: MetricKind; value: bigint; samples: bigint[] }>();

  define(name: string, kind: MetricKind): void {
    if (!this.values.has(name)) this.values.set(name, { kind, value: 0n, samples: [] });
  }

  value(name: string): number | undefined {
    const v = this.values.get(name);
    return v === undefined ? undefined : Number(v.value);
  }

  samples(name: string): number[] {
    return (this.values.get(name)?.samples ?? []).map(Number);
  }
}

export class MonotonicClock {
  nowMs = 1_000_000;

  advance(ms: number): void {
    this.nowMs += ms;
  }

  get nowNs(): bigint {
    return BigInt(this.nowMs) * 1_000_000n;
  }
}
