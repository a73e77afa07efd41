// Spec section "Clocks". proxy_get_current_time_nanoseconds is wall-clock time, which can jump, so hold
// deadlines use the monotonic clock, reached through WASI clock_time_get with clock id 1 (Envoy's
// proxy-wasm host maps it to its dispatcher's monotonic time source, shared by all threads of the
// process, which is what makes a lease expiry written by one worker meaningful to another).

@external("wasi_snapshot_preview1", "clock_time_get")
export declare function clock_time_get(clockId: u32, precision: u64, resultTimePtr: usize): u32;

@external("env", "proxy_get_current_time_nanoseconds")
export declare function proxy_get_current_time_nanoseconds(resultTimePtr: usize): u32;

const CLOCK_MONOTONIC: u32 = 1;
const TIME_SLOT: usize = memory.data(8, 8);

let lastMonotonicMs: i64 = 0;

/**
 * Monotonic milliseconds. If the host call fails, the last value seen is returned so time never runs
 * backwards and nothing times out by accident.
 */
export function monotonicMs(): i64 {
  if (clock_time_get(CLOCK_MONOTONIC, 1000000, TIME_SLOT) == 0) {
    const ms = <i64>(load<u64>(TIME_SLOT) / 1000000);
    if (ms > lastMonotonicMs) lastMonotonicMs = ms;
  }
  return lastMonotonicMs;
}
