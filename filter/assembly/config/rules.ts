// The plugin configuration's bounds and name rules (docs/filter-contract.md "Plugin configuration"), stated
// once. Both sides compile this very file: the filter (AssemblyScript, config/parse.ts) and the control plane
// (TypeScript: snapshots/filter-config.ts checks what it writes, the sources take their bounds from here).
// So it uses only what both languages read the same way: integer constants below 2^31, strings, charCodeAt,
// plain loops, no imports and no language-specific types.

export const MIN_HOLD_TIMEOUT_MS = 1;
export const MAX_HOLD_TIMEOUT_MS = 3600000;
export const MIN_MAX_HELD = 0;
export const MAX_MAX_HELD = 100000;
export const MIN_RETRY_AFTER_SECONDS = 0;
export const MAX_RETRY_AFTER_SECONDS = 3600;
/** wake.leaseMs and wake.timeoutMs. Not bounded by Envoy; chosen so seconds-for-milliseconds typos are caught. */
export const MIN_WAKE_MS = 1;
export const MAX_WAKE_MS = 3600000;
export const MAX_HOST_NAME_LENGTH = 63;
export const MAX_DOMAIN_LENGTH = 255;
export const MAX_CLUSTER_NAME_LENGTH = 255;
/** A failed wake's reason travels in a response body and a grpc-message: short, one line. */
export const MAX_FAILURE_REASON_LENGTH = 200;

/** Why `name` is not a valid host entry name ([a-z0-9]([a-z0-9-]*[a-z0-9])?, at most 63), or "". */
export function hostNameProblem(name: string): string {
  const n = name.length;
  if (n == 0) return "must not be empty";
  if (n > MAX_HOST_NAME_LENGTH) return "must match [a-z0-9]([a-z0-9-]*[a-z0-9])? and be at most 63 characters";
  for (let i = 0; i < n; i++) {
    const c = name.charCodeAt(i);
    if ((c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39)) continue;
    if (c == 0x2d && i > 0 && i < n - 1) continue;
    return "must match [a-z0-9]([a-z0-9-]*[a-z0-9])? and be at most 63 characters";
  }
  return "";
}

/** Why `domain` is not a valid domain entry, or "" when it is. */
export function domainProblem(domain: string): string {
  if (domain.length == 0) return "must not be empty";
  if (domain.length > MAX_DOMAIN_LENGTH) return "is longer than 255 characters";
  const wildcard = domain.startsWith("*.");
  const body = wildcard ? domain.substring(2) : domain;
  if (body.length == 0) return "needs a suffix after '*.'";
  if (!wildcard && body.charCodeAt(0) == 0x5b) {
    // IPv6 literal, kept with its brackets as normalised requests are.
    if (body.charCodeAt(body.length - 1) != 0x5d || body.length < 4) return "is not a valid IPv6 literal";
    let colons = 0;
    for (let i = 1; i < body.length - 1; i++) {
      const c = body.charCodeAt(i);
      if (c == 0x3a) colons++;
      else if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || c == 0x2e)) {
        return "is not a valid lower-case IPv6 literal";
      }
    }
    return colons >= 2 ? "" : "is not a valid IPv6 literal";
  }
  for (let i = 0; i < body.length; i++) {
    const c = body.charCodeAt(i);
    if ((c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c == 0x2d || c == 0x5f) continue;
    if (c == 0x2e) {
      if (i == 0 || i == body.length - 1 || body.charCodeAt(i - 1) == 0x2e) return "has an empty label";
      continue;
    }
    if (c >= 0x41 && c <= 0x5a) return "must be lower-case";
    if (c == 0x3a) return "must not carry a port";
    if (c == 0x2a) return "may only use '*' as a leading '*.'";
    return "has an invalid character";
  }
  return "";
}

/** Why `cluster` is not a valid cluster entry, or "" when it is: [A-Za-z0-9_.:-], 1..255 characters. */
export function clusterProblem(cluster: string): string {
  if (cluster.length == 0) return "must not be empty";
  if (cluster.length > MAX_CLUSTER_NAME_LENGTH) return "is longer than 255 characters";
  for (let i = 0; i < cluster.length; i++) {
    const c = cluster.charCodeAt(i);
    if ((c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39)) continue;
    if (c == 0x5f || c == 0x2e || c == 0x3a || c == 0x2d) continue;
    return "has an invalid character (allowed: A-Z a-z 0-9 _ . : -)";
  }
  return "";
}

/** Why `reason` is not a valid failure reason (1..200 characters, no control characters), or "". */
export function failureReasonProblem(reason: string): string {
  if (reason.length == 0) return "must not be empty";
  if (reason.length > MAX_FAILURE_REASON_LENGTH) return "is longer than 200 characters";
  for (let i = 0; i < reason.length; i++) {
    const c = reason.charCodeAt(i);
    if (c < 0x20 || c == 0x7f) return "must not contain control characters";
  }
  return "";
}

/** `text` made a valid failure reason: control characters become spaces, too long is cut with "...". */
export function toFailureReason(text: string): string {
  let out = "";
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    out += c < 0x20 || c == 0x7f ? " " : text.charAt(i);
  }
  if (out.length == 0) return "unknown";
  if (out.length > MAX_FAILURE_REASON_LENGTH) out = out.substring(0, MAX_FAILURE_REASON_LENGTH - 3) + "...";
  return out;
}
