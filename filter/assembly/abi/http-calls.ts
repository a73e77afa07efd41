// Spec section "HTTP calls". The reply arrives as proxy_on_http_call_response on the plugin context
// that was effective when the call was made; Envoy cancels the call if that context is destroyed.
import { Status } from "./status";
import { serializePairs } from "./header-map-codec";

@external("env", "proxy_http_call")
export declare function proxy_http_call(
  upstreamPtr: usize, upstreamSize: usize,
  headersPtr: usize, headersSize: usize,
  bodyPtr: usize, bodySize: usize,
  trailersPtr: usize, trailersSize: usize,
  timeoutMs: u32,
  returnCalloutIdPtr: usize,
): u32;

const CALLOUT_SLOT: usize = memory.data(4);

export class HttpCallResult {
  constructor(public status: Status, public calloutId: u32) {}
}

/** Dispatches a call to `cluster`; headers is a flat list that must hold :method, :path, :authority. */
export function httpCall(cluster: string, headers: string[], body: string, timeoutMs: u32): HttpCallResult {
  const c = String.UTF8.encode(cluster);
  const h = serializePairs(headers);
  const b = String.UTF8.encode(body);
  const t = serializePairs([]);
  store<u32>(CALLOUT_SLOT, 0);
  const status = <Status>proxy_http_call(
    changetype<usize>(c), <usize>c.byteLength,
    changetype<usize>(h), <usize>h.byteLength,
    changetype<usize>(b), <usize>b.byteLength,
    changetype<usize>(t), <usize>t.byteLength,
    timeoutMs, CALLOUT_SLOT,
  );
  return new HttpCallResult(status, status == Status.Ok ? load<u32>(CALLOUT_SLOT) : 0);
}
