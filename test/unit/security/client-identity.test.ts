// Which snapshot group a client gets from its certificate's identity and its node: pure rules.
import { expect } from 'chai';
import { DEFAULT_GROUP, GATEWAY_METADATA_KEY, PROXYLESS_GROUP } from '../../../xds-server/cache/snapshot-cache.ts';
import type { NodeInfo } from '../../../xds-server/protos/codec.ts';
import { ALL_GATEWAYS_IDENTITY, clientIdentityOf, groupForClient } from '../../../xds-server/security/client-identity.ts';
import { gatewayIdentity } from '../../../xds-server/security/pki.ts';

const node = (gateway?: string, userAgent = 'envoy'): NodeInfo =>
  ({ id: 'n', user_agent_name: userAgent, ...(gateway ? { metadata: { fields: { [GATEWAY_METADATA_KEY]: { stringValue: gateway } } } } : {}) }) as unknown as NodeInfo;

describe('security/client-identity', () => {
  it('reads a gateway identity, the all-gateways identity, or none', () => {
    expect(clientIdentityOf(['spiffe://other/x', gatewayIdentity('ns', 'a')])).to.deep.equal({ kind: 'gateway', uri: gatewayIdentity('ns', 'a'), gateway: 'ns/a' });
    expect(clientIdentityOf([ALL_GATEWAYS_IDENTITY])).to.deep.equal({ kind: 'all-gateways', uri: ALL_GATEWAYS_IDENTITY });
    expect(clientIdentityOf(['spiffe://scaletozero.dev/control-plane'])).to.equal(undefined);
    expect(clientIdentityOf([])).to.equal(undefined);
  });

  it('pins a gateway certificate to its gateway, whatever the node leaves out, and refuses a contradicting node', () => {
    const a = { kind: 'gateway' as const, uri: gatewayIdentity('ns', 'a'), gateway: 'ns/a' };
    expect(groupForClient(a, node())).to.deep.equal({ ok: true, group: 'gateway/ns/a' });
    expect(groupForClient(a, node('ns/a'))).to.deep.equal({ ok: true, group: 'gateway/ns/a' });
    // Even a client that says it is proxyless gRPC gets its gateway's group, not the proxyless one.
    expect(groupForClient(a, node(undefined, 'gRPC Node'))).to.deep.equal({ ok: true, group: 'gateway/ns/a' });
    const refused = groupForClient(a, node('ns/b'));
    expect(refused).to.include({ ok: false, reason: 'identity_mismatch' });
    expect((refused as { message: string }).message).to.contain('ns/b').and.contain('ns/a');
  });

  it("serves the file gateway's Envoys the default group (the whole file)", () => {
    expect(groupForClient({ kind: 'gateway', uri: 'u', gateway: 'file/gateway', wholeModel: true }, node())).to.deep.equal({ ok: true, group: DEFAULT_GROUP });
  });

  it('leaves plaintext and all-gateways clients to their node, as before', () => {
    for (const identity of [null, { kind: 'all-gateways' as const, uri: ALL_GATEWAYS_IDENTITY }]) {
      expect(groupForClient(identity, node())).to.deep.equal({ ok: true, group: DEFAULT_GROUP });
      expect(groupForClient(identity, node('ns/b'))).to.deep.equal({ ok: true, group: 'gateway/ns/b' });
      expect(groupForClient(identity, node(undefined, 'gRPC Node'))).to.deep.equal({ ok: true, group: PROXYLESS_GROUP });
    }
  });
});
