// Everything a snapshot is built from: the model (from whichever source) plus the runtime facts the
// control plane owns. Plain data, no behaviour.
import type { GatewayModel } from '../model/gateway-model.ts';

/** Where Envoy reaches the control plane for wake calls; absent when wake calls are off. */
export interface WakeTarget {
  address: string;
  port: number;
  leaseMs: number;
  timeoutMs: number;
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
}
