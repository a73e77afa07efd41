// The spec's serialised map format (section "HTTP fields"), used for header lists we send
// (proxy_send_local_response, proxy_http_call) and for maps the host returns
// (proxy_get_header_map_pairs):
//   u32 count | count × (u32 name length, u32 value length) | count × (name bytes 0x00 value bytes 0x00)
// Little-endian. Pure: no host calls.

/** Serialises a flat [name0, value0, name1, value1, …] list. An odd trailing name is ignored. */
export function serializePairs(flat: string[]): ArrayBuffer {
  const count = flat.length >> 1;
  const encoded = new Array<ArrayBuffer>(count << 1);
  let size: i32 = 4 + count * 8;
  for (let i = 0; i < count << 1; i++) {
    const b = String.UTF8.encode(unchecked(flat[i]));
    unchecked((encoded[i] = b));
    size += b.byteLength + 1;
  }
  const out = new ArrayBuffer(size);
  const base = changetype<usize>(out);
  store<u32>(base, <u32>count);
  let sizes = base + 4;
  let data = base + 4 + <usize>(count * 8);
  for (let i = 0; i < count << 1; i++) {
    const b = unchecked(encoded[i]);
    const len = <usize>b.byteLength;
    store<u32>(sizes, <u32>len);
    sizes += 4;
    memory.copy(data, changetype<usize>(b), len);
    data += len;
    store<u8>(data, 0);
    data += 1;
  }
  return out;
}

/**
 * Parses a serialised map at [ptr, ptr+len) into a flat [name, value, …] list. Returns null when the
 * bytes are not a well-formed map (never reads outside the block).
 */
export function deserializePairs(ptr: usize, len: usize): string[] | null {
  if (len < 4) return len == 0 ? [] : null;
  const count = <usize>load<u32>(ptr);
  if (count > (len - 4) / 8) return null;
  const out = new Array<string>(0);
  let sizes = ptr + 4;
  let data = ptr + 4 + count * 8;
  const end = ptr + len;
  for (let i: usize = 0; i < count; i++) {
    const nameLen = <usize>load<u32>(sizes);
    const valueLen = <usize>load<u32>(sizes + 4);
    sizes += 8;
    if (nameLen + valueLen + 2 > end - data) return null;
    out.push(String.UTF8.decodeUnsafe(data, nameLen));
    data += nameLen + 1;
    out.push(String.UTF8.decodeUnsafe(data, valueLen));
    data += valueLen + 1;
  }
  return out;
}
