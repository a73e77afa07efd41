// Host -> configured host index, matched on raw bytes so a lookup allocates nothing: exact domains
// first, then the longest "*.suffix"; and upstream cluster name -> configured host index, exact only
// (contract "Request handling").

const DOT: u8 = 0x2e;

function fnv1a(ptr: usize, len: usize): u32 {
  let h: u32 = 0x811c9dc5;
  for (let i: usize = 0; i < len; i++) {
    h ^= <u32>load<u8>(ptr + i);
    h *= 0x01000193;
  }
  return h;
}

/** Open-addressing table from byte strings to non-negative values; built once per config. */
class ByteKeyTable {
  private keys: Array<ArrayBuffer | null> = new Array<ArrayBuffer | null>(8);
  private hashes: StaticArray<u32> = new StaticArray<u32>(8);
  private values: StaticArray<i32> = new StaticArray<i32>(8);
  private used: i32 = 0;

  get size(): i32 {
    return this.used;
  }

  /** False when the key is already present (the caller reports a duplicate). */
  insert(key: string, value: i32): bool {
    const bytes = String.UTF8.encode(key);
    const ptr = changetype<usize>(bytes);
    const len = <usize>bytes.byteLength;
    if (this.find(ptr, len) >= 0) return false;
    if ((this.used + 1) * 2 > this.keys.length) this.grow();
    this.place(bytes, fnv1a(ptr, len), value);
    this.used++;
    return true;
  }

  /** The value for the bytes at [ptr, ptr+len), or -1. */
  find(ptr: usize, len: usize): i32 {
    if (this.used == 0) return -1;
    const h = fnv1a(ptr, len);
    const mask = this.keys.length - 1;
    let slot = <i32>(h & <u32>mask);
    while (true) {
      const k = unchecked(this.keys[slot]);
      if (k === null) return -1;
      if (unchecked(this.hashes[slot]) == h && <usize>k.byteLength == len &&
          memory.compare(changetype<usize>(k), ptr, len) == 0) {
        return unchecked(this.values[slot]);
      }
      slot = (slot + 1) & mask;
    }
    return -1;
  }

  private place(key: ArrayBuffer, h: u32, value: i32): void {
    const mask = this.keys.length - 1;
    let slot = <i32>(h & <u32>mask);
    while (unchecked(this.keys[slot]) !== null) slot = (slot + 1) & mask;
    unchecked((this.keys[slot] = key));
    unchecked((this.hashes[slot] = h));
    unchecked((this.values[slot] = value));
  }

  private grow(): void {
    const oldKeys = this.keys;
    const oldHashes = this.hashes;
    const oldValues = this.values;
    const size = oldKeys.length * 2;
    this.keys = new Array<ArrayBuffer | null>(size);
    this.hashes = new StaticArray<u32>(size);
    this.values = new StaticArray<i32>(size);
    for (let i = 0; i < oldKeys.length; i++) {
      const k = unchecked(oldKeys[i]);
      if (k !== null) this.place(k, unchecked(oldHashes[i]), unchecked(oldValues[i]));
    }
  }
}

export class HostTable {
  private exact: ByteKeyTable = new ByteKeyTable();
  private wildcard: ByteKeyTable = new ByteKeyTable();
  private clusters: ByteKeyTable = new ByteKeyTable();

  /** domain is an exact name or "*.suffix"; false when it is already in the table. */
  add(domain: string, hostIndex: i32): bool {
    if (domain.startsWith("*.")) return this.wildcard.insert(domain.substring(2), hostIndex);
    return this.exact.insert(domain, hostIndex);
  }

  /** Host index for a normalised host at [ptr, ptr+len), or -1 when no domain matches. */
  match(ptr: usize, len: usize): i32 {
    const exact = this.exact.find(ptr, len);
    if (exact >= 0) return exact;
    // The leftmost dot gives the longest suffix; starting at 1 keeps at least one label before it.
    for (let i: usize = 1; i + 1 < len; i++) {
      if (load<u8>(ptr + i) == DOT) {
        const w = this.wildcard.find(ptr + i + 1, len - i - 1);
        if (w >= 0) return w;
      }
    }
    return -1;
  }

  /** cluster is an Envoy cluster name; false when it is already in the table. */
  addCluster(cluster: string, hostIndex: i32): bool {
    return this.clusters.insert(cluster, hostIndex);
  }

  /** True when at least one cluster is listed: only then is a request's cluster worth reading. */
  hasClusters(): bool {
    return this.clusters.size > 0;
  }

  /** Host index for the cluster name at [ptr, ptr+len) (exact, case-sensitive), or -1. */
  matchCluster(ptr: usize, len: usize): i32 {
    return this.clusters.find(ptr, len);
  }
}
