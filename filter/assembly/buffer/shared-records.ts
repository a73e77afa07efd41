// Text encodings of the values this filter keeps in Envoy's shared data, shared by every VM (every
// worker, and a VM whose code was replaced) under the same vm_id. Pure; the keys live in vm.ts.
// A compatibility format (docs/filter-contract.md "Shared data", record version 1): a VM running an older
// build reads what this one writes, so these encodings only ever change in ways every older reader accepts.
import { FilterConfig } from "../config/filter-config";
import { jsonString, jsonStringArray } from "./json-text";

/** Parses a non-negative decimal integer; -1 when the text is not one. */
export function parseDecimal(text: string, start: i32 = 0, end: i32 = -1): i64 {
  const stop = end < 0 ? text.length : end;
  if (stop <= start || stop - start > 18) return -1;
  let v: i64 = 0;
  for (let i = start; i < stop; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) return -1;
    v = v * 10 + <i64>(c - 48);
  }
  return v;
}

/** Wake lease: the monotonic millisecond until which one worker owns the host's wake call. */
export function encodeLease(expiresAtMs: i64): string {
  return expiresAtMs.toString();
}

/** Unreadable leases count as expired (0) so a bad value cannot block wake calls forever. */
export function parseLeaseExpiry(value: string): i64 {
  const v = parseDecimal(value);
  return v < 0 ? 0 : v;
}

/** Newest accepted configuration: "<generation>\n<config JSON>". */
export function encodeSharedConfig(generation: i64, json: string): string {
  return generation.toString() + "\n" + json;
}

/** Generation of an encoded config, or -1. */
export function sharedConfigGeneration(value: string): i64 {
  const nl = value.indexOf("\n");
  if (nl < 0) return -1;
  return parseDecimal(value, 0, nl);
}

export function sharedConfigJson(value: string): string {
  const nl = value.indexOf("\n");
  return nl < 0 ? "" : value.substring(nl + 1);
}

/**
 * The config JSON for the shared record: the text as received when it is already version 1, otherwise the
 * version 1 subset. Older builds reject unknown fields, so a `failure` or `heldHeader` (added after version 1) would make
 * them ignore the whole record, and with it every release; without it they hold a failed host's requests
 * until holdTimeoutMs, as they always did. Key order and layout are the control plane's (no whitespace).
 */
export function sharedConfigText(config: FilterConfig): string {
  let laterFields = false;
  for (let i = 0; i < config.hosts.length; i++) {
    const h = unchecked(config.hosts[i]);
    if (h.failed || h.heldHeader) laterFields = true;
  }
  if (!laterFields) return config.json;
  let out = '{"generation":' + config.generation.toString() + ',"hosts":[';
  for (let i = 0; i < config.hosts.length; i++) {
    const h = unchecked(config.hosts[i]);
    if (i > 0) out += ",";
    out += '{"name":' + jsonString(h.name) + ',"domains":' + jsonStringArray(h.domains);
    if (h.clusters.length > 0) out += ',"clusters":' + jsonStringArray(h.clusters);
    out += ',"holdTimeoutMs":' + h.holdTimeoutMs.toString() + ',"maxHeld":' + h.maxHeld.toString() +
      ',"retryAfterSeconds":' + h.retryAfterSeconds.toString() + "}";
  }
  out += "]";
  const w = config.wake;
  if (w !== null) {
    out += ',"wake":{"cluster":' + jsonString(w.cluster) + ',"authority":' + jsonString(w.authority) +
      ',"pathPrefix":' + jsonString(w.pathPrefix) + ',"leaseMs":' + w.leaseMs.toString() +
      ',"timeoutMs":' + w.timeoutMs.toString() + "}";
  }
  return out + "}";
}
