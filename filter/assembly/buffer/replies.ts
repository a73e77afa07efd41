// The local reply of docs/filter-contract.md "Request handling", as a plain value.
import { jsonEscape } from "./json-text";

export const enum ReplyKind {
  Timeout = 0,
  Overflow = 1,
  /** The control plane reported the host's wake failed. */
  WakeFailed = 2,
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

export function replyMessage(kind: ReplyKind, hostName: string, retryAfterSeconds: i32, reason: string = ""): string {
  const retry = "; retry after " + retryAfterSeconds.toString() + " seconds";
  if (kind == ReplyKind.WakeFailed) return "host " + hostName + " failed to start: " + reason + retry;
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
export function buildReply(
  kind: ReplyKind, hostName: string, retryAfterSeconds: i32, isGrpc: bool, reason: string = "",
): LocalReply {
  const r = new LocalReply();
  const tag = kind == ReplyKind.Timeout ? "timeout" : kind == ReplyKind.Overflow ? "overflow" : "wake_failed";
  const error = kind == ReplyKind.Timeout ? "hold_timeout" : kind == ReplyKind.Overflow ? "hold_overflow" : "wake_failed";
  const message = replyMessage(kind, hostName, retryAfterSeconds, reason);
  r.details = "scale_to_zero_" + error;
  if (isGrpc) {
    r.grpcStatus = GRPC_UNAVAILABLE;
    r.body = message;
    r.headers = ["retry-after", retryAfterSeconds.toString(), "x-scale-to-zero", tag];
  } else {
    // Host names are [a-z0-9-] (validated in config/parse.ts); only a failure reason needs escaping.
    r.body = '{"error":"' + error + '","host":"' + hostName + '","message":"' + jsonEscape(message) + '"}';
    r.headers = [
      "retry-after", retryAfterSeconds.toString(),
      "x-scale-to-zero", tag,
      "content-type", "application/json",
    ];
  }
  return r;
}

