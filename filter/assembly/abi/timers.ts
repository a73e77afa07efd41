// Spec section "Timers". The period applies to the plugin (root) context of the *effective* context:
// from an HTTP context it would set the tick of that request's own plugin context, so callers switch the
// effective context to the plugin context they mean first (see streams.ts).
import { Status } from "./status";

@external("env", "proxy_set_tick_period_milliseconds")
export declare function proxy_set_tick_period_milliseconds(periodMs: u32): u32;

export function setTickPeriodMilliseconds(periodMs: u32): Status {
  return <Status>proxy_set_tick_period_milliseconds(periodMs);
}
