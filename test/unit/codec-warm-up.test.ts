// The writer's plans (snapshots/proto-writer.ts: each message type's fields, read from the protobuf reflection
// once) are made at start-up (xds-server/protos/warm-up.ts), not on the first push to Envoy. Checked in a
// fresh process: this test process has long since encoded everything.
import { execFileSync } from 'node:child_process';
import { expect } from 'chai';

const SCRIPT = `
import { messageType } from './xds-server/protos/load.ts';
import { isPlanned } from './snapshots/proto-writer.ts';
import { protobufjsFallbacks } from './snapshots/wire.ts';
import { warmUpCodec } from './xds-server/protos/warm-up.ts';
const names = ['envoy.config.cluster.v3.Cluster', 'envoy.config.endpoint.v3.ClusterLoadAssignment', 'envoy.config.listener.v3.Listener',
  'envoy.config.route.v3.RouteConfiguration', 'envoy.config.route.v3.VirtualHost', 'envoy.config.route.v3.Route', 'envoy.config.core.v3.TypedExtensionConfig',
  'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager', 'envoy.extensions.filters.http.wasm.v3.Wasm',
  'envoy.extensions.upstreams.http.v3.HttpProtocolOptions'];
const planned = () => names.filter((n) => isPlanned(messageType(n)));
const before = planned();
warmUpCodec();
process.stdout.write(JSON.stringify({ before, after: planned(), fallbacks: protobufjsFallbacks() }));
`;

describe('codec warm-up', () => {
  it('makes the writer\'s plans of every message type a snapshot uses, before anything is pushed', () => {
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', SCRIPT], { encoding: 'utf8', timeout: 60_000 });
    const { before, after, fallbacks } = JSON.parse(out) as { before: string[]; after: string[]; fallbacks: number };
    expect(before).to.deep.equal([]);
    expect(after).to.have.length(10);
    // Written by the writer, none left to protobufjs.
    expect(fallbacks).to.equal(0);
  });
});
