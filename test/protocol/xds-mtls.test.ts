// Mutual TLS on the ADS/LRS port with real TLS and raw gRPC clients: a client certificate from our CA is
// served the config of the gateway it names, and nothing else; no certificate, another CA's, an expired one,
// one naming no gateway, or a node that contradicts its certificate is refused, logged with the reason and
// counted. (test/e2e/xds-mtls.e2e.ts runs the same with a real Envoy.)
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import * as grpc from '@grpc/grpc-js';
import { modelForGateway } from '../../snapshots/gateways.ts';
import { TYPE_URLS } from '../../snapshots/type-urls.ts';
import { AdsEvents } from '../../xds-server/ads/events.ts';
import { AdsService } from '../../xds-server/ads/service.ts';
import { GATEWAY_METADATA_KEY, SnapshotCache } from '../../xds-server/cache/snapshot-cache.ts';
import { LoadReportingService, type LoadReport } from '../../xds-server/load-reports/lrs-service.ts';
import { createLogger, silentLogger } from '../../xds-server/log.ts';
import { messageType } from '../../xds-server/protos/load.ts';
import { Publisher } from '../../xds-server/publisher.ts';
import { ALL_GATEWAYS_IDENTITY, type RefusalReason } from '../../xds-server/security/client-identity.ts';
import { CONTROL_PLANE_IDENTITY, createCertificateAuthority, gatewayIdentity, issueCertificate, type PemPair } from '../../xds-server/security/pki.ts';
import { createWakeServer } from '../../xds-server/security/wake-server.ts';
import { MemoryCertificateProvider, createXdsTls } from '../../xds-server/security/xds-tls.ts';
import { RawAdsClient, resourceNames } from '../support/ads-client.ts';
import { eventually } from '../support/eventually.ts';
import { twoGatewayModel, twoGatewayState } from '../support/two-gateways.ts';

const HOUR = 3600_000;

