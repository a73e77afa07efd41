// Metric names of docs/filter-contract.md "Metrics", defined once per VM. Envoy shows them as
// wasmcustom.<name>. A metric the host refused is a no-op (abi/metrics.ts), never an error.
import { MetricType } from "./abi/status";
import { Metric, defineMetric } from "./abi/metrics";

export const HELD = "scale_to_zero.held";
export const RELEASED = "scale_to_zero.released";
export const TIMED_OUT = "scale_to_zero.timed_out";
export const OVERFLOWED = "scale_to_zero.overflowed";
export const CANCELLED = "scale_to_zero.cancelled";
export const HOLD_TIME_MS = "scale_to_zero.hold_time_ms";
export const WAKE_CALLS = "scale_to_zero.wake_calls";
export const WAKE_FAILED = "scale_to_zero.wake_failed";

export function hostHeldName(host: string): string {
  return "scale_to_zero.host." + host + ".held";
}

export class FilterMetrics {
  held: Metric = defineMetric(MetricType.Gauge, HELD);
  released: Metric = defineMetric(MetricType.Counter, RELEASED);
  timedOut: Metric = defineMetric(MetricType.Counter, TIMED_OUT);
  overflowed: Metric = defineMetric(MetricType.Counter, OVERFLOWED);
  cancelled: Metric = defineMetric(MetricType.Counter, CANCELLED);
  holdTimeMs: Metric = defineMetric(MetricType.Histogram, HOLD_TIME_MS);
  wakeCalls: Metric = defineMetric(MetricType.Counter, WAKE_CALLS);
  wakeFailed: Metric = defineMetric(MetricType.Counter, WAKE_FAILED);
  private hostHeld: Map<string, Metric> = new Map<string, Metric>();

  /** Per-host gauge, defined the first time this VM holds a request for the host. */
  hostGauge(host: string): Metric {
    if (this.hostHeld.has(host)) return this.hostHeld.get(host);
    const m = defineMetric(MetricType.Gauge, hostHeldName(host));
    this.hostHeld.set(host, m);
    return m;
  }
}

let instance: FilterMetrics | null = null;

export function metrics(): FilterMetrics {
  let m = instance;
  if (m === null) {
    m = new FilterMetrics();
    instance = m;
  }
  return m;
}
