// Host normalisation per docs/filter-contract.md "Request handling": :authority lower-cased, port
// stripped, IPv6 literals keep their brackets ("[::1]:8080" -> "[::1]"). Works in place on the bytes
// the host returned, so the hot path (a request for an unlisted host) allocates nothing.

const COLON: u8 = 0x3a;
const OPEN_BRACKET: u8 = 0x5b;
const CLOSE_BRACKET: u8 = 0x5d;

/**
 * Lower-cases the host part of the authority at [ptr, ptr+len) in place and returns its length (the
 * host always starts at ptr). A bare IPv6 address without brackets (more than one colon, not valid in
 * an authority but seen from odd clients) is kept whole rather than cut at its last colon.
 */
export function normaliseAuthorityInPlace(ptr: usize, len: usize): usize {
  if (len == 0) return 0;
  let hostLen = len;
  if (load<u8>(ptr) == OPEN_BRACKET) {
    for (let i: usize = 1; i < len; i++) {
      if (load<u8>(ptr + i) == CLOSE_BRACKET) {
        hostLen = i + 1;
        break;
      }
    }
  } else {
    let colons = 0;
    let firstColon: usize = 0;
    for (let i: usize = 0; i < len; i++) {
      if (load<u8>(ptr + i) == COLON) {
        if (colons == 0) firstColon = i;
        colons++;
      }
    }
    if (colons == 1) hostLen = firstColon;
  }
  for (let i: usize = 0; i < hostLen; i++) {
    const c = load<u8>(ptr + i);
    if (c >= 0x41 && c <= 0x5a) store<u8>(ptr + i, c + 0x20);
  }
  return hostLen;
}

/** String form of the same rule, for code paths that already hold a string. */
export function normaliseAuthority(authority: string): string {
  const bytes = String.UTF8.encode(authority);
  const n = normaliseAuthorityInPlace(changetype<usize>(bytes), <usize>bytes.byteLength);
  return String.UTF8.decodeUnsafe(changetype<usize>(bytes), n);
}
