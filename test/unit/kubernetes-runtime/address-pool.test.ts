// One loopback address per Gateway: distinct, stable under other Gateways coming and going, never 127.0.0.1.
import { expect } from 'chai';
import { assignAddresses, parsePool } from '../../../xds-server/kubernetes/address-pool.ts';

const gw = (ns: string, name: string, created: string) => ({ metadata: { namespace: ns, name, creationTimestamp: created } });

describe('gateway address pool', () => {
  it('parses a loopback range and refuses anything else or one holding 127.0.0.1', () => {
    expect(parsePool('127.50.0.0/16')).to.deep.equal({ first: ((127 << 24) >>> 0) + (50 << 16) + 1, size: 65_534 });
    expect(() => parsePool('10.0.0.0/16')).to.throw(/inside 127.0.0.0\/8/);
    expect(() => parsePool('127.0.0.0/16')).to.throw(/must not contain 127.0.0.1/);
    expect(() => parsePool('127.50.0.0/31')).to.throw(/prefix/);
  });

  it('gives each Gateway its own address, the same whatever else exists', () => {
    const pool = parsePool('127.50.0.0/16');
    const a = gw('ns', 'a', '2026-01-01T00:00:00Z');
    const b = gw('ns', 'b', '2026-01-02T00:00:00Z');
    const alone = assignAddresses(pool, [a]);
    const both = assignAddresses(pool, [b, a]);
    expect(both.get('ns/a')).to.equal(alone.get('ns/a'));
    expect(both.get('ns/a')).to.not.equal(both.get('ns/b'));
    expect(both.get('ns/a')).to.match(/^127\.50\.\d+\.\d+$/);
  });

  it('lets the older Gateway keep a contested slot', () => {
    const pool = { first: ((127 << 24) >>> 0) + (60 << 16) + 1, size: 1 + 1 };
    const old = gw('x', 'old', '2026-01-01T00:00:00Z');
    const young = gw('x', 'young', '2026-02-01T00:00:00Z');
    const alone = assignAddresses(pool, [old]);
    for (let i = 0; i < 5; i++) {
      const got = assignAddresses(pool, [young, old]);
      expect(got.get('x/old')).to.equal(alone.get('x/old'));
      expect(new Set(got.values()).size).to.equal(2);
    }
  });
});
