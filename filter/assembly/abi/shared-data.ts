// Spec section "Shared key-value store". Process-wide, keyed by vm_id, with compare-and-swap.
// Host semantics that callers must design around (proxy-wasm-cpp-host SharedData::set): a set with
// cas 0 is unconditional, and on a key that does not exist yet the cas is not checked at all, so two
// threads can both "create" a key. See CREATE_ONLY_CAS.
import { Status } from "./status";
import { takeString } from "./memory";

@external("env", "proxy_get_shared_data")
export declare function proxy_get_shared_data(
  keyPtr: usize, keySize: usize, returnValuePtr: usize, returnValueSize: usize, returnCasPtr: usize,
): u32;

@external("env", "proxy_set_shared_data")
export declare function proxy_set_shared_data(
  keyPtr: usize, keySize: usize, valuePtr: usize, valueSize: usize, cas: u32,
): u32;

/**
 * A cas to create a key only if it is missing: on a missing key the host ignores the cas (the set
 * succeeds), on an existing key it fails with CasMismatch unless that key's cas happens to equal this
 * value. The host hands out cas values from one counter starting low, so a collision needs about 2^32
 * shared-data writes in one process; its cost would be one duplicate lease or config write.
 */
export const CREATE_ONLY_CAS: u32 = 0xffffffff;

const VALUE_PTR_SLOT: usize = memory.data(4);
const VALUE_SIZE_SLOT: usize = memory.data(4);
const CAS_SLOT: usize = memory.data(4);

export class SharedValue {
  constructor(public status: Status, public value: string, public cas: u32) {}
}

/** status NotFound = the key does not exist. */
export function getSharedData(key: string): SharedValue {
  const k = String.UTF8.encode(key);
  store<u32>(VALUE_PTR_SLOT, 0);
  store<u32>(VALUE_SIZE_SLOT, 0);
  store<u32>(CAS_SLOT, 0);
  const status = <Status>proxy_get_shared_data(
    changetype<usize>(k), <usize>k.byteLength, VALUE_PTR_SLOT, VALUE_SIZE_SLOT, CAS_SLOT,
  );
  if (status != Status.Ok) return new SharedValue(status, "", 0);
  const value = takeString(<usize>load<u32>(VALUE_PTR_SLOT), <usize>load<u32>(VALUE_SIZE_SLOT));
  return new SharedValue(status, value, load<u32>(CAS_SLOT));
}

/** CasMismatch = someone else wrote the key since `cas` was read. */
export function setSharedData(key: string, value: string, cas: u32): Status {
  const k = String.UTF8.encode(key);
  const v = String.UTF8.encode(value);
  return <Status>proxy_set_shared_data(
    changetype<usize>(k), <usize>k.byteLength, changetype<usize>(v), <usize>v.byteLength, cas,
  );
}
