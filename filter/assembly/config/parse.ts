// Plugin configuration text -> FilterConfig, strictly (docs/filter-contract.md "Plugin configuration"):
// unknown fields, wrong types, out-of-range numbers, duplicate host names, domains or clusters, and an
// entry with neither a domain nor a cluster are errors, and
// any error makes proxy_on_configure return false so Envoy NACKs the push and keeps the last good one.
import { JsonKind, JsonValue, MAX_SAFE_INTEGER, parseJson } from "./json";
import { FilterConfig, HostConfig, WakeConfig } from "./filter-config";
import {
  MAX_HOLD_TIMEOUT_MS, MAX_MAX_HELD, MAX_RETRY_AFTER_SECONDS, MAX_WAKE_MS, MIN_HOLD_TIMEOUT_MS, MIN_MAX_HELD,
  MIN_RETRY_AFTER_SECONDS, MIN_WAKE_MS, clusterProblem, domainProblem, failureReasonProblem, hostNameProblem,
} from "./rules";

export class ConfigError {
  constructor(public path: string, public message: string) {}

  toString(): string {
    return this.path + ": " + this.message;
  }
}

export class ParseResult {
  config: FilterConfig | null = null;
  errors: ConfigError[] = [];
}

const TOP_FIELDS: string[] = ["generation", "hosts", "wake"];
const HOST_FIELDS: string[] = ["name", "domains", "clusters", "holdTimeoutMs", "maxHeld", "retryAfterSeconds", "failure", "heldHeader"];
const FAILURE_FIELDS: string[] = ["reason", "retryAfterSeconds"];
const WAKE_FIELDS: string[] = ["cluster", "authority", "pathPrefix", "leaseMs", "timeoutMs"];

class Checker {
  errors: ConfigError[] = [];

  add(path: string, message: string): void {
    this.errors.push(new ConfigError(path, message));
  }

  /** The member `key` of `obj` (reporting it when required and missing). */
  member(obj: JsonValue, path: string, key: string, required: bool): JsonValue | null {
    const v = obj.get(key);
    if (v === null && required) this.add(path + "." + key, "is required");
    return v;
  }

  onlyKnownFields(obj: JsonValue, path: string, known: string[]): void {
    for (let i = 0; i < obj.keys.length; i++) {
      const k = unchecked(obj.keys[i]);
      if (!known.includes(k)) this.add(path + "." + k, "unknown field");
    }
  }

  isObject(v: JsonValue, path: string): bool {
    if (v.kind == JsonKind.Object) return true;
    this.add(path, "must be an object");
    return false;
  }

  integer(v: JsonValue | null, path: string, min: i64, max: i64): i64 {
    if (v === null) return -1;
    if (v.kind != JsonKind.Number || !v.isInteger) {
      this.add(path, "must be an integer");
      return -1;
    }
    if (!v.isSafe || v.intValue < min || v.intValue > max) {
      this.add(path, "must be in " + min.toString() + ".." + max.toString());
      return -1;
    }
    return v.intValue;
  }

  nonEmptyString(v: JsonValue | null, path: string): string {
    if (v === null) return "";
    if (v.kind != JsonKind.String) {
      this.add(path, "must be a string");
      return "";
    }
    if (v.str.length == 0) this.add(path, "must not be empty");
    return v.str;
  }
}

export function isValidHostName(name: string): bool {
  return hostNameProblem(name).length == 0;
}

/**
 * Reads the array member `key` of a host entry, checking each string item with `problem` and adding
 * the valid ones to `out` and the table (`add` returns false on a duplicate). Returns the number of
 * items, or -1 when the member is absent or not an array (already reported if it is an error).
 */
function parseNameList(
  c: Checker, v: JsonValue, path: string, key: string, required: bool, out: string[],
  problem: (s: string) => string, add: (config: FilterConfig, s: string, hostIndex: i32) => bool,
  what: string, config: FilterConfig, hostIndex: i32,
): i32 {
  const list = c.member(v, path, key, required);
  if (list === null) return -1;
  if (list.kind != JsonKind.Array) {
    c.add(path + "." + key, "must be an array");
    return -1;
  }
  for (let i = 0; i < list.items.length; i++) {
    const item = unchecked(list.items[i]);
    const itemPath = path + "." + key + "[" + i.toString() + "]";
    if (item.kind != JsonKind.String) {
      c.add(itemPath, "must be a string");
      continue;
    }
    const p = problem(item.str);
    if (p.length > 0) {
      c.add(itemPath, p);
      continue;
    }
    out.push(item.str);
    if (!add(config, item.str, hostIndex)) c.add(itemPath, "duplicate " + what + ' "' + item.str + '"');
  }
  return list.items.length;
}

function addDomain(config: FilterConfig, domain: string, hostIndex: i32): bool {
  return config.table.add(domain, hostIndex);
}

function addCluster(config: FilterConfig, cluster: string, hostIndex: i32): bool {
  return config.table.addCluster(cluster, hostIndex);
}