describe('ADS/LRS over mutual TLS: who may connect and what it gets', function () {
  this.timeout(30_000);
  let ca: PemPair;
  let port: number;
  let server: grpc.Server;
  let publisher: Publisher;
  const refused: { reason: RefusalReason; detail: Record<string, unknown> }[] = [];
  const logLines: string[] = [];
  const reports: LoadReport[] = [];
  const clients: RawAdsClient[] = [];

  before(async () => {
    ca = await createCertificateAuthority({ commonName: 'test CA', validForMs: 24 * HOUR });
    const serverCert = await issueCertificate(ca, { commonName: 'cp', role: 'server', uris: [CONTROL_PLANE_IDENTITY], dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], validForMs: HOUR });
    const events = new AdsEvents();
    const cache = new SnapshotCache(events);
    const state = twoGatewayState();
    publisher = new Publisher(() => state, cache, silentLogger, { quietMs: 1, urgentQuietMs: 1, maxDelayMs: 5, settleTimeoutMs: 200 });
    await publisher.publishNow();
    const provider = new MemoryCertificateProvider();
    provider.set({ ca: ca.certPem, cert: serverCert.certPem, key: serverCert.keyPem });
    const tls = createXdsTls(provider, createLogger({ write: (l) => logLines.push(l) }));
    tls.onRefused((reason, detail) => refused.push({ reason, detail }));
    const ads = new AdsService(cache, events, silentLogger);
    ads.requireClientCertificates(tls);
    const lrs = new LoadReportingService(100, silentLogger);
    // Gateway ns/a routes backends a and shared (clusters c_a, c_shared); ns/b routes b and shared.
    lrs.requireClientCertificates(tls, (gw) => new Set(gw === 'ns/a' ? ['c_a', 'c_shared'] : gw === 'ns/b' ? ['c_b', 'c_shared'] : []));
    lrs.on('report', (r) => reports.push(r));
    server = new grpc.Server();
    ads.register(server);
    lrs.register(server);
    port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', tls.credentials, (e, p) => (e ? reject(e) : resolve(p))));
    expect(tls.observe(server)).to.equal(true);
    // The certificate provider hands its first certificate over on the next tick.
    await new Promise((r) => setTimeout(r, 20));
  });
  after(() => {
    for (const c of clients) c.close();
    publisher.close();
    server.forceShutdown();
  });
  beforeEach(() => {
    refused.length = 0;
    logLines.length = 0;
  });

  const client = (creds: grpc.ChannelCredentials): RawAdsClient => {
    const c = new RawAdsClient(port, creds);
    clients.push(c);
    return c;
  };
  const withCert = (pair: PemPair, trust: PemPair = ca): grpc.ChannelCredentials =>
    grpc.credentials.createSsl(Buffer.from(trust.certPem), Buffer.from(pair.keyPem), Buffer.from(pair.certPem));
  const clientCert = (uris: string[], o: { issuer?: PemPair; now?: Date; validForMs?: number } = {}): Promise<PemPair> =>
    issueCertificate(o.issuer ?? ca, { commonName: 'envoy', role: 'client', uris, validForMs: o.validForMs ?? HOUR, ...(o.now ? { now: o.now } : {}) });
  const node = (id: string, gateway?: string): Record<string, unknown> => ({
    id,
    user_agent_name: 'envoy',
    ...(gateway ? { metadata: { fields: { [GATEWAY_METADATA_KEY]: { stringValue: gateway } } } } : {}),
  });

  /** Asks for listeners and clusters; the names it got, or the error that ended the stream. */
  async function ask(c: RawAdsClient, n: Record<string, unknown>): Promise<{ listeners: string[]; clusters: string[] } | { error: grpc.ServiceError }> {
    c.send({ node: n, type_url: TYPE_URLS.listener });
    c.send({ type_url: TYPE_URLS.cluster });
    const failed = eventually(async () => {
      if (!c.error) throw new Error('no stream error yet');
      return c.error;
    }, { timeoutMs: 6_000, what: 'the stream to fail' });
    const first = await Promise.race([c.next(5_000).then((r) => ({ r })), failed.then((e) => ({ e }))]);
    if ('e' in first) {
      expect(c.pending, 'a refused client received a response').to.equal(0);
      return { error: first.e };
    }
    failed.catch(() => {});
    const got = [first.r, await c.next(5_000)];
    const by = (t: string): string[] => resourceNames(got.find((r) => r.type_url === t)!).sort();
    return { listeners: by(TYPE_URLS.listener), clusters: by(TYPE_URLS.cluster) };
  }

  const refusalLogged = (reason: RefusalReason): boolean =>
    logLines.some((l) => {
      const j = JSON.parse(l) as { level: string; msg: string; reason: string };
      return j.level === 'warn' && j.msg === 'refused an xDS client' && j.reason === reason;
    });

  it("serves a gateway's certificate that gateway's listeners and clusters only, whatever node.metadata leaves out", async () => {
    const got = await ask(client(withCert(await clientCert([gatewayIdentity('ns', 'a')]))), node('envoy-a'));
    expect(got).to.deep.equal({ listeners: ['gw_a'], clusters: ['c_a', 'c_shared'] });
    expect(refused).to.deep.equal([]);
  });

  it('refuses a node that names another gateway than its certificate (PERMISSION_DENIED), logged and counted', async () => {
    const got = await ask(client(withCert(await clientCert([gatewayIdentity('ns', 'a')]))), node('envoy-a-as-b', 'ns/b'));
    expect(got).to.have.property('error');
    expect((got as { error: grpc.ServiceError }).error.code).to.equal(grpc.status.PERMISSION_DENIED);
    expect(refused.map((r) => r.reason)).to.deep.equal(['identity_mismatch']);
    expect(refusalLogged('identity_mismatch')).to.equal(true);
  });

  it('lets the documented all-gateways identity read what its node names, like a plaintext client', async () => {
    const got = await ask(client(withCert(await clientCert([ALL_GATEWAYS_IDENTITY]))), node('tool', 'ns/b'));
    expect(got).to.deep.equal({ listeners: ['gw_b'], clusters: ['c_b', 'c_shared'] });
  });

  const refusals: [string, () => Promise<grpc.ChannelCredentials>, RefusalReason][] = [
    ['no client certificate', async () => grpc.credentials.createSsl(Buffer.from(ca.certPem)), 'no_certificate'],
    ["another CA's certificate", async () => {
      const other = await createCertificateAuthority({ commonName: 'test CA', validForMs: 24 * HOUR });
      return withCert(await clientCert([gatewayIdentity('ns', 'a')], { issuer: other }));
    }, 'unknown_ca'],
    ['an expired certificate', async () => withCert(await clientCert([gatewayIdentity('ns', 'a')], { now: new Date(Date.now() - 2 * HOUR), validForMs: HOUR })), 'expired'],
    ['a certificate that names no gateway', async () => withCert(await clientCert(['spiffe://scaletozero.dev/someone'])), 'no_identity'],
  ];
  for (const [what, creds, reason] of refusals) {
    it(`refuses ${what}: no resources, the reason logged and counted (${reason})`, async () => {
      const got = await ask(client(await creds()), node('intruder', 'ns/a'));
      expect(got).to.have.property('error');
      await eventually(async () => {
        if (!refused.some((r) => r.reason === reason)) throw new Error(`refusals so far: ${JSON.stringify(refused.map((r) => r.reason))}`);
      }, { timeoutMs: 5_000, what: `a ${reason} refusal` });
      expect(refusalLogged(reason)).to.equal(true);
    });
  }

  it("counts a gateway's load reports only for that gateway's clusters", async () => {
    const cert = await clientCert([gatewayIdentity('ns', 'a')]);
    const lrsClient = new grpc.Client(`127.0.0.1:${port}`, withCert(cert));
    const call = lrsClient.makeBidiStreamRequest('/envoy.service.load_stats.v3.LoadReportingService/StreamLoadStats', (b: Buffer) => b, (b: Buffer) => b);
    call.on('error', () => {}); // the cancel below
    const req = messageType('envoy.service.load_stats.v3.LoadStatsRequest');
    // Two localities, one counter above 2^32 (a uint64 decoded as a Long): summed per cluster.
    const localities = [{ total_issued_requests: 3, total_requests_in_progress: 1 }, { total_issued_requests: 5_000_000_000 }];
    const stats = (names: string[]): Record<string, unknown>[] => names.map((cluster_name) => ({ cluster_name, upstream_locality_stats: localities }));
    try {
      call.write(Buffer.from(req.encode(req.fromObject({ node: { id: 'envoy-a-lrs' }, cluster_stats: stats(['c_a', 'c_b', 'c_shared']) })).finish()));
      await eventually(async () => {
        if (!reports.some((r) => r.nodeId === 'envoy-a-lrs')) throw new Error('no report yet');
      }, { timeoutMs: 5_000, what: 'the load report' });
      const r = reports.find((x) => x.nodeId === 'envoy-a-lrs')!;
      expect(r.clusters.map((c) => c.cluster).sort()).to.deep.equal(['c_a', 'c_shared']);
      expect(r.clusters.find((c) => c.cluster === 'c_a')).to.deep.include({ issued: 5_000_000_003, inProgress: 1 });
    } finally {
      call.cancel();
      lrsClient.close();
    }
  });
});

