// `npm start`'s banner: commands for the config actually running, not a fixed demo line.
import { expect } from 'chai';
import { dialAddress, stackBanner, type BannerFacts } from '../../scripts/stack-banner.ts';

const facts = (over: Partial<BannerFacts>): BannerFacts => ({
  configPath: 'my/gateway.yaml',
  stateDir: '/srv/stz-state',
  listener: { address: '127.0.0.1', port: 8080 },
  adminUrl: 'http://127.0.0.1:9902',
  envoyAdminUrl: 'http://127.0.0.1:9901',
  hosts: [],
  ...over,
});

describe('npm start banner', () => {
  it("suggests one command per host on the config's listener, by protocol and state", () => {
    const lines = stackBanner(
      facts({
        hosts: [
          { name: 'shop', domains: ['*.shop.test'], protocol: 'http1', state: 'scaled_to_zero', scaler: 'process' },
          { name: 'h2', domains: ['h2.test'], protocol: 'http2', state: 'ready', scaler: 'manual' },
          { name: 'api', domains: ['api.test'], protocol: 'grpc', state: 'scaled_to_zero', scaler: 'manual' },
        ],
      }),
    );
    expect(lines[0]).to.include('http://127.0.0.1:8080').and.include('my/gateway.yaml').and.include('/srv/stz-state');
    expect(lines[1]).to.include('open http://127.0.0.1:9902/status');
    expect(lines.slice(3)).to.deep.equal([
      "  curl -H 'Host: www.shop.test' http://127.0.0.1:8080/   # shop: scaled to zero: the first request wakes it",
      "  curl --http2-prior-knowledge -H 'Host: h2.test' http://127.0.0.1:8080/   # h2: ready",
      '  grpcurl -plaintext -authority api.test 127.0.0.1:8080 grpc.health.v1.Health/Check   # api: scaled to zero, manual: held until curl -X POST http://127.0.0.1:9902/v1/hosts/api/wake',
    ]);
    expect(lines.join('\n')).to.not.include('10000').and.not.include('demo.localhost');
  });

  it('says so when no host is configured', () => {
    expect(stackBanner(facts({})).at(-1)).to.match(/^no hosts are configured/);
  });

  it('dials a wildcard bind on loopback and brackets IPv6', () => {
    expect([dialAddress('0.0.0.0'), dialAddress('::'), dialAddress('::1'), dialAddress('127.0.0.2')]).to.deep.equal(['127.0.0.1', '[::1]', '[::1]', '127.0.0.2']);
  });
});
