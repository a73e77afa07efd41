// Two Envoys on one machine with the same gateway listener: Linux lets both bind the port when the listener
// sets SO_REUSEPORT (Envoy's default), and the kernel then splits connections between them silently. Our
// listeners do not set it, so the second Envoy cannot bind, NACKs the listener, and the control plane shows
// which Envoy and why.
import { expect } from 'chai';
import { startEnvoy } from '../../envoy-bootstrap/envoy.ts';
import { renderBootstrap } from '../../envoy-bootstrap/render.ts';
import { FILE_LISTENER_NAME } from '../../sources/file/to-model.ts';
import { eventually } from '../support/eventually.ts';
import { http1Request } from '../support/http-client.ts';
import { freePort } from '../support/ports.ts';
import { startStack } from '../support/stack.ts';

interface NodesBody {
  nodes: { nodeId: string; types: { listener?: { nack?: { message: string } } } }[];
}

describe('two Envoys configured with the same gateway port', function () {
  this.timeout(60_000);

  it('the second cannot share the port: its listener is refused, NACKed and shown with the reason', async () => {
    const port = await freePort();
    const stack = await startStack({
      config: (u) => ({
        listener: { address: '127.0.0.1', port },
        hosts: [{ name: 'web', domains: ['web.test'], endpoints: [{ address: '127.0.0.1', port: u.httpPort }] }],
      }),
    });
    const second = await startEnvoy({ bootstrap: renderBootstrap({ nodeId: 'second-envoy', xdsAddress: '127.0.0.1', xdsPort: stack.cp.xdsPort, ...(stack.cp.pki ? { xdsTls: stack.cp.pki.envoyFiles } : {}) }) });
    try {
      const nack = await eventually(async () => {
        const body = (await (await stack.adminFetch('/v1/nodes')).json()) as NodesBody;
        const n = body.nodes.find((node) => node.nodeId === 'second-envoy')?.types.listener?.nack;
        if (!n) throw new Error('no listener NACK from the second Envoy yet');
        return n;
      }, { what: "the second Envoy's listener NACK" });
      expect(nack.message).to.match(/address already in use/i);
      expect(await second.listenerPort(FILE_LISTENER_NAME)).to.equal(undefined);
      // The first Envoy keeps the port and serves it alone.
      const first = body((await (await stack.adminFetch('/v1/nodes')).json()) as NodesBody);
      expect(first.types.listener?.nack).to.equal(undefined);
      expect((await http1Request({ port, host: 'web.test' })).status).to.equal(200);
    } finally {
      await second.stop();
      await stack.close();
    }

    function body(b: NodesBody): NodesBody['nodes'][number] {
      const node = b.nodes.find((n) => n.nodeId !== 'second-envoy');
      if (!node) throw new Error('the first Envoy is not listed');
      return node;
    }
  });
});
