// The protobuf encoders are written at start-up (xds-server/protos/warm-up.ts), not on the first push to
// Envoy. Checked in a fresh process: this test process has long since encoded everything.
import { execFileSync } from 'node:child_process';
import { expect } from 'chai';

const SCRIPT = `
import { messageType } from './xds-server/protos/load.ts';
import { warmUpCodec } from './xds-server/protos/warm-up.ts';
const names = ['envoy.config.cluster.v3.Cluster', 'envoy.config.endpoint.v3.ClusterLoadAssignment', 'envoy.config.listener.v3.Listener',
  'envoy.config.route.v3.RouteConfiguration', 'envoy.config.route.v3.VirtualHost', 'envoy.config.route.v3.Route', 'envoy.config.core.v3.TypedExtensionConfig'];
// protobufjs sets a type's own encode and fromObject when it writes them (until then the prototype's stand-ins).
const written = () => names.filter((n) => { const t = messageType(n); return Object.hasOwn(t, 'encode') && Object.hasOwn(t, 'fromObject'); });
const before = written();
warmUpCodec();
process.stdout.write(JSON.stringify({ before, after: written() }));
`;

describe('codec warm-up', () => {
  it('writes the encoders of every resource type a snapshot uses, before anything is pushed', () => {
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', SCRIPT], { encoding: 'utf8', timeout: 60_000 });
    const { before, after } = JSON.parse(out) as { before: string[]; after: string[] };
    expect(before).to.deep.equal([]);
    expect(after).to.have.length(7);
  });
});