function parseHost(c: Checker, v: JsonValue, path: string, config: FilterConfig): void {
  if (!c.isObject(v, path)) return;
  c.onlyKnownFields(v, path, HOST_FIELDS);
  const host = new HostConfig();
  const nameValue = c.member(v, path, "name", true);
  host.name = c.nonEmptyString(nameValue, path + ".name");
  if (nameValue !== null && nameValue.kind == JsonKind.String && host.name.length > 0 && !isValidHostName(host.name)) {
    c.add(path + ".name", "must match [a-z0-9]([a-z0-9-]*[a-z0-9])? and be at most 63 characters");
  }
  host.holdTimeoutMs = c.integer(
    c.member(v, path, "holdTimeoutMs", true), path + ".holdTimeoutMs", MIN_HOLD_TIMEOUT_MS, MAX_HOLD_TIMEOUT_MS,
  );
  host.maxHeld = <i32>c.integer(c.member(v, path, "maxHeld", true), path + ".maxHeld", MIN_MAX_HELD, MAX_MAX_HELD);
  host.retryAfterSeconds = <i32>c.integer(
    c.member(v, path, "retryAfterSeconds", true), path + ".retryAfterSeconds", MIN_RETRY_AFTER_SECONDS, MAX_RETRY_AFTER_SECONDS,
  );
  const failure = c.member(v, path, "failure", false);
  if (failure !== null) parseFailure(c, failure, path + ".failure", host);
  const heldHeader = c.member(v, path, "heldHeader", false);
  if (heldHeader !== null) {
    if (heldHeader.kind != JsonKind.Bool) c.add(path + ".heldHeader", "must be a boolean");
    else host.heldHeader = heldHeader.boolValue;
  }
  const hostIndex = config.hosts.length;
  if (host.name.length > 0 && !config.addHost(host)) c.add(path + ".name", 'duplicate host name "' + host.name + '"');
  const domains = parseNameList(c, v, path, "domains", true, host.domains, domainProblem, addDomain, "domain", config, hostIndex);
  const clusters = parseNameList(c, v, path, "clusters", false, host.clusters, clusterProblem, addCluster, "cluster", config, hostIndex);
  // An entry must be reachable: at least one domain or one cluster. (clusters absent counts as empty;
  // a domains or clusters member of the wrong type is already an error of its own.)
  const clustersValue = v.get("clusters");
  const clustersBad = clustersValue !== null && clusters < 0;
  if (domains == 0 && clusters <= 0 && !clustersBad) {
    c.add(path + ".domains", 'must not be empty unless "clusters" lists at least one cluster');
  }
}

/** A failed wake: the filter answers this host's requests at once with the reason (contract "Failed wakes"). */
function parseFailure(c: Checker, v: JsonValue, path: string, host: HostConfig): void {
  if (!c.isObject(v, path)) return;
  c.onlyKnownFields(v, path, FAILURE_FIELDS);
  const reasonValue = c.member(v, path, "reason", true);
  const reason = c.nonEmptyString(reasonValue, path + ".reason");
  if (reason.length > 0) {
    const p = failureReasonProblem(reason);
    if (p.length > 0) c.add(path + ".reason", p);
  }
  host.failed = true;
  host.failureReason = reason;
  host.failureRetryAfterSeconds = <i32>c.integer(
    c.member(v, path, "retryAfterSeconds", true), path + ".retryAfterSeconds", MIN_RETRY_AFTER_SECONDS, MAX_RETRY_AFTER_SECONDS,
  );
}

function parseWake(c: Checker, v: JsonValue, path: string): WakeConfig | null {
  if (!c.isObject(v, path)) return null;
  c.onlyKnownFields(v, path, WAKE_FIELDS);
  const w = new WakeConfig();
  w.cluster = c.nonEmptyString(c.member(v, path, "cluster", true), path + ".cluster");
  w.authority = c.nonEmptyString(c.member(v, path, "authority", true), path + ".authority");
  const prefixValue = c.member(v, path, "pathPrefix", true);
  w.pathPrefix = c.nonEmptyString(prefixValue, path + ".pathPrefix");
  if (w.pathPrefix.length > 0 && !w.pathPrefix.startsWith("/")) c.add(path + ".pathPrefix", "must start with '/'");
  w.leaseMs = c.integer(c.member(v, path, "leaseMs", true), path + ".leaseMs", MIN_WAKE_MS, MAX_WAKE_MS);
  w.timeoutMs = c.integer(c.member(v, path, "timeoutMs", true), path + ".timeoutMs", MIN_WAKE_MS, MAX_WAKE_MS);
  return w;
}

export function parseFilterConfig(text: string): ParseResult {
  const result = new ParseResult();
  const json = parseJson(text);
  const root = json.value;
  if (root === null) {
    result.errors.push(new ConfigError("$", "invalid JSON: " + json.error));
    return result;
  }
  const c = new Checker();
  const config = new FilterConfig();
  config.json = text;
  if (c.isObject(root, "$")) {
    c.onlyKnownFields(root, "$", TOP_FIELDS);
    config.generation = c.integer(c.member(root, "$", "generation", true), "$.generation", 1, MAX_SAFE_INTEGER);
    const hosts = c.member(root, "$", "hosts", true);
    if (hosts !== null) {
      if (hosts.kind != JsonKind.Array) {
        c.add("$.hosts", "must be an array");
      } else {
        for (let i = 0; i < hosts.items.length; i++) {
          parseHost(c, unchecked(hosts.items[i]), "$.hosts[" + i.toString() + "]", config);
        }
      }
    }
    const wake = c.member(root, "$", "wake", false);
    if (wake !== null) config.wake = parseWake(c, wake, "$.wake");
  }
  result.errors = c.errors;
  if (c.errors.length == 0) result.config = config;
  return result;
}
