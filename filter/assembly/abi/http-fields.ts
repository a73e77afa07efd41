// Spec section "HTTP fields".
import { MapType, Status } from "./status";
import { HostValue, freeHostBlock, takeString } from "./memory";
import { deserializePairs } from "./header-map-codec";

@external("env", "proxy_get_header_map_value")
export declare function proxy_get_header_map_value(
  mapType: u32, keyPtr: usize, keySize: usize, returnValuePtr: usize, returnValueSize: usize,
): u32;

@external("env", "proxy_get_header_map_pairs")
export declare function proxy_get_header_map_pairs(mapType: u32, returnDataPtr: usize, returnSizePtr: usize): u32;

const VALUE_PTR_SLOT: usize = memory.data(4);
const VALUE_SIZE_SLOT: usize = memory.data(4);

/** Fills `out` (reused by the caller, so no allocation per request) with the value of a header. */
export function getHeaderMapValueRaw(mapType: MapType, key: ArrayBuffer, out: HostValue): Status {
  store<u32>(VALUE_PTR_SLOT, 0);
  store<u32>(VALUE_SIZE_SLOT, 0);
  const status = <Status>proxy_get_header_map_value(
    mapType, changetype<usize>(key), <usize>key.byteLength, VALUE_PTR_SLOT, VALUE_SIZE_SLOT,
  );
  return out.take(status, VALUE_PTR_SLOT, VALUE_SIZE_SLOT);
}

/** The value of one header as a string, or null when absent or unreadable. */
export function getHeaderMapValue(mapType: MapType, name: string): string | null {
  const key = String.UTF8.encode(name);
  store<u32>(VALUE_PTR_SLOT, 0);
  store<u32>(VALUE_SIZE_SLOT, 0);
  const status = proxy_get_header_map_value(
    mapType, changetype<usize>(key), <usize>key.byteLength, VALUE_PTR_SLOT, VALUE_SIZE_SLOT,
  );
  if (status != Status.Ok) return null;
  return takeString(<usize>load<u32>(VALUE_PTR_SLOT), <usize>load<u32>(VALUE_SIZE_SLOT));
}

/** Every pair of a map as a flat [name, value, …] list, or null when absent or malformed. */
export function getHeaderMapPairs(mapType: MapType): string[] | null {
  store<u32>(VALUE_PTR_SLOT, 0);
  store<u32>(VALUE_SIZE_SLOT, 0);
  if (proxy_get_header_map_pairs(mapType, VALUE_PTR_SLOT, VALUE_SIZE_SLOT) != Status.Ok) return null;
  const ptr = <usize>load<u32>(VALUE_PTR_SLOT);
  const pairs = deserializePairs(ptr, <usize>load<u32>(VALUE_SIZE_SLOT));
  freeHostBlock(ptr);
  return pairs;
}

@external("env", "proxy_add_header_map_value")
export declare function proxy_add_header_map_value(
  mapType: u32, keyPtr: usize, keySize: usize, valuePtr: usize, valueSize: usize,
): u32;

/** Adds a header (the value is appended to an existing one of the same name, as Envoy does). */
export function addHeaderMapValue(mapType: MapType, name: string, value: string): Status {
  const k = String.UTF8.encode(name);
  const v = String.UTF8.encode(value);
  return <Status>proxy_add_header_map_value(
    <u32>mapType, changetype<usize>(k), <usize>k.byteLength, changetype<usize>(v), <usize>v.byteLength,
  );
}
