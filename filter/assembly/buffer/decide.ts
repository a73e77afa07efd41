// The per-request decision as a plain value; the HTTP context acts on it.
import { HostHold } from "./held-requests";

export const enum Decision {
  /** Host not listed (ready or unknown): the request goes on untouched. */
  Pass = 0,
  /** Listed and under its cap on this worker: hold it. */
  Hold = 1,
  /** Listed but already holding maxHeld on this worker: answer at once. */
  Overflow = 2,
}

export function decide(host: HostHold | null): Decision {
  if (host === null) return Decision.Pass;
  if (host.count >= host.maxHeld) return Decision.Overflow;
  return Decision.Hold;
}
