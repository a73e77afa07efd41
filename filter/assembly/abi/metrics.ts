// Spec section "Metrics". Envoy exposes them as `wasmcustom.<name>`. Every VM (one per worker) that
// defines the same name gets its own id for the same underlying stat, so gauges shared by workers
// must only ever be moved with increments (a record would overwrite the other workers' share).
import { MetricType, Status } from "./status";

@external("env", "proxy_define_metric")
export declare function proxy_define_metric(metricType: u32, namePtr: usize, nameSize: usize, returnIdPtr: usize): u32;

@external("env", "proxy_increment_metric")
export declare function proxy_increment_metric(metricId: u32, offset: i64): u32;

@external("env", "proxy_record_metric")
export declare function proxy_record_metric(metricId: u32, value: u64): u32;

@external("env", "proxy_get_metric")
export declare function proxy_get_metric(metricId: u32, returnValuePtr: usize): u32;

const ID_SLOT: usize = memory.data(4);
const VALUE_SLOT: usize = memory.data(8, 8);

/** A defined metric; `defined` false means the host refused it and every operation is a no-op. */
export class Metric {
  constructor(public defined: bool, public id: u32) {}

  increment(offset: i64): Status {
    if (!this.defined || offset == 0) return Status.Ok;
    return <Status>proxy_increment_metric(this.id, offset);
  }

  record(value: u64): Status {
    if (!this.defined) return Status.Ok;
    return <Status>proxy_record_metric(this.id, value);
  }

  /** The current value, or 0 when undefined or unreadable. */
  get(): u64 {
    if (!this.defined) return 0;
    store<u64>(VALUE_SLOT, 0);
    if (proxy_get_metric(this.id, VALUE_SLOT) != Status.Ok) return 0;
    return load<u64>(VALUE_SLOT);
  }
}

export function defineMetric(metricType: MetricType, name: string): Metric {
  const n = String.UTF8.encode(name);
  store<u32>(ID_SLOT, 0);
  const status = proxy_define_metric(metricType, changetype<usize>(n), <usize>n.byteLength, ID_SLOT);
  return new Metric(status == Status.Ok, load<u32>(ID_SLOT));
}
