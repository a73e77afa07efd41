// The proxyless gRPC clients' snapshot: pure, from the same model as the Envoys'. Every resource must also
// encode (the real client rejected an endpoint without a locality; a bare number in a wrapper field does
// not encode at all).
import { expect } from 'chai';
import type { GatewayModel } from '../../model/gateway-model.ts';
import { buildProxylessSnapshot } from '../../snapshots/api-listener.ts';
import { PUSH_ORDER } from '../../snapshots/type-urls.ts';
import { encodeResource } from '../../xds-server/protos/codec.ts';

const forward = (backend: string) => ({ kind: 'forward' as const, backends: [{ backend, weight: 1 }] });
const route = (backend: string) => ({ name: `r_${backend}`, match: { path: { kind: 'prefix' as const, value: '/' } }, action: forward(backend) });

const model: GatewayModel = {
  backends: [
    { name: 'rpc', clusterName: 'host_rpc', protocol: 'grpc', endpoints: [{ address: '127.0.0.1', port: 9000 }] },
    { name: 'web', clusterName: 'host_web', protocol: 'http1', endpoints: [{ address: '127.0.0.1', port: 8000 }] },
  ],
  listeners: [
    {
      name: 'plain',
      address: '0.0.0.0',
      port: 10000,
      routeConfigName: 'plain_routes',
      virtualHosts: [
        { name: 'rpc', domains: ['rpc.test', '*.rpc.test'], routes: [route('rpc')] },
        { name: 'web', domains: ['web.test'], routes: [route('web')] },
      ],
    },
    {
      name: 'secure',
      address: '127.0.0.1',
      port: 10443,
      routeConfigName: 'secure_routes',
      virtualHosts: [{ name: 'rpc2', domains: ['rpc2.test'], routes: [route('rpc')] }],
      tls: { filterChains: [{ serverNames: [], certificates: [{ certificateChain: 'x', privateKey: 'y' }] }] },
    },
  ],
};

describe('proxyless gRPC snapshot (API listeners)', () => {
  const result = buildProxylessSnapshot({ model, held: new Set(['rpc']), generation: 1, filterWasmPath: '/f.wasm' });
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  const { resources } = result.value;

  it('serves an API listener per exact domain of a gRPC host on a plaintext listener, and nothing else', () => {
    expect([...resources.listener.keys()]).to.deep.equal(['rpc.test']);
    expect([...resources.route.keys()]).to.deep.equal(['proxyless_routes_rpc.test']);
    expect([...resources.cluster.keys()]).to.deep.equal(['proxyless_via_plain']);
    expect(resources.extensionConfig.size).to.equal(0);
  });

  it('leads to the gateway listener (a wildcard bind address becomes loopback), not to the backend', () => {
    const cla = resources.endpoint.get('proxyless_via_plain') as unknown as { endpoints: { locality: unknown; lb_endpoints: { endpoint: { address: unknown } }[] }[] };
    expect(cla.endpoints[0]!.locality).to.deep.equal({ region: 'gateway' });
    expect(cla.endpoints[0]!.lb_endpoints[0]!.endpoint.address).to.deep.equal({ socket_address: { address: '127.0.0.1', port_value: 10000 } });
  });

  it('does not change when a host is held or released (the gateway holds, not the client)', () => {
    const released = buildProxylessSnapshot({ model, held: new Set(), generation: 2, filterWasmPath: '/f.wasm' });
    expect(released.ok && released.value.versions).to.deep.equal(result.value.versions);
  });

  it('encodes every resource', () => {
    for (const kind of PUSH_ORDER) for (const r of resources[kind].values()) expect(() => encodeResource(kind, r), `${kind} ${r.name}`).to.not.throw();
  });
});
