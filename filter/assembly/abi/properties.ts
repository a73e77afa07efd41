// Spec section "Properties" (proxy_get_property). A property path is its segments joined by NUL bytes
// (Envoy splits the path on '\0': the attribute `xds.cluster_name` is the path "xds\0cluster_name").
// Envoy returns a string property as its raw bytes, in a block from proxy_on_memory_allocate.
import { Status } from "./status";
import { HostValue } from "./memory";

@external("env", "proxy_get_property")
export declare function proxy_get_property(
  pathPtr: usize, pathSize: usize, returnValuePtr: usize, returnValueSize: usize,
): u32;

const VALUE_PTR_SLOT: usize = memory.data(4);
const VALUE_SIZE_SLOT: usize = memory.data(4);

/** The path of a property as the ABI wants it: the segments joined by NUL bytes, UTF-8. */
export function encodePropertyPath(segments: string[]): ArrayBuffer {
  return String.UTF8.encode(segments.join("\0"));
}

/** Fills `out` (reused by the caller, so no allocation per request) with the value at `path`. */
export function getPropertyRaw(path: ArrayBuffer, out: HostValue): Status {
  store<u32>(VALUE_PTR_SLOT, 0);
  store<u32>(VALUE_SIZE_SLOT, 0);
  const status = <Status>proxy_get_property(
    changetype<usize>(path), <usize>path.byteLength, VALUE_PTR_SLOT, VALUE_SIZE_SLOT,
  );
  return out.take(status, VALUE_PTR_SLOT, VALUE_SIZE_SLOT);
}
