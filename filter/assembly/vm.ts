// VM-global state and the side effects that act on held requests. One instance per VM (per Envoy
// worker), shared by all plugin contexts in it.
//
// - The applied config is the newest generation this VM has seen, from any plugin context's
//   on_configure or from shared data; every request is decided against it.
// - The "driver" is the plugin context of the newest on_configure. Only it ticks: older plugin
//   contexts stop their own timer on their next tick.
// - At most MAX_ACTIONS_PER_CALLBACK resumes or local replies run inside one callback; the rest wait
//   for a 1 ms tick or an upstream's response (http-context.ts: onResponseHeaders). Envoy runs each
//   as an action after the VM call returns, and an action that calls back into this VM at once (a
//   local reply, or a resume that Envoy's router answers itself, e.g. no healthy upstream) drains the
//   remaining actions from inside that nested call: the depth grows with the batch. On Envoy 1.40
//   (bench/release-limit.ts) a batch of 260 such actions passed and 280 did not: V8 threw "Maximum
//   call stack size exceeded" in proxy_on_response_headers, the worker's VM failed, and its other held
//   requests were never answered. Resumes into a live upstream do not nest (4,000 in one callback
//   passed). 100 keeps the worst case under 40 % of what passed.
import { LogLevel, Status } from "./abi/status";
import { monotonicMs, proxy_get_current_time_nanoseconds } from "./abi/clocks";
import { setTickPeriodMilliseconds } from "./abi/timers";
import { continueRequest, sendLocalResponse, setEffectiveContext } from "./abi/streams";
import { CREATE_ONLY_CAS, getSharedData, setSharedData } from "./abi/shared-data";
import { httpCall } from "./abi/http-calls";

import { FilterConfig } from "./config/filter-config";
import { parseFilterConfig } from "./config/parse";
import { HeldRegistry, HeldRequest, HoldState, HostHold } from "./buffer/held-requests";
import { ReplyKind, buildReply } from "./buffer/replies";
import {
  encodeLease, encodeSharedConfig, parseDecimal, parseLeaseExpiry, sharedConfigGeneration, sharedConfigJson,
  sharedConfigText,
} from "./buffer/shared-records";
import { metrics } from "./metrics";
import { logAt, logEnabled } from "./log";

export const MAX_ACTIONS_PER_CALLBACK: i32 = 100;
export const WORK_TICK_MS: i32 = 1;
export const CHECK_TICK_MS: i32 = 100;

/** Shared-data keys (shared by every VM with our vm_id, including one whose code was replaced). */
export const CONFIG_KEY = "scale_to_zero.config";
export const CONFIG_GENERATION_KEY = "scale_to_zero.config.generation";
export const WAKE_KEY_PREFIX = "scale_to_zero.wake.";

export const registry = new HeldRegistry();

/**
 * Released requests of hosts with `heldHeader`: context id → ms held, until their response headers pass
 * (then x-scale-to-zero-held-ms is added) or the stream ends.
 */
export const releasedHeldMs = new Map<u32, i64>();

/**
 * Names this Envoy process in wake calls, so the control plane can sum held requests over Envoys. Shared data
 * is per process (per vm_id), so every worker finds the same id; the first to ask creates it from the wall
 * clock. (Envoy does not answer the `node` property to this filter, so the node id is not used.)
 */
export const INSTANCE_KEY = "scale_to_zero.instance";
let instanceId: string = "";
const WALL_SLOT: usize = memory.data(8, 8);
const HEX = "0123456789abcdef";

export function envoyInstanceId(): string {
  if (instanceId.length > 0) return instanceId;
  for (let attempt = 0; attempt < 2; attempt++) {
    const current = getSharedData(INSTANCE_KEY);
    if (current.status == Status.Ok && current.value.length > 0) {
      instanceId = current.value;
      return instanceId;
    }
    if (current.status != Status.NotFound) return "";
    store<u64>(WALL_SLOT, 0);
    proxy_get_current_time_nanoseconds(WALL_SLOT);
    let ns = load<u64>(WALL_SLOT) ^ <u64>monotonicMs();
    let id = "";
    do {
      id = HEX.charAt(<i32>(ns & 15)) + id;
      ns >>= 4;
    } while (ns > 0);
    setSharedData(INSTANCE_KEY, "envoy-" + id, CREATE_ONLY_CAS);
  }
  return "";
}

let applied: FilterConfig | null = null;
let appliedGeneration: i64 = 0;
let driverId: u32 = 0;
/** Tick period last set on the driver; -1 = unknown (new driver). */
let driverTickMs: i32 = -1;
let nextCheckAtMs: i64 = 0;
/** A shared config generation that failed to parse here, so it is not parsed again every check. */
let rejectedSharedGeneration: i64 = 0;

export function appliedConfig(): FilterConfig | null {
  return applied;
}

export function appliedGenerationNow(): i64 {
  return appliedGeneration;
}

export function driverContextId(): u32 {
  return driverId;
}

