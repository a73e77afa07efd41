// Plugin (root) context callbacks: configure, tick, wake-call replies.
import { LogLevel, MapType, Status } from "./abi/status";
import { getPluginConfiguration } from "./abi/configuration";
import { setTickPeriodMilliseconds } from "./abi/timers";
import { getHeaderMapValue } from "./abi/http-fields";
import { parseFilterConfig } from "./config/parse";
import { createPluginContext, isPluginContext, newestConfiguredPlugin, removePluginContext } from "./contexts";
import {
  adoptConfig, appliedGenerationNow, drainWork, driverContextId, periodicCheck, publishConfig, refreshTicks,
  replaceDriver,
} from "./vm";
import { metrics } from "./metrics";
import { logAt, logEnabled } from "./log";

export function onVmStart(rootId: u32): bool {
  metrics();
  createPluginContext(rootId);
  return true;
}

/**
 * Parse, then apply if it is the newest generation in this VM. Returning false makes Envoy reject the
 * push (NACK) and keep serving the last good config; that is also what Envoy's canary VM reports.
 */
export function onConfigure(rootId: u32, size: u32): bool {
  metrics();
  const plugin = createPluginContext(rootId);
  const read = getPluginConfiguration(size);
  if (read.status != Status.Ok && read.status != Status.NotFound) {
    logAt(LogLevel.Error, rootId, "cannot read the plugin configuration: status " + (<i32>read.status).toString());
    return false;
  }
  const result = parseFilterConfig(read.text);
  const config = result.config;
  if (config === null) {
    for (let i = 0; i < result.errors.length; i++) {
      logAt(LogLevel.Error, rootId, "invalid configuration: " + unchecked(result.errors[i]).toString());
    }
    return false;
  }
  plugin.config = config;
  if (config.generation < appliedGenerationNow()) {
    // Accepted (it is valid) but older than what this VM already applied, e.g. from shared data.
    logAt(LogLevel.Warn, rootId, "configuration generation " + config.generation.toString() +
      " is older than the applied one; keeping the newer");
    return true;
  }
  adoptConfig(config, rootId);
  publishConfig(config);
  drainWork(rootId);
  refreshTicks(rootId);
  return true;
}

export function onTick(rootId: u32): void {
  if (rootId != driverContextId()) {
    // An older plugin context: a newer one drives the work now, so stop this timer. (An id never
    // seen is treated the same way: stopping its timer is the harmless default.)
    if (!isPluginContext(rootId)) logAt(LogLevel.Debug, rootId, "tick for an unknown plugin context");
    setTickPeriodMilliseconds(0);
    return;
  }
  periodicCheck(rootId);
  drainWork(rootId);
  refreshTicks(rootId);
}

export function onHttpCallResponse(rootId: u32, calloutId: u32, numHeaders: u32): void {
  // Envoy reports a failed call (reset, timeout, no cluster) with no headers.
  let status: string | null = null;
  if (numHeaders > 0) status = getHeaderMapValue(MapType.HttpCallResponseHeaders, ":status");
  if (status === null) {
    logAt(LogLevel.Warn, rootId, "wake call " + calloutId.toString() + " failed; retried when the lease expires");
  } else if (!status.startsWith("2")) {
    logAt(LogLevel.Warn, rootId, "wake call " + calloutId.toString() + " answered " + status + "; retried when the lease expires");
  } else if (logEnabled(LogLevel.Debug)) {
    logAt(LogLevel.Debug, rootId, "wake call " + calloutId.toString() + " answered " + status);
  }
}

export function onPluginDelete(rootId: u32): void {
  removePluginContext(rootId);
  if (rootId != driverContextId()) return;
  const next = newestConfiguredPlugin();
  replaceDriver(next === null ? 0 : next.id, rootId);
}
