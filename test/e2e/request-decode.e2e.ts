// Our ADS request reader (xds-server/protos/request-decode.ts) against what a real Envoy sends: two Envoys, one
// on state-of-the-world ADS, one on delta, talk to the control plane through a recording relay; every request
// they send (the first with the node and its metadata, subscriptions with resource names, ACKs, and NACKs with
// error_detail: the gateway's port is held by another socket, so Envoy refuses the listener) is read by both
// our reader and protobufjs, which must give the same object.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import * as grpc from '@grpc/grpc-js';
import { stringify } from 'yaml';
import { startEnvoy, type EnvoyProcess } from '../../envoy-bootstrap/envoy.ts';
import { renderBootstrap } from '../../envoy-bootstrap/render.ts';
import { TYPE_URLS } from '../../snapshots/type-urls.ts';
import { ADS_PATH, DELTA_ADS_PATH } from '../../xds-server/ads/service.ts';
import { startControlPlane, type ControlPlane } from '../../xds-server/control-plane.ts';
import { silentLogger } from '../../xds-server/log.ts';
import {
  decodeDeltaDiscoveryRequest,
  decodeDeltaDiscoveryRequestByProtobufjs,
  decodeDiscoveryRequest,
  decodeDiscoveryRequestByProtobufjs,
  type DeltaDiscoveryRequest,
  type DiscoveryRequest,
  nodeMetadataString,
} from '../../xds-server/protos/codec.ts';
import { eventually } from '../support/eventually.ts';
import { assertFilterBuilt, FILTER_WASM } from '../support/stack.ts';

const identity = (b: Buffer): Buffer => b;
const raw = { requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity };

interface Recorded {
  api: 'sotw' | 'delta';
  bytes: Buffer;
}

/** A gRPC relay for both ADS methods that records each request's bytes on its way to the control plane. */
async function startRecordingRelay(target: string, recorded: Recorded[]): Promise<{ port: number; close(): void }> {
  const client = new grpc.Client(target, grpc.credentials.createInsecure());
  const relay = (api: Recorded['api'], method: string) => (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
    const upstream = client.makeBidiStreamRequest(method, identity, identity);
    call.on('data', (bytes: Buffer) => {
      recorded.push({ api, bytes });
      upstream.write(bytes);
    });
    upstream.on('data', (bytes: Buffer) => call.write(bytes));
    call.on('end', () => upstream.end());
    call.on('error', () => upstream.cancel());
    upstream.on('end', () => call.end());
    upstream.on('error', () => call.end());
  };
  const server = new grpc.Server();
  server.addService(
    {
      StreamAggregatedResources: { path: ADS_PATH, requestStream: true, responseStream: true, ...raw },
      DeltaAggregatedResources: { path: DELTA_ADS_PATH, requestStream: true, responseStream: true, ...raw },
    },
    { StreamAggregatedResources: relay('sotw', ADS_PATH), DeltaAggregatedResources: relay('delta', DELTA_ADS_PATH) },
  );
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  return {
    port,
    close: () => {
      server.forceShutdown();
      client.close();
    },
  };
}

const hosts = (port: number, names: string[]): Record<string, unknown> => ({
  listener: { address: '127.0.0.1', port },
  hosts: names.map((name, i) => ({ name, domains: [`${name}.test`], endpoints: [{ address: '127.0.0.1', port: 20000 + i }] })),
});

