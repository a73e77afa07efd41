// A distinct loopback address per Gateway (when a pool is configured): Envoy binds each Gateway's listeners
// there and the Gateway's status reports it, so two Gateways may both use port 80. The assignment is a pure
// function of the Gateways that exist: each hashes to a slot of the pool, and on a collision the older
// Gateway keeps it, so an address survives restarts and the arrival of other Gateways.
import { createHash } from 'node:crypto';
import { compareNames } from '../../model/name-order.ts';

export interface AddressPool {
  /** First address, e.g. 127.50.0.1. */
  first: number;
  size: number;
}

export function parsePool(cidr: string): AddressPool {
  const m = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(cidr);
  if (!m) throw new Error(`gateway address pool "${cidr}" must be a range inside 127.0.0.0/8, e.g. 127.50.0.0/16`);
  const [a, b, c, bits] = [Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4])];
  if (a > 255 || b > 255 || c > 255 || bits < 8 || bits > 30) throw new Error(`gateway address pool "${cidr}": octets 0..255 and a prefix of /8 to /30`);
  const base = ((127 << 24) >>> 0) + (a << 16) + (b << 8) + c;
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  const network = (base & mask) >>> 0;
  const size = 2 ** (32 - bits) - 2;
  const first = network + 1;
  // Never hand out 127.0.0.1: it is where everything else on the machine listens.
  if (first <= LOCALHOST && LOCALHOST < first + size) throw new Error(`gateway address pool "${cidr}" must not contain 127.0.0.1`);
  return { first, size };
}

const LOCALHOST = ((127 << 24) >>> 0) + 1;

export interface GatewayRef {
  metadata: { namespace?: string; name: string; creationTimestamp?: string };
}

/** namespace/name -> address, for every Gateway given. */
export function assignAddresses(pool: AddressPool, gateways: readonly GatewayRef[]): Map<string, string> {
  const ordered = [...gateways].sort(
    (x, y) => compareNames(x.metadata.creationTimestamp ?? '', y.metadata.creationTimestamp ?? '') || compareNames(keyOf(x), keyOf(y)),
  );
  const taken = new Set<number>();
  const out = new Map<string, string>();
  for (const gw of ordered) {
    if (taken.size >= pool.size) break;
    let slot = createHash('sha256').update(keyOf(gw)).digest().readUInt32BE(0) % pool.size;
    while (taken.has(slot)) slot = (slot + 1) % pool.size;
    taken.add(slot);
    out.set(keyOf(gw), toIp(pool.first + slot));
  }
  return out;
}

export function keyOf(gw: GatewayRef): string {
  return `${gw.metadata.namespace ?? ''}/${gw.metadata.name}`;
}

function toIp(n: number): string {
  return [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}
