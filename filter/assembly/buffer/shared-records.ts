// Text encodings of the values this filter keeps in Envoy's shared data, shared by every VM (every
// worker, and a VM whose code was replaced) under the same vm_id. Pure; the keys live in vm.ts.

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