/**
 * Makes `config` the VM's config and queues the release of every request whose host it no longer
 * lists. pluginId is the plugin context that parsed it (it becomes the driver), or 0 when the config
 * came from shared data (the driver stays).
 */
export function adoptConfig(config: FilterConfig, pluginId: u32): void {
  applied = config;
  appliedGeneration = config.generation;
  if (pluginId != 0 && pluginId != driverId) {
    driverId = pluginId;
    driverTickMs = -1;
  }
  const queued = registry.applyConfig(config);
  if (logEnabled(LogLevel.Info)) {
    logAt(LogLevel.Info, pluginId, "applied generation " + config.generation.toString() + " listing " +
      config.hosts.length.toString() + " host(s); " + queued.toString() + " held request(s) to release");
  }
}

/** Called when the driver plugin context is deleted: hand the timer to the newest one left. */
export function replaceDriver(newDriverId: u32, currentId: u32): void {
  if (driverId == newDriverId) return;
  driverId = newDriverId;
  driverTickMs = -1;
  if (newDriverId != 0) refreshTicks(currentId, false);
}

/**
 * Sets the driver's tick period to what the current state needs: 1 ms while work is queued, the check
 * period while anything is held, 0 when idle (a root context's timer otherwise keeps firing).
 * The period applies to the root of the effective context, so switch to the driver unless it is the
 * current context. restore=false when the current context is going away (on_delete).
 */
export function refreshTicks(currentId: u32, restore: bool = true): void {
  if (driverId == 0) return;
  const want = registry.pendingWork() > 0 ? WORK_TICK_MS : registry.total > 0 ? CHECK_TICK_MS : 0;
  if (want == driverTickMs) return;
  const switched = currentId != driverId;
  if (switched && setEffectiveContext(driverId) != Status.Ok) return;
  const status = setTickPeriodMilliseconds(<u32>want);
  if (switched && restore) setEffectiveContext(currentId);
  if (status == Status.Ok) driverTickMs = want;
}

/** Bookkeeping for a held request that ends (released, timed out or cancelled): gauges and hold time. */
export function recordEnd(req: HeldRequest, nowMs: i64): void {
  const m = metrics();
  m.held.increment(-1);
  m.hostGauge(req.host.name).increment(-1);
  const held = nowMs - req.heldAtMs;
  m.holdTimeMs.record(<u64>(held > 0 ? held : 0));
}

/** Resumes or answers up to MAX_ACTIONS_PER_CALLBACK queued requests. */
export function drainWork(currentId: u32): i32 {
  let done = 0;
  let switched = false;
  const now = monotonicMs();
  const m = metrics();
  while (done < MAX_ACTIONS_PER_CALLBACK) {
    const req = registry.nextWork();
    if (req === null) break;
    done++;
    recordEnd(req, now);
    // BadArgument here means the stream is already gone (its on_done has not reached us yet).
    if (setEffectiveContext(req.contextId) != Status.Ok) {
      logAt(LogLevel.Debug, req.contextId, "held stream no longer exists");
      continue;
    }
    switched = true;
    if (req.state == HoldState.Releasing) {
      if (req.host.heldHeader) {
        const held = now - req.heldAtMs;
        releasedHeldMs.set(req.contextId, held > 0 ? held : 0);
      }
      if (continueRequest() == Status.Ok) m.released.increment(1);
    } else if (req.state == HoldState.Failing) {
      const reply = buildReply(
        ReplyKind.WakeFailed, req.host.name, req.failureRetryAfterSeconds, req.isGrpc, req.failureReason,
      );
      if (sendLocalResponse(reply.statusCode, reply.details, reply.body, reply.headers, <u32>reply.grpcStatus) == Status.Ok) {
        m.wakeFailed.increment(1);
      }
    } else {
      const host = req.host;
      const reply = buildReply(ReplyKind.Timeout, host.name, host.retryAfterSeconds, req.isGrpc);
      if (sendLocalResponse(reply.statusCode, reply.details, reply.body, reply.headers, <u32>reply.grpcStatus) == Status.Ok) {
        m.timedOut.increment(1);
      }
    }
  }
  if (switched) setEffectiveContext(currentId);
  return done;
}

/** Periodic work while anything is held: newer config in shared data, timeouts, wake retries. */
export function periodicCheck(currentId: u32): void {
  const now = monotonicMs();
  if (now < nextCheckAtMs) return;
  nextCheckAtMs = now + CHECK_TICK_MS;
  if (registry.total == 0) return;
  syncSharedConfig(currentId);
  if (now >= registry.earliestDeadlineMs) registry.queueTimeouts(now);
  const config = applied;
  if (config === null || config.wake === null) return;
  const hosts = registry.hosts;
  for (let i = 0; i < hosts.length; i++) {
    const h = unchecked(hosts[i]);
    if (h.listed && !h.failed && h.waiting.size > 0) tryWake(h, now, currentId);
  }
}

