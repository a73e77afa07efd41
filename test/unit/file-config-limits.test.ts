// The host limit of a config file is stated, tested at its edge, and refused with a message that says why.
import { expect } from 'chai';
import { stringify } from 'yaml';
import { MAX_HOSTS, parseGatewayConfigText } from '../../sources/file/parse.ts';

const config = (n: number): string =>
  stringify({
    listener: { address: '127.0.0.1', port: 10000 },
    hosts: Array.from({ length: n }, (_, i) => ({ name: `h${i}`, domains: [`h${i}.test`], endpoints: [{ address: '127.0.0.1', port: 20000 + (i % 40000) }] })),
  });

describe('config file: how many hosts', function () {
  this.timeout(30_000);

  it(`accepts ${MAX_HOSTS} hosts`, () => {
    const r = parseGatewayConfigText(config(MAX_HOSTS));
    expect(r.ok, JSON.stringify(!r.ok && r.errors.slice(0, 3))).to.equal(true);
  });

  it('refuses one more, saying what the limit is and why', () => {
    const r = parseGatewayConfigText(config(MAX_HOSTS + 1));
    expect(r.ok).to.equal(false);
    expect(!r.ok && r.errors).to.deep.equal([
      { path: '/hosts', message: `has more than ${MAX_HOSTS} hosts, the most one file may have (the largest number tested with a real Envoy; split the hosts over several gateways)` },
    ]);
  });
});
