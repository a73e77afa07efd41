// Bounds on the xDS/LRS port (issue 14: abuse; issue 12: reconnect storm and write backpressure), over real
// gRPC on loopback. Each misbehaving client is refused or disconnected as the README documents, counted in
// /metrics, and a well-behaved client is served meanwhile.
import { once } from 'node:events';
import http2 from 'node:http2';
import net from 'node:net';
import { expect } from 'chai';
import { TYPE_URLS } from '../../snapshots/type-urls.ts';
import * as grpc from '@grpc/grpc-js';
import { DEFAULT_GRPC_BOUNDS } from '../../xds-server/grpc-bounds.ts';
import { messageType } from '../../xds-server/protos/load.ts';
import { RawAdsClient } from '../support/ads-client.ts';
import { floodRequests, openManyStreams, sendOversizedMessage, SlowReader } from '../support/abuse.ts';
import { simpleHosts, startTestControlPlane, type TestControlPlane } from '../support/control-plane.ts';
import { eventually } from '../support/eventually.ts';

const names = (n: number): string[] => Array.from({ length: n }, (_, i) => `h${i}`);

/** A well-behaved client: gets the clusters, and a pushed change to them. */
async function wellBehavedClientServed(t: TestControlPlane, id: string): Promise<void> {
  const client = new RawAdsClient(t.cp.xdsPort);
  try {
    client.send({ node: { id }, type_url: TYPE_URLS.cluster });
    const cds = await client.next(10_000);
    expect(cds.resources.length).to.be.greaterThan(0);
  } finally {
    client.close();
  }
}

