// Which part of the model one gateway's Envoys are sent (snapshots/gateways.ts).
import { expect } from 'chai';
import { gatewaysOf, modelForGateway } from '../../snapshots/gateways.ts';
import { validateGatewayConfig } from '../../sources/file/parse.ts';
import { fileConfigToModel } from '../../sources/file/to-model.ts';
import { twoGatewayModel } from '../support/two-gateways.ts';

describe('per-gateway model split', () => {
  it('keeps a gateway\'s own listeners and only the backends their routes reach', () => {
    const model = twoGatewayModel();
    expect(gatewaysOf(model)).to.deep.equal(['ns/a', 'ns/b']);
    const a = modelForGateway(model, 'ns/a');
    expect(a.listeners.map((l) => l.name)).to.deep.equal(['gw_a']);
    expect(a.backends.map((b) => b.name).sort()).to.deep.equal(['a', 'shared']);
    const b = modelForGateway(model, 'ns/b');
    expect(b.backends.map((x) => x.name).sort()).to.deep.equal(['b', 'shared']);
  });

  it('gives a gateway the model does not know nothing', () => {
    expect(modelForGateway(twoGatewayModel(), 'ns/none')).to.deep.equal({ listeners: [], backends: [] });
  });

  it('gives every gateway the whole model in file mode (its listener names no gateway)', () => {
    const config = validateGatewayConfig({ listener: { port: 10000 }, hosts: [{ name: 'web', domains: ['web.test'], endpoints: [{ address: '127.0.0.1', port: 8080 }] }] });
    if (!config.ok) throw new Error('bad test config');
    const model = fileConfigToModel(config.value);
    expect(gatewaysOf(model)).to.deep.equal([]);
    expect(modelForGateway(model, 'any/gateway')).to.equal(model);
  });
});
