// The local reply of docs/filter-contract.md "Request handling", as a plain value.

export const enum ReplyKind {
  Timeout = 0,
  Overflow = 1,
}

/** gRPC UNAVAILABLE: clients treat it as retryable. */
export const GRPC_UNAVAILABLE: i32 = 14;

export class LocalReply {
  statusCode: u32 = 503;
  /** Envoy's response code details (access log %RESPONSE_CODE_DETAILS%). */
  details: string = "";
  body: string = "";
  /** Flat [name, value, …]. */
  headers: string[] = [];
  /** -1 for a plain HTTP reply. */
  grpcStatus: i32 = -1;
}

export function replyMessage(kind: ReplyKind, hostName: string, retryAfterSeconds: i32): string {
  const retry = "; retry after " + retryAfterSeconds.toString() + " seconds";
  if (kind == ReplyKind.Timeout) {
    return "host " + hostName + " is starting and did not become ready in time" + retry;
  }
  return "too many requests are waiting for host " + hostName + " to start" + retry;
}

/**
 * For gRPC, Envoy turns a local reply with a grpc status into a trailers-only response whose
 * grpc-message is the body, and sets content-type itself (a second content-type would be invalid),
 * so the body is the bare message there.
 */
export function buildReply(kind: ReplyKind, hostName: string, retryAfterSeconds: i32, isGrpc: bool): LocalReply {
  const r = new LocalReply();
  const tag = kind == ReplyKind.Timeout ? "timeout" : "overflow";
  const error = kind == ReplyKind.Timeout ? "hold_timeout" : "hold_overflow";
  const message = replyMessage(kind, hostName, retryAfterSeconds);
  r.details = "scale_to_zero_" + error;
  if (isGrpc) {
    r.grpcStatus = GRPC_UNAVAILABLE;
    r.body = message;
    r.headers = ["retry-after", retryAfterSeconds.toString(), "x-scale-to-zero", tag];
  } else {
    // Host names are [a-z0-9-] (validated in config/parse.ts) and the message is built from them and
    // digits, so nothing here needs JSON escaping.
    r.body = '{"error":"' + error + '","host":"' + hostName + '","message":"' + message + '"}';
    r.headers = [
      "retry-after", retryAfterSeconds.toString(),
      "x-scale-to-zero", tag,
      "content-type", "application/json",
    ];
  }
  return r;
}
