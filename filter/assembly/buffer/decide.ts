// The per-request decision as a plain value; the HTTP context acts on it.
import { HostHold } from "./held-requests";

export const enum Decision {
  /** Host not listed (ready or unknown): the request goes on untouched. */
  Pass = 0,
  /** Listed and under its cap on this worker: hold it. */
  Hold = 1,
  /** Listed but already holding maxHeld on this worker: answer at once. */
  Overflow = 2,
  /** Listed with a failed wake: answer at once with the reason (the control plane lifts it after its backoff). */
  WakeFailed = 3,
}

export function decide(host: HostHold | null): Decision {
  if (host === null) return Decision.Pass;
  if (host.failed) return Decision.WakeFailed;
  if (host.count >= host.maxHeld) return Decision.Overflow;
  return Decision.Hold;
}