describe('ADS requests from a real Envoy: our reader reads them as protobufjs does', function () {
  this.timeout(120_000);
  let dir: string;
  let cp: ControlPlane;
  let relay: { port: number; close(): void } | undefined;
  let blocker: net.Server | undefined;
  let port: number;
  const envoys: EnvoyProcess[] = [];
  const recorded: Recorded[] = [];

  before(async () => {
    assertFilterBuilt();
    dir = await mkdtemp(path.join(os.tmpdir(), 'stz-request-decode-'));
    // Someone else holds the gateway's port: both Envoys refuse the listener (a NACK with error_detail).
    blocker = net.createServer();
    await new Promise<void>((r) => blocker!.listen(0, '127.0.0.1', () => r()));
    port = (blocker.address() as net.AddressInfo).port;
    const configPath = path.join(dir, 'gateway.yaml');
    // Names of several lengths, ASCII and not (a host name is a DNS label; the cluster name carries it).
    await writeFile(configPath, stringify(hosts(port, ['a', 'svc-with-a-longer-name', ...Array.from({ length: 150 }, (_, i) => `h${i}`)])));
    cp = await startControlPlane({ configPath, stateDir: path.join(dir, 'state'), filterWasmPath: FILTER_WASM, log: silentLogger, xdsSecurity: 'plaintext' });
    relay = await startRecordingRelay(`127.0.0.1:${cp.xdsPort}`, recorded);
    for (const apiType of ['GRPC', 'DELTA_GRPC'] as const) {
      envoys.push(
        await startEnvoy({
          bootstrap: renderBootstrap({ nodeId: `request-decode-${apiType}-${process.pid}`, xdsAddress: '127.0.0.1', xdsPort: relay.port, apiType, metadata: { 'test.example/relay': 'recorded' } }),
          concurrency: 1,
          logLevel: 'critical',
        }),
      );
    }
  });

  after(async () => {
    for (const e of envoys) await e.stop();
    relay?.close();
    await new Promise((r) => (blocker ? blocker.close(r) : r(undefined)));
    await cp?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('reads every request of both ADS variants, NACKs and a config change included, as protobufjs does', async () => {
    const sotw = (): DiscoveryRequest[] => recorded.filter((r) => r.api === 'sotw').map((r) => decodeDiscoveryRequestByProtobufjs(r.bytes));
    const delta = (): DeltaDiscoveryRequest[] => recorded.filter((r) => r.api === 'delta').map((r) => decodeDeltaDiscoveryRequestByProtobufjs(r.bytes));
    const eds = TYPE_URLS.endpoint;
    const lds = TYPE_URLS.listener;
    await eventually(
      () => {
        const s = sotw();
        const d = delta();
        if (!s.some((r) => r.type_url === eds && r.resource_names.length >= 152 && r.version_info !== '')) throw new Error('no SotW EDS ACK yet');
        if (!d.some((r) => r.type_url === eds && r.resource_names_subscribe.length >= 152)) throw new Error('no delta EDS subscription yet');
        if (!s.some((r) => r.type_url === lds && r.error_detail) || !d.some((r) => r.type_url === lds && r.error_detail)) throw new Error('no LDS NACK yet');
      },
      { timeoutMs: 30_000, what: 'both Envoys subscribing to EDS and NACKing the listener' },
    );
    // A change: one host gone, one added (unsubscriptions and new names on the delta stream).
    const before = recorded.length;
    await writeFile(path.join(dir, 'gateway.yaml'), stringify(hosts(port, ['a', 'svc-with-a-longer-name', 'added-later', ...Array.from({ length: 149 }, (_, i) => `h${i}`)])));
    expect((await fetch(`${cp.adminUrl}/v1/config/reload`, { method: 'POST' })).status).to.equal(200);
    await eventually(
      () => {
        const later = recorded.slice(before);
        if (!later.some((r) => r.api === 'sotw' && decodeDiscoveryRequestByProtobufjs(r.bytes).resource_names.includes('host_added-later'))) throw new Error('SotW Envoy has not asked for the new cluster');
        if (!later.some((r) => r.api === 'delta' && decodeDeltaDiscoveryRequestByProtobufjs(r.bytes).resource_names_unsubscribe.length > 0)) throw new Error('delta Envoy has not unsubscribed');
      },
      { timeoutMs: 30_000, what: 'both Envoys following the change' },
    );

    for (const r of recorded) {
      const ours = r.api === 'sotw' ? decodeDiscoveryRequest(r.bytes) : decodeDeltaDiscoveryRequest(r.bytes);
      const theirs = r.api === 'sotw' ? decodeDiscoveryRequestByProtobufjs(r.bytes) : decodeDeltaDiscoveryRequestByProtobufjs(r.bytes);
      expect(ours, `${r.api} request ${r.bytes.toString('hex').slice(0, 200)}`).to.deep.equal(theirs);
      expect(JSON.stringify(ours)).to.equal(JSON.stringify(theirs));
    }
    // What was compared: each Envoy's node (with its metadata and build version), NACKs, and names.
    const first = [sotw()[0]!, delta()[0]!];
    for (const r of first) {
      expect(r.node?.id).to.match(/^request-decode-/);
      expect(nodeMetadataString(r.node, 'test.example/relay')).to.equal('recorded');
    }
    expect(sotw().filter((r) => r.error_detail?.message)).to.not.be.empty;
    expect(delta().filter((r) => r.error_detail?.message)).to.not.be.empty;
    expect(recorded.length).to.be.greaterThan(10);
  });
});
