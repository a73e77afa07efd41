// HTTP context callbacks. The hot path is a request whose host is not listed: one header read into a
// host-allocated block, in-place normalisation, a table probe, no GC allocation. Only when the applied
// config lists clusters does a request that no domain matched cost one more host call: its upstream
// cluster (property xds.cluster_name), read the same way into a host block and probed in place.
import { DataAction, HeadersAction, LogLevel, MapType, Status, TrailersAction } from "./abi/status";
import { addHeaderMapValue, getHeaderMapValueRaw } from "./abi/http-fields";
import { HostValue } from "./abi/memory";
import { encodePropertyPath, getPropertyRaw } from "./abi/properties";
import { monotonicMs } from "./abi/clocks";
import { sendLocalResponse } from "./abi/streams";
import { normaliseAuthorityInPlace } from "./buffer/authority";
import { HostTable } from "./buffer/host-table";
import { Decision, decide } from "./buffer/decide";
import { ReplyKind, buildReply } from "./buffer/replies";
import { appliedConfig, drainWork, recordEnd, refreshTicks, registry, releasedHeldMs, tryWake } from "./vm";
import { metrics } from "./metrics";
import { logAt, logEnabled } from "./log";

const AUTHORITY = String.UTF8.encode(":authority");
const CONTENT_TYPE = String.UTF8.encode("content-type");
const GRPC_PREFIX = String.UTF8.encode("application/grpc");
/** The upstream cluster Envoy's route picked for this request (set before the filter chain runs). */
const CLUSTER_NAME_PATH = encodePropertyPath(["xds", "cluster_name"]);
/** Why Envoy sent these response headers: "via_upstream" when an upstream answered (Envoy's own detail string). */
const CODE_DETAILS_PATH = encodePropertyPath(["response", "code_details"]);
const VIA_UPSTREAM = String.UTF8.encode("via_upstream");
const header = new HostValue();
const property = new HostValue();

/** content-type starts with application/grpc (contract; Envoy's own gRPC test is the same prefix). */
function isGrpcRequest(): bool {
  if (getHeaderMapValueRaw(MapType.HttpRequestHeaders, CONTENT_TYPE, header) != Status.Ok) return false;
  const grpc = header.startsWith(GRPC_PREFIX);
  header.release();
  return grpc;
}

/** Index of the listed host whose `clusters` has this request's upstream cluster, or -1. */
function matchCluster(table: HostTable): i32 {
  if (getPropertyRaw(CLUSTER_NAME_PATH, property) != Status.Ok) return -1;
  const index = table.matchCluster(property.ptr, property.len);
  property.release();
  return index;
}

export function onRequestHeaders(contextId: u32): HeadersAction {
  const config = appliedConfig();
  if (config === null) return HeadersAction.Continue;
  const table = config.table;
  let index: i32 = -1;
  if (getHeaderMapValueRaw(MapType.HttpRequestHeaders, AUTHORITY, header) == Status.Ok) {
    const hostLen = normaliseAuthorityInPlace(header.ptr, header.len);
    index = table.match(header.ptr, hostLen);
    header.release();
  }
  // A domain match wins; the cluster is read only when some entry lists clusters (file mode never does).
  if (index < 0 && table.hasClusters()) index = matchCluster(table);
  if (index < 0) return HeadersAction.Continue;

  const host = registry.listedHost(index);
  const decision = decide(host);
  if (decision == Decision.Pass || host === null) return HeadersAction.Continue;
  const grpc = isGrpcRequest();
  const m = metrics();

  if (decision == Decision.WakeFailed) {
    const reply = buildReply(ReplyKind.WakeFailed, host.name, host.failureRetryAfterSeconds, grpc, host.failureReason);
    sendLocalResponse(reply.statusCode, reply.details, reply.body, reply.headers, <u32>reply.grpcStatus);
    m.wakeFailed.increment(1);
    if (logEnabled(LogLevel.Debug)) logAt(LogLevel.Debug, contextId, "wake failed for host " + host.name);
    return HeadersAction.StopIteration;
  }

  if (decision == Decision.Overflow) {
    const reply = buildReply(ReplyKind.Overflow, host.name, host.retryAfterSeconds, grpc);
    sendLocalResponse(reply.statusCode, reply.details, reply.body, reply.headers, <u32>reply.grpcStatus);
    m.overflowed.increment(1);
    if (logEnabled(LogLevel.Debug)) logAt(LogLevel.Debug, contextId, "overflow for host " + host.name);
    return HeadersAction.StopIteration;
  }

  const now = monotonicMs();
  const first = host.count == 0;
  registry.hold(contextId, host, now, grpc);
  m.held.increment(1);
  m.hostGauge(host.name).increment(1);
  if (logEnabled(LogLevel.Debug)) logAt(LogLevel.Debug, contextId, "holding request for host " + host.name);
  if (first) tryWake(host, now, contextId);
  refreshTicks(contextId);
  return HeadersAction.StopAllIterationAndWatermark;
}

/** While held, body chunks must not return Continue, or Envoy would resume the stream. */
export function onRequestBody(contextId: u32): DataAction {
  return registry.isHeld(contextId) ? DataAction.StopIterationAndWatermark : DataAction.Continue;
}

export function onRequestTrailers(contextId: u32): TrailersAction {
  return registry.isHeld(contextId) ? TrailersAction.StopIteration : TrailersAction.Continue;
}

/** The response header of docs/filter-contract.md "Held-time header": how long the filter held the request. */
export const HELD_MS_HEADER = "x-scale-to-zero-held-ms";

/**
 * A released request of a host with `heldHeader` gets the time it was held on its response (a request never
 * held, or of a host without the setting, costs one map probe).
 *
 * While a release or a mass answer is queued, an upstream's response is also a clock for the next batch
 * (vm.ts: MAX_ACTIONS_PER_CALLBACK). Such a callback starts from Envoy reading an upstream socket, never from
 * inside the drain of another callback's actions (that drain only re-enters the VM for answers made on the
 * spot: local replies, or a resume the router answers itself, whose details are not via_upstream), so its
 * batch nests no deeper than a tick's. Under load a 1 ms tick fires about once per event-loop pass; the
 * released requests' own responses come many to a pass, so the rest of a large release goes out
 * passes earlier (bench/release-burst.ts). Nothing is queued on the hot path: no property read.
 */
export function onResponseHeaders(contextId: u32): HeadersAction {
  if (registry.pendingWork() > 0 && fromUpstream()) drainWork(contextId);
  if (releasedHeldMs.size == 0 || !releasedHeldMs.has(contextId)) return HeadersAction.Continue;
  const held = releasedHeldMs.get(contextId);
  releasedHeldMs.delete(contextId);
  addHeaderMapValue(MapType.HttpResponseHeaders, HELD_MS_HEADER, held.toString());
  return HeadersAction.Continue;
}

/** The response headers came from an upstream (response.code_details is "via_upstream"). */
function fromUpstream(): bool {
  if (getPropertyRaw(CODE_DETAILS_PATH, property) != Status.Ok) return false;
  const yes = property.equals(VIA_UPSTREAM);
  property.release();
  return yes;
}

/** The client went away (or the stream ended): forget it so nothing tries to resume it. */
export function forgetStream(contextId: u32): void {
  if (releasedHeldMs.size > 0) releasedHeldMs.delete(contextId);
  const req = registry.forget(contextId);
  if (req === null) return;
  recordEnd(req, monotonicMs());
  metrics().cancelled.increment(1);
  if (logEnabled(LogLevel.Debug)) logAt(LogLevel.Debug, contextId, "held request cancelled by the client");
}
