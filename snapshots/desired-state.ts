// Everything a snapshot is built from: the model (from whichever source) plus the runtime facts the
// control plane owns. Plain data, no behaviour.
import type { GatewayModel } from '../model/gateway-model.ts';
import type { ControlPlaneTlsFiles } from './control-plane-tls.ts';

/** Where Envoy reaches the control plane for wake calls; absent when wake calls are off. */
export interface WakeTarget {
  address: string;
  port: number;
  leaseMs: number;
  timeoutMs: number;
  /** Wake calls over mutual TLS with these SDS files (the same the xDS connection uses); absent: plaintext. */
  tls?: ControlPlaneTlsFiles;
}

/** A held backend whose last wake failed: the filter answers its requests at once until this is lifted. */
export interface WakeFailure {
  /** Short, one line (filter/assembly/config/rules.ts toFailureReason). */
  reason: string;
  /** What the answers' Retry-After says: the rest of the backoff, rounded up. */
  retryAfterSeconds: number;
}

export interface DesiredState {
  model: GatewayModel;
  /** Names of backends that are scaled to zero now (the filter holds their requests). */
  held: ReadonlySet<string>;
  /** Grows with every change the filter must see; the filter orders configs by it. */
  generation: number;
  /** Absolute path of filter.wasm, as Envoy will read it. */
  filterWasmPath: string;
  wake?: WakeTarget;
  /** Held backends whose last wake failed, by name (absent: none). */
  wakeFailures?: ReadonlyMap<string, WakeFailure>;
}