/**
 * Writes `value` under `key` unless the key already holds a generation >= `generation`
 * (isConfig: the value is "<gen>\n<json>"; otherwise a bare generation). Generation-ordered, so
 * concurrent writers (workers, and Envoy's throwaway canary VM validating a push on the main thread)
 * can only move it forward: a canary's write of a config that the workers then also accept is a no-op
 * for them, and the only VMs that read it are those holding requests, which then apply the newest config
 * a little earlier.
 */
function writeIfNewer(key: string, value: string, generation: i64, isConfig: bool): void {
  for (let attempt = 0; attempt < 4; attempt++) {
    const current = getSharedData(key);
    let status: Status;
    if (current.status == Status.NotFound) {
      status = setSharedData(key, value, CREATE_ONLY_CAS);
    } else if (current.status == Status.Ok) {
      const stored = isConfig ? sharedConfigGeneration(current.value) : parseDecimal(current.value);
      if (stored >= generation) return;
      status = setSharedData(key, value, current.cas);
    } else {
      return;
    }
    if (status != Status.CasMismatch) return;
  }
}

/** Publishes an accepted config so VMs that never see its on_configure (old code) can apply it. */
export function publishConfig(config: FilterConfig): void {
  // Config first, generation second: a reader that sees the generation finds that config or newer.
  writeIfNewer(CONFIG_KEY, encodeSharedConfig(config.generation, sharedConfigText(config)), config.generation, true);
  writeIfNewer(CONFIG_GENERATION_KEY, config.generation.toString(), config.generation, false);
}

/** Applies a newer config found in shared data; the cheap generation key is read first. */
export function syncSharedConfig(currentId: u32): void {
  const g = getSharedData(CONFIG_GENERATION_KEY);
  if (g.status != Status.Ok) return;
  const generation = parseDecimal(g.value);
  if (generation <= appliedGeneration || generation == rejectedSharedGeneration) return;
  const c = getSharedData(CONFIG_KEY);
  if (c.status != Status.Ok) return;
  const storedGeneration = sharedConfigGeneration(c.value);
  if (storedGeneration <= appliedGeneration) return;
  const parsed = parseFilterConfig(sharedConfigJson(c.value));
  const config = parsed.config;
  if (config === null || config.generation != storedGeneration) {
    rejectedSharedGeneration = generation;
    logAt(LogLevel.Warn, currentId, "ignoring unreadable config generation " + storedGeneration.toString() + " in shared data");
    return;
  }
  adoptConfig(config, 0);
}

/**
 * Sends the host's wake call if this worker wins the shared-data lease. The lease value is the
 * monotonic ms until which it is taken (Envoy's monotonic clock is process-wide). A missing key is
 * created with CREATE_ONLY_CAS so two workers cannot both create it; anything else is a
 * compare-and-swap on the cas just read. Whatever the call's outcome, the lease expiry is the retry.
 */
export function tryWake(host: HostHold, nowMs: i64, currentId: u32): void {
  const config = applied;
  if (config === null) return;
  const wake = config.wake;
  if (wake === null || nowMs < host.wakeCheckAtMs) return;
  const key = WAKE_KEY_PREFIX + host.name;
  const until = nowMs + wake.leaseMs;
  const current = getSharedData(key);
  let status: Status;
  if (current.status == Status.NotFound) {
    status = setSharedData(key, encodeLease(until), CREATE_ONLY_CAS);
  } else if (current.status == Status.Ok) {
    const expiry = parseLeaseExpiry(current.value);
    if (expiry > nowMs) {
      host.wakeCheckAtMs = expiry;
      return;
    }
    status = setSharedData(key, encodeLease(until), current.cas);
  } else {
    return;
  }
  if (status != Status.Ok) return; // another worker took it; the next check reads its expiry
  host.wakeCheckAtMs = until;

  // The reply goes to the plugin context that was effective, and Envoy cancels the call when that
  // context is destroyed: make it from the driver, the longest-lived one.
  const switched = driverId != 0 && currentId != driverId && setEffectiveContext(driverId) == Status.Ok;
  const headers = [
    ":method", "POST",
    ":path", wake.pathPrefix + host.name,
    ":authority", wake.authority,
    "content-length", "0",
  ];
  // What this Envoy holds for the host now (the per-host gauge is shared by every worker): the control
  // plane cannot see held requests otherwise (they never reach Envoy's router, so load reports miss them).
  const envoy = envoyInstanceId();
  if (envoy.length > 0) {
    headers.push("x-scale-to-zero-held");
    headers.push(metrics().hostGauge(host.name).get().toString());
    headers.push("x-scale-to-zero-envoy");
    headers.push(envoy);
  }
  const result = httpCall(wake.cluster, headers, "", <u32>wake.timeoutMs);
  if (switched) setEffectiveContext(currentId);
  if (result.status == Status.Ok) {
    metrics().wakeCalls.increment(1);
    logAt(LogLevel.Info, currentId, "wake call for host " + host.name + " sent to " + wake.cluster);
  } else {
    logAt(LogLevel.Warn, currentId, "wake call for host " + host.name + " not sent: status " + (<i32>result.status).toString());
  }
}
