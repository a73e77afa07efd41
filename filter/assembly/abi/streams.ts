// Spec sections "Common stream operations" and "HTTP streams", plus proxy_set_effective_context
// ("Context lifecycle"): the host attributes calls made by the module to the effective context, which
// is how a tick on the plugin context resumes or answers a request held by an HTTP context.
import { NO_GRPC_STATUS, Status, StreamType } from "./status";
import { serializePairs } from "./header-map-codec";

@external("env", "proxy_set_effective_context")
export declare function proxy_set_effective_context(contextId: u32): u32;

@external("env", "proxy_continue_stream")
export declare function proxy_continue_stream(streamType: u32): u32;

@external("env", "proxy_send_local_response")
export declare function proxy_send_local_response(
  statusCode: u32,
  detailsPtr: usize, detailsSize: usize,
  bodyPtr: usize, bodySize: usize,
  headersPtr: usize, headersSize: usize,
  grpcStatus: u32,
): u32;

/** BadArgument when the context no longer exists in the host (e.g. the client went away). */
export function setEffectiveContext(contextId: u32): Status {
  return <Status>proxy_set_effective_context(contextId);
}

export function continueRequest(): Status {
  return <Status>proxy_continue_stream(StreamType.Request);
}

/**
 * Sends a local reply on the effective context. `headers` is a flat [name, value, …] list;
 * grpcStatus NO_GRPC_STATUS (-1) means a plain HTTP reply.
 */
export function sendLocalResponse(
  statusCode: u32, details: string, body: string, headers: string[], grpcStatus: u32 = NO_GRPC_STATUS,
): Status {
  const d = String.UTF8.encode(details);
  const b = String.UTF8.encode(body);
  const h = serializePairs(headers);
  return <Status>proxy_send_local_response(
    statusCode,
    changetype<usize>(d), <usize>d.byteLength,
    changetype<usize>(b), <usize>b.byteLength,
    changetype<usize>(h), <usize>h.byteLength,
    grpcStatus,
  );
}