describe('xDS port bounds', function () {
  this.timeout(60_000);
  let t: TestControlPlane | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it('refuses a 100 MiB request message with RESOURCE_EXHAUSTED (limit 4 MiB), logged and counted; others are served', async () => {
    t = await startTestControlPlane(simpleHosts(['alpha']));
    const rssBefore = process.memoryUsage().rss;
    const result = await sendOversizedMessage(t.cp.xdsPort, 100 * 1024 * 1024);
    expect(result.code).to.equal(8);
    expect(result.details).to.match(/larger than/);
    await eventually(() => expect(t!.cp.metrics.value('stz_grpc_streams_disconnected_total', { reason: 'message_too_large' })).to.equal(1));
    // Refused from the message's 5-byte length prefix: the server never buffered the 100 MiB (the client's
    // own 100 MiB buffer is the only big allocation here).
    expect(process.memoryUsage().rss - rssBefore).to.be.lessThan(250 * 1024 * 1024);
    await wellBehavedClientServed(t, 'good');
    // A request under the bound (3 MiB of resource names) is taken and answered.
    expect(DEFAULT_GRPC_BOUNDS.maxReceiveMessageBytes).to.equal(4 * 1024 * 1024);
    const big = new RawAdsClient(t.cp.xdsPort);
    big.send({ node: { id: 'big-but-allowed' }, type_url: TYPE_URLS.listener, resource_names: ['x'.repeat(3 * 1024 * 1024)] });
    expect((await big.next()).type_url).to.equal(TYPE_URLS.listener);
    big.close();
  });

  it('1,000 streams opened by one client: 8 served (per node id), 992 refused with RESOURCE_EXHAUSTED; another client is served', async () => {
    t = await startTestControlPlane(simpleHosts(['alpha', 'beta']));
    const outcome = await openManyStreams({ port: t.cp.xdsPort, count: 1_000, connections: 10, nodeId: () => 'greedy' });
    expect(outcome.served).to.equal(8);
    expect(outcome.refused).to.equal(992);
    expect(Object.keys(outcome.reasons)).to.deep.equal(['8: node "greedy" has N open streams (limit 8)']);
    expect(t.cp.metrics.value('stz_grpc_streams_refused_total', { reason: 'too_many_streams_per_node' })).to.equal(992);
    await wellBehavedClientServed(t, 'good');
    // Every stream closed: nothing is left counted.
    await eventually(() => expect(t!.cp.ads.connected).to.have.length(0));
  });

  it('caps open streams per peer address (any node ids): the rest refused at open', async () => {
    t = await startTestControlPlane(simpleHosts(['alpha']), { grpcBounds: { maxStreamsPerAddress: 50 } });
    const outcome = await openManyStreams({ port: t.cp.xdsPort, count: 120, connections: 4, nodeId: (i) => `n${i}` });
    expect(outcome.served).to.equal(50);
    expect(outcome.refused).to.equal(70);
    expect(Object.keys(outcome.reasons)).to.deep.equal(['8: more than 50 open streams from 127.0.0.1']);
    expect(t.cp.metrics.value('stz_grpc_streams_refused_total', { reason: 'too_many_streams_per_address' })).to.equal(70);
  });

  it('disconnects a stream that sends requests faster than its rate (RESOURCE_EXHAUSTED), counted', async () => {
    t = await startTestControlPlane(simpleHosts(['alpha']), { grpcBounds: { requestsPerSecond: 20, requestBurst: 50 } });
    const flood = await floodRequests(t.cp.xdsPort, 'flooder', 5_000);
    expect(flood.code).to.equal(8);
    expect(flood.details).to.match(/more than 50 requests at once or 20 per second/);
    expect(t.cp.metrics.value('stz_grpc_streams_disconnected_total', { reason: 'rate_limited' })).to.equal(1);
    await wellBehavedClientServed(t, 'good');
  });

  it('counts LRS streams with the node\'s ADS streams (8 in all), and rate limits load reports', async () => {
    t = await startTestControlPlane(simpleHosts(['alpha']), { grpcBounds: { requestsPerSecond: 5, requestBurst: 10 } });
    const tc = t;
    // 7 open ADS streams of the node.
    const held = Array.from({ length: 7 }, () => new RawAdsClient(tc.cp.xdsPort));
    held.forEach((c) => c.send({ node: { id: 'envoy-1' }, type_url: TYPE_URLS.cluster }));
    await Promise.all(held.map((c) => c.next()));
    const req = messageType('envoy.service.load_stats.v3.LoadStatsRequest');
    const report = Buffer.from(req.encode(req.fromObject({ node: { id: 'envoy-1' } })).finish());
    const client = new grpc.Client(`127.0.0.1:${tc.cp.xdsPort}`, grpc.credentials.createInsecure());
    const lrs = (): grpc.ClientDuplexStream<Buffer, Buffer> => client.makeBidiStreamRequest('/envoy.service.load_stats.v3.LoadReportingService/StreamLoadStats', (b: Buffer) => b, (b: Buffer) => b);
    const ended = (call: grpc.ClientDuplexStream<Buffer, Buffer>): Promise<grpc.ServiceError> => new Promise((resolve) => call.on('error', resolve));
    // The 8th stream of the node (an LRS stream) is served; it floods reports and is cut at the rate.
    const eighth = lrs();
    eighth.on('data', () => {});
    const eighthEnded = ended(eighth);
    for (let i = 0; i < 50; i++) eighth.write(report);
    const flood = await eighthEnded;
    expect(flood.code).to.equal(8);
    expect(flood.details).to.match(/load reports at once/);
    expect(tc.cp.metrics.value('stz_grpc_streams_disconnected_total', { reason: 'rate_limited' })).to.equal(1);
    // Two more: the first is the 8th again (the flooded one closed), the second one too many.
    const a = lrs();
    a.on('data', () => {});
    a.on('error', () => {});
    a.write(report);
    await once(a, 'data');
    const b = lrs();
    b.on('data', () => {});
    const bEnded = ended(b);
    b.write(report);
    const refused = await bEnded;
    expect(refused.code).to.equal(8);
    expect(refused.details).to.equal('node "envoy-1" has 8 open streams (limit 8)');
    a.cancel();
    client.close();
    for (const c of held) c.close();
  });

  describe('write backpressure (a client that does not read)', () => {
    /** Moves host 0's endpoint port: a new EDS (1,000 endpoints, state of the world) per change. */
    async function churn(tc: TestControlPlane, changes: number): Promise<void> {
      for (let i = 1; i <= changes; i++) {
        const config = simpleHosts(names(1_000));
        ((config.hosts as Array<{ endpoints: Array<{ port: number }> }>)[0]!.endpoints[0]!).port = 30_000 + i;
        await tc.writeConfig(config);
        const r = await tc.cp.reloadConfig();
        expect(r.ok).to.equal(true);
        await tc.cp.publisher.schedule();
      }
    }

    it('holds pushes back while the client does not read, then sends it only the newest snapshot', async () => {
      t = await startTestControlPlane(simpleHosts(names(1_000)), { grpcBounds: { writeBufferBytes: 16 * 1024, slowClientTimeoutMs: 30_000 } });
      const tc = t;
      const reader = new SlowReader(tc.cp.xdsPort);
      let responses = 0;
      tc.cp.events.on('response', (e) => {
        if (e.nodeId === 'slow') responses += 1;
      });
      reader.send({ node: { id: 'slow' }, type_url: TYPE_URLS.cluster });
      reader.send({ type_url: TYPE_URLS.endpoint, resource_names: names(1_000).map((n) => `host_${n}`) });
      await eventually(() => expect(responses).to.equal(2));
      await churn(tc, 20);
      // Each change is a new EDS version; the unread stream was written none of them (without backpressure: 20).
      expect(responses).to.equal(2);
      reader.resume();
      const current = tc.cp.cache.getSnapshot('default')!.versions.endpoint;
      await eventually(() => expect(reader.responses.at(-1)?.version_info).to.equal(current), { timeoutMs: 20_000 });
      const eds = reader.responses.filter((r) => r.type_url === TYPE_URLS.endpoint);
      // The first EDS, then the newest: nothing in between.
      expect(eds).to.have.length(2);
      expect(responses).to.equal(3);
      reader.close();
    });

    it('delta: holds pushes back while the client does not read, then sends only what changed since what it was sent', async () => {
      t = await startTestControlPlane(simpleHosts(names(1_000)), { grpcBounds: { writeBufferBytes: 16 * 1024, slowClientTimeoutMs: 30_000 } });
      const tc = t;
      const reader = new SlowReader(tc.cp.xdsPort, true);
      let responses = 0;
      tc.cp.events.on('response', (e) => {
        if (e.nodeId === 'slow-delta') responses += 1;
      });
      reader.send({ node: { id: 'slow-delta' }, type_url: TYPE_URLS.cluster, resource_names_subscribe: ['*'] });
      reader.send({ type_url: TYPE_URLS.endpoint, resource_names_subscribe: names(1_000).map((n) => `host_${n}`) });
      await eventually(() => expect(responses).to.equal(2));
      await churn(tc, 10);
      expect(responses).to.equal(2);
      reader.resume();
      // Once it reads: one EDS response with the one endpoint that changed (from its first version to the
      // newest), not one per change.
      await eventually(() => expect(reader.deltaResponses.filter((r) => r.type_url === TYPE_URLS.endpoint)).to.have.length(2), { timeoutMs: 20_000 });
      const eds = reader.deltaResponses.filter((r) => r.type_url === TYPE_URLS.endpoint);
      expect(eds[1]!.resources.map((r) => r.name)).to.deep.equal(['host_h0']);
      expect(eds[1]!.system_version_info).to.equal(tc.cp.cache.getSnapshot('default')!.versions.endpoint);
      expect(responses).to.equal(3);
      reader.close();
    });

    it('resets a stream whose client does not read for slowClientTimeoutMs, logged and counted', async () => {
      t = await startTestControlPlane(simpleHosts(names(1_000)), { grpcBounds: { writeBufferBytes: 16 * 1024, slowClientTimeoutMs: 1_000 } });
      const tc = t;
      const reader = new SlowReader(tc.cp.xdsPort);
      reader.send({ node: { id: 'never-reads' }, type_url: TYPE_URLS.cluster });
      reader.send({ type_url: TYPE_URLS.endpoint, resource_names: names(1_000).map((n) => `host_${n}`) });
      const [closed] = (await once(tc.cp.events, 'stream-close')) as [{ nodeId: string; reason: string }];
      expect(closed.nodeId).to.equal('never-reads');
      expect(closed.reason).to.match(/did not read its xDS responses for 1000 ms/);
      expect(await reader.closed).to.equal(8); // RST_STREAM CANCEL
      expect(tc.cp.metrics.value('stz_grpc_streams_disconnected_total', { reason: 'slow_client' })).to.equal(1);
      await wellBehavedClientServed(tc, 'good');
      reader.close();
    });
  });

  it('opens HTTP/2 receive windows of 1 MiB per stream and per connection (Node\'s own are 64 KiB), or as configured', async () => {
    // Envoy's EDS request and ACK at 5,000 hosts carry ~135 KB of names: with 64 KiB windows each waited for
    // window updates from our event loop (a cold load's EDS request reached us ~50 ms after Envoy sent it).
    const windowsOf = async (port: number): Promise<{ stream: number; connection: number }> => {
      const session = http2.connect(`http://127.0.0.1:${port}`);
      try {
        await once(session, 'remoteSettings');
        // Set once the connection is made: a second SETTINGS frame, and a WINDOW_UPDATE for the connection.
        await eventually(() => {
          expect(session.remoteSettings.initialWindowSize).to.not.equal(65_535);
          expect(session.state.remoteWindowSize).to.not.equal(65_535);
        });
        return { stream: session.remoteSettings.initialWindowSize!, connection: session.state.remoteWindowSize! };
      } finally {
        session.destroy();
      }
    };
    expect(DEFAULT_GRPC_BOUNDS.receiveWindowBytes).to.equal(1024 * 1024);
    t = await startTestControlPlane(simpleHosts(['alpha']));
    expect(await windowsOf(t.cp.xdsPort)).to.deep.equal({ stream: 1024 * 1024, connection: 1024 * 1024 });
    await wellBehavedClientServed(t, 'after-windows');
    await t.close();
    t = await startTestControlPlane(simpleHosts(['alpha']), { grpcBounds: { receiveWindowBytes: 300_000 } });
    expect(await windowsOf(t.cp.xdsPort)).to.deep.equal({ stream: 300_000, connection: 300_000 });
  });

  it('reconnect storm: initial syncs take turns (concurrency 4); a connected client keeps getting its pushes; every new stream is served', async () => {
    t = await startTestControlPlane(simpleHosts(['alpha', 'beta']), { grpcBounds: { initialSyncConcurrency: 4, initialSyncTimeoutMs: 60_000 } });
    const tc = t;
    const connected = new RawAdsClient(tc.cp.xdsPort);
    connected.send({ node: { id: 'connected' }, type_url: TYPE_URLS.cluster });
    const first = await connected.next();
    connected.send({ type_url: TYPE_URLS.cluster, version_info: first.version_info, response_nonce: first.nonce });
    await eventually(() => expect(tc.cp.ads.initialSyncs.syncing).to.equal(0));

    const storm = Array.from({ length: 40 }, () => new RawAdsClient(tc.cp.xdsPort));
    storm.forEach((c, i) => c.send({ node: { id: `storm-${i}` }, type_url: TYPE_URLS.cluster }));
    let maxSyncing = 0;
    tc.cp.events.on('response', () => (maxSyncing = Math.max(maxSyncing, tc.cp.ads.initialSyncs.syncing)));
    await eventually(() => expect(tc.cp.ads.initialSyncs).to.deep.equal({ syncing: 4, waiting: 36 }));
    // Nobody ACKs yet: 4 were answered, 36 wait. The connected client is not stuck behind them.
    await tc.writeConfig(simpleHosts(['alpha', 'beta', 'gamma']));
    expect((await tc.cp.reloadConfig()).ok).to.equal(true);
    const pushed = await connected.next();
    expect(pushed.version_info).to.not.equal(first.version_info);

    // Each answered client ACKs: its turn ends and the next ones are answered, until all 40 were served.
    const served = new Set<number>();
    await eventually(async () => {
      for (const [i, c] of storm.entries()) {
        if (c.pending === 0) continue;
        // ACK the newest response (the reload above may have pushed a second one meanwhile).
        let r = await c.next();
        while (c.pending > 0) r = await c.next();
        served.add(i);
        c.send({ type_url: TYPE_URLS.cluster, version_info: r.version_info, response_nonce: r.nonce });
      }
      expect(served.size).to.equal(40);
    }, { timeoutMs: 20_000 });
    expect(maxSyncing).to.be.at.most(4);
    connected.close();
    for (const c of storm) c.close();
  });

  describe('admin port', () => {
    it('answers 408 and closes a connection whose headers do not arrive within headersTimeoutMs', async () => {
      t = await startTestControlPlane(simpleHosts(['alpha']), { adminBounds: { headersTimeoutMs: 500, requestTimeoutMs: 1_000 } });
      const socket = net.connect(t.cp.adminPort, '127.0.0.1');
      let data = '';
      socket.on('data', (d: Buffer) => (data += d.toString()));
      await once(socket, 'connect');
      // A request that never finishes its headers (slowloris).
      socket.write('GET /v1/hosts HTTP/1.1\r\nHost: x\r\n');
      await once(socket, 'close');
      expect(data).to.match(/^HTTP\/1\.1 408 /);
      expect(data).to.include('"error":"request_timeout"');
    });

    it('drops connections beyond maxConnections at once, counted; the others are served', async () => {
      t = await startTestControlPlane(simpleHosts(['alpha']), { adminBounds: { maxConnections: 10 } });
      const tc = t;
      const sockets = Array.from({ length: 15 }, () => net.connect(tc.cp.adminPort, '127.0.0.1'));
      let closed = 0;
      for (const s of sockets) {
        s.on('error', () => {});
        s.on('close', () => (closed += 1));
      }
      await eventually(() => expect(tc.cp.metrics.value('stz_admin_connections_refused_total')).to.equal(5));
      await eventually(() => expect(closed).to.equal(5));
      for (const s of sockets) s.destroy();
      await eventually(async () => expect((await fetch(`${tc.cp.adminUrl}/healthz`)).status).to.equal(200));
    });
  });
});
