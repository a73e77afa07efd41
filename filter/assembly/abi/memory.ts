// Spec section "Memory management". The host writes values it returns (header values, configuration,
// shared data) into blocks it obtains from proxy_on_memory_allocate; the module owns and frees them.
// Those blocks come from the raw allocator (heap.alloc), not the GC, so a host-returned value costs no
// GC pressure and can be read in place on the hot path and freed right after.

import { Status } from "./status";

/**
 * A value the host returned, left in place in its block for the hot path: the caller reads [ptr, ptr+len)
 * and must call `release()`. status NotFound = nothing there (ptr 0). Reused by its caller, so a lookup
 * allocates nothing per request.
 */
export class HostValue {
  status: Status = Status.NotFound;
  ptr: usize = 0;
  len: usize = 0;

  /** Takes what a host call wrote into its return slots; a block returned with a failed status is freed. */
  take(status: Status, ptrSlot: usize, sizeSlot: usize): Status {
    this.status = status;
    const ptr = <usize>load<u32>(ptrSlot);
    if (status == Status.Ok) {
      this.ptr = ptr;
      this.len = <usize>load<u32>(sizeSlot);
    } else {
      freeHostBlock(ptr);
      this.ptr = 0;
      this.len = 0;
    }
    return status;
  }

  /** The value begins with `bytes`. */
  startsWith(bytes: ArrayBuffer): bool {
    const n = <usize>bytes.byteLength;
    return this.len >= n && memory.compare(this.ptr, changetype<usize>(bytes), n) == 0;
  }

  /** The value is exactly `bytes`. */
  equals(bytes: ArrayBuffer): bool {
    return this.len == <usize>bytes.byteLength && this.startsWith(bytes);
  }

  release(): void {
    freeHostBlock(this.ptr);
    this.ptr = 0;
    this.len = 0;
  }
}

export function proxy_on_memory_allocate(size: usize): usize {
  return heap.alloc(size);
}

/** Frees a block the host obtained through proxy_on_memory_allocate (0 = the host returned nothing). */
export function freeHostBlock(ptr: usize): void {
  if (ptr != 0) heap.free(ptr);
}

/** Decodes a host-returned UTF-8 block into a string and frees the block. */
export function takeString(ptr: usize, len: usize): string {
  if (ptr == 0 || len == 0) {
    freeHostBlock(ptr);
    return "";
  }
  const s = String.UTF8.decodeUnsafe(ptr, len);
  heap.free(ptr);
  return s;
}

/** A string as UTF-8 bytes in GC memory, to hand to the host for the duration of one call. */
export function utf8(s: string): ArrayBuffer {
  return String.UTF8.encode(s);
}

@inline export function bufPtr(b: ArrayBuffer): usize {
  return changetype<usize>(b);
}

@inline export function bufLen(b: ArrayBuffer): usize {
  return <usize>b.byteLength;
}