describe('wake calls over mutual TLS: only our Envoys, only for the backends their gateway routes', function () {
  this.timeout(30_000);
  let ca: PemPair;
  let port: number;
  let server: import('node:https').Server;
  const forwarded: string[] = [];
  const refused: RefusalReason[] = [];

  before(async () => {
    ca = await createCertificateAuthority({ commonName: 'test CA', validForMs: 24 * HOUR });
    const serverCert = await issueCertificate(ca, { commonName: 'cp', role: 'server', uris: [CONTROL_PLANE_IDENTITY], ipAddresses: ['127.0.0.1'], validForMs: HOUR });
    const provider = new MemoryCertificateProvider();
    provider.set({ ca: ca.certPem, cert: serverCert.certPem, key: serverCert.keyPem });
    const tls = createXdsTls(provider, silentLogger);
    tls.onRefused((reason) => refused.push(reason));
    const model = twoGatewayModel();
    server = createWakeServer({
      tls,
      routes: (gateway, host) => modelForGateway(model, gateway).backends.some((b) => b.name === host),
      forward: () => (req, res) => {
        forwarded.push(req.url!);
        res.writeHead(202, { 'content-type': 'application/json' }).end('{"accepted":true}');
      },
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    port = (server.address() as AddressInfo).port;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });
  beforeEach(() => {
    forwarded.length = 0;
    refused.length = 0;
  });

  /** POST over TLS with an optional client certificate; the status and JSON body, or the connection error. */
  function post(path: string, client?: PemPair, trust: PemPair = ca): Promise<{ status: number; body: { error?: string; message?: string } } | { error: string }> {
    return new Promise((resolve) => {
      const req = httpsRequest(
        { host: '127.0.0.1', port, path, method: 'POST', ca: trust.certPem, ...(client ? { cert: client.certPem, key: client.keyPem } : {}), agent: false, checkServerIdentity: () => undefined },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) as { error?: string; message?: string } }));
        },
      );
      req.on('error', (err) => resolve({ error: err.message }));
      req.end();
    });
  }
  const gatewayCert = (ns: string, name: string, issuer: PemPair = ca): Promise<PemPair> =>
    issueCertificate(issuer, { commonName: 'envoy', role: 'client', uris: [gatewayIdentity(ns, name)], validForMs: HOUR });

  it("lets gateway A's certificate wake A's backends and the shared one", async () => {
    const a = await gatewayCert('ns', 'a');
    expect(await post('/v1/wake/a', a)).to.deep.include({ status: 202 });
    expect(await post('/v1/wake/shared', a)).to.deep.include({ status: 202 });
    expect(forwarded).to.deep.equal(['/v1/wake/a', '/v1/wake/shared']);
  });

  it("answers gateway A's certificate 403 with a JSON reason for B's backend, and never forwards it", async () => {
    const got = await post('/v1/wake/b', await gatewayCert('ns', 'a'));
    expect(got).to.have.property('status', 403);
    expect((got as { body: { error: string; message: string } }).body).to.deep.equal({ error: 'forbidden', message: 'gateway ns/a does not route host "b": its Envoys may not wake it' });
    expect(forwarded).to.deep.equal([]);
    expect(refused).to.deep.equal(['wake_not_routed']);
  });

  it('refuses a caller without a certificate, or with another CA\'s, before any request is read', async () => {
    const none = await post('/v1/wake/a');
    const other = await post('/v1/wake/a', await gatewayCert('ns', 'a', await createCertificateAuthority({ commonName: 'x', validForMs: HOUR })));
    for (const got of [none, other]) {
      // The connection is closed after the handshake (TLS 1.3: the client may see the close as a reset).
      if ('status' in got) expect.fail(`answered ${got.status}`);
    }
    expect(forwarded).to.deep.equal([]);
    expect([...refused].sort()).to.deep.equal(['no_certificate', 'unknown_ca']);
  });

  it('serves nothing but the wake route (404 with a JSON body)', async () => {
    const got = await post('/v1/hosts', await gatewayCert('ns', 'a'));
    expect(got).to.deep.include({ status: 404 });
    expect(forwarded).to.deep.equal([]);
  });
});
