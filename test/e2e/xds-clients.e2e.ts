// Issue 10, "the control plane and more than one xDS client", against the real Envoy and a real second xDS
// client (@grpc/grpc-js-xds): a rejected listener heals by itself once its port is free; an Envoy without a
// listener does not stall marks; a connected client that sends no load reports does not block idle
// scale-down; a proxyless gRPC client resolves xds:///<host> through our control plane and is answered.
import net from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { stringify } from 'yaml';
import * as grpc from '@grpc/grpc-js';
import { register as registerXdsResolver } from '@grpc/grpc-js-xds';
import { startEnvoy, type EnvoyProcess } from '../../envoy-bootstrap/envoy.ts';
import { renderBootstrap } from '../../envoy-bootstrap/render.ts';
import { FILE_LISTENER_NAME } from '../../sources/file/to-model.ts';
import { TYPE_URLS } from '../../snapshots/type-urls.ts';
import { startControlPlane, type ControlPlane } from '../../xds-server/control-plane.ts';
import { silentLogger } from '../../xds-server/log.ts';
import { ALL_GATEWAYS_IDENTITY } from '../../xds-server/security/client-identity.ts';
import { issueCertificate } from '../../xds-server/security/pki.ts';
import { grpcEcho } from '../../upstream/grpc-client.ts';
import { startUpstream, type Upstream } from '../../upstream/server.ts';
import { RawAdsClient } from '../support/ads-client.ts';
import { eventually } from '../support/eventually.ts';
import { http1Request } from '../support/http-client.ts';
import { freePort } from '../support/ports.ts';
import { assertFilterBuilt, FILTER_WASM, processHost, startStack, type Stack } from '../support/stack.ts';

interface NodeTypeJson {
  nack?: { message: string; rejectedVersion: string };
  retry?: { attempts: number; nextRetryAt: string; version: string };
  ackedVersion?: string;
  subscribed: string[];
  wildcard: boolean;
}
interface NodesJson {
  nodes: { streamId: number; nodeId: string; clientKind: string; types: Record<string, NodeTypeJson> }[];
}

describe('xDS clients other than one healthy Envoy (real Envoy, real gRPC xDS client)', function () {
  this.timeout(120_000);

  describe('an Envoy whose listener cannot bind', () => {
    let dir: string;
    let cp: ControlPlane;
    let envoy: EnvoyProcess;
    let upstream: Upstream;
    let blocker: net.Server;
    let port: number;

    before(async () => {
      assertFilterBuilt();
      dir = await mkdtemp(path.join(os.tmpdir(), 'stz-nack-'));
      upstream = await startUpstream({ id: 'nack-upstream' });
      // Someone else holds the gateway port when Envoy starts.
      blocker = net.createServer();
      await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
      port = (blocker.address() as net.AddressInfo).port;
      const configPath = path.join(dir, 'gateway.yaml');
      await writeFile(
        configPath,
        stringify({
          listener: { address: '127.0.0.1', port },
          hosts: [{ name: 'web', domains: ['web.test'], endpoints: [{ address: '127.0.0.1', port: upstream.httpPort }], initialState: 'ready' }],
        }),
      );
      // A long apply timeout: a mark that waited for this Envoy's (dropped) routes would time the test out.
      cp = await startControlPlane({
        configPath,
        stateDir: path.join(dir, 'state'),
        filterWasmPath: FILTER_WASM,
        log: silentLogger,
        scaling: { applyTimeoutMs: 60_000 },
        ads: { nackRetry: { initialMs: 500, maxMs: 2_000 } },
      });
      envoy = await startEnvoy({
        bootstrap: renderBootstrap({ nodeId: `nack-${process.pid}`, xdsAddress: '127.0.0.1', xdsPort: cp.xdsPort, xdsTls: cp.pki!.envoyFiles }),
        concurrency: 1,
        logLevel: 'warning',
      });
    });
    after(async () => {
      await envoy?.stop();
      await cp?.close();
      await upstream?.close();
      if (blocker?.listening) await new Promise<void>((r) => blocker.close(() => r()));
      await rm(dir, { recursive: true, force: true });
    });

    const nodes = async (): Promise<NodesJson> => (await (await fetch(`${cp.adminUrl}/v1/nodes`)).json()) as NodesJson;

    it('records the NACK, shows the retry in /v1/nodes, and resends with backoff', async () => {
      const lds = await eventually(
        async () => {
          const n = (await nodes()).nodes.find((x) => x.clientKind === 'envoy');
          expect(n?.types.listener?.retry?.attempts).to.be.at.least(2);
          return n!.types.listener!;
        },
        { timeoutMs: 20_000, what: 'Envoy rejecting the listener twice (first send and one resend)' },
      );
      expect(lds.nack?.message).to.match(/address already in use|cannot bind|Address already in use/i);
      expect(Date.parse(lds.retry!.nextRetryAt)).to.be.greaterThan(0);
      // Each NACK is counted once, not again when Envoy repeats it with other requests.
      expect(cp.metrics.value('stz_xds_nacks_total', { type: TYPE_URLS.listener })).to.equal(lds.retry!.attempts);
    });

    it('answers a mark without waiting for the routes and filter config this Envoy no longer subscribes to', async function () {
      // The apply timeout is 60 s: a mark that waited for this Envoy would run into this test's timeout.
      this.timeout(30_000);
      const res = await fetch(`${cp.adminUrl}/v1/hosts/web/scale-to-zero`, { method: 'POST' });
      expect(res.status).to.equal(200);
      const body = (await res.json()) as { changed: boolean; notApplied: unknown[] };
      expect(body.changed).to.equal(true);
      expect(body.notApplied).to.deep.equal([]);
      const wake = (await (await fetch(`${cp.adminUrl}/v1/hosts/web/wake`, { method: 'POST' })).json()) as { changed: boolean; notApplied: unknown[] };
      expect(wake).to.include({ changed: true });
    });

    it('brings the listener up by itself once the port is free', async () => {
      await new Promise<void>((r) => blocker.close(() => r()));
      await eventually(
        async () => {
          const stats = await envoy.stats('listener_manager.total_listeners');
          expect(stats.get('listener_manager.total_listeners_active')).to.be.at.least(1);
        },
        { timeoutMs: 20_000, what: 'the rejected listener coming up after its port was freed' },
      );
      expect(await envoy.listenerPort(FILE_LISTENER_NAME)).to.equal(port);
      const reply = await eventually(
        async () => {
          const r = await http1Request({ port, host: 'web.test', path: '/after-retry', timeoutMs: 5_000 });
          expect(r.status).to.equal(200);
          return r;
        },
        { timeoutMs: 10_000, what: 'a request through the healed listener' },
      );
      expect(JSON.parse(reply.body)).to.include({ path: '/after-retry' });
      const n = (await nodes()).nodes.find((x) => x.clientKind === 'envoy')!;
      expect(n.types.listener!.nack).to.equal(undefined);
      expect(n.types.listener!.retry).to.equal(undefined);
    });
  });

  describe('a connected client that sends no load reports', () => {
    let stack: Stack;
    let idlePort: number;
    let tool: RawAdsClient | undefined;

    before(async () => {
      idlePort = await freePort();
      stack = await startStack({
        controlPlane: { probeIntervalMs: 5, scaling: { loadReportIntervalMs: 200, idleCheckIntervalMs: 100, drainTimeoutMs: 5_000 } },
        config: () => ({
          hosts: [
            processHost('idle', idlePort, { buffer: { holdTimeoutMs: 20_000, maxHeld: 100, retryAfterSeconds: 1 }, idleAfterMs: 1_500 }),
          ],
        }),
      });
    });
    after(async () => {
      tool?.close();
      await stack?.close();
    });

    it('does not keep an idle host awake', async () => {
      // A second tool watches every cluster (so it "routes" the host) but has no LRS stream.
      // An operator's tool over mTLS: a certificate from the control plane's CA with the all-gateways identity.
      const ca = stack.cp.pki!.caPair;
      const cert = await issueCertificate(ca, { commonName: 'tool', role: 'client', uris: [ALL_GATEWAYS_IDENTITY], validForMs: 3600_000 });
      tool = new RawAdsClient(stack.cp.xdsPort, grpc.credentials.createSsl(Buffer.from(ca.certPem), Buffer.from(cert.keyPem), Buffer.from(cert.certPem)));
      tool.send({ node: { id: 'second-tool', user_agent_name: 'a-test-tool' }, type_url: TYPE_URLS.cluster });
      const cds = await tool.next();
      tool.send({ type_url: TYPE_URLS.cluster, version_info: cds.version_info, response_nonce: cds.nonce });
      const reply = await http1Request({ port: stack.port, host: 'idle.test', path: '/wake', timeoutMs: 30_000 });
      expect(reply.status).to.equal(200);
      await eventually(() => expect(stack.cp.processes.isRunning('idle')).to.equal(true), { what: 'the idle host running' });
      await eventually(
        async () => {
          const host = (await (await stack.adminFetch('/v1/hosts/idle')).json()) as { scaling: { phase: string } };
          expect(host.scaling.phase).to.equal('scaled_to_zero');
        },
        { timeoutMs: 20_000, intervalMs: 100, what: 'idle scale-down with a non-reporting client connected' },
      );
      expect(stack.cp.processes.isRunning('idle')).to.equal(false);
      const nodes = (await (await stack.adminFetch('/v1/nodes')).json()) as NodesJson;
      expect(nodes.nodes.map((n) => n.clientKind).sort()).to.deep.equal(['envoy', 'xds-client']);
    });
  });

  describe('a proxyless gRPC client (@grpc/grpc-js-xds)', () => {
    let stack: Stack;
    const savedBootstrap = process.env.GRPC_XDS_BOOTSTRAP_CONFIG;

    before(async () => {
      // The API listener leads to the gateway's address, so the gateway needs a known port (not port 0).
      const gatewayPort = await freePort();
      stack = await startStack({
        // The proxyless client speaks plaintext xDS (its bootstrap names insecure channel creds).
        controlPlane: { xdsSecurity: 'plaintext' },
        config: (u) => ({
          listener: { address: '127.0.0.1', port: gatewayPort },
          hosts: [
            { name: 'rpc', domains: ['rpc.test'], protocol: 'grpc', endpoints: [{ address: '127.0.0.1', port: u.grpcPort }], buffer: { holdTimeoutMs: 20_000, maxHeld: 100, retryAfterSeconds: 1 } },
            { name: 'web', domains: ['web.test'], endpoints: [{ address: '127.0.0.1', port: u.httpPort }] },
          ],
        }),
      });
      process.env.GRPC_XDS_BOOTSTRAP_CONFIG = JSON.stringify({
        xds_servers: [{ server_uri: `127.0.0.1:${stack.cp.xdsPort}`, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
        node: { id: `grpc-client-${process.pid}`, locality: {} },
      });
      registerXdsResolver();
    });
    after(async () => {
      if (savedBootstrap === undefined) delete process.env.GRPC_XDS_BOOTSTRAP_CONFIG;
      else process.env.GRPC_XDS_BOOTSTRAP_CONFIG = savedBootstrap;
      await stack?.close();
    });

    it('resolves xds:///rpc.test through our control plane and is answered through the gateway', async () => {
      const opened: number[] = [];
      const responses: { streamId: number; kind: string; names: string[] }[] = [];
      const onOpen = (e: { streamId: number }): void => void opened.push(e.streamId);
      const onResponse = (e: { streamId: number; kind: string; names: string[] }): void => void responses.push(e);
      stack.cp.events.on('stream-open', onOpen);
      stack.cp.events.on('response', onResponse);
      try {
        const reply = await grpcEcho('xds:///rpc.test', 'rpc.test', 'proxyless', Buffer.from('hi'), 20_000);
        expect(reply, JSON.stringify(reply)).to.not.have.property('error');
        expect(reply).to.include({ message: 'proxyless' });
      } finally {
        stack.cp.events.off('stream-open', onOpen);
        stack.cp.events.off('response', onResponse);
      }
      const nodes = (await (await stack.adminFetch('/v1/nodes')).json()) as NodesJson;
      const grpcStream = nodes.nodes.find((n) => n.clientKind === 'grpc');
      expect(grpcStream, JSON.stringify(nodes)).to.not.equal(undefined);
      expect(opened).to.include(grpcStream!.streamId);
      // It named what it wanted and got exactly that: its API listener (not the gateway's), the route
      // configuration, the cluster and endpoints that lead to the gateway.
      const sent = (kind: string): string[] => [...new Set(responses.filter((r) => r.streamId === grpcStream!.streamId && r.kind === kind).flatMap((r) => r.names))];
      expect(sent('listener')).to.deep.equal(['rpc.test']);
      expect(sent('route')).to.deep.equal(['proxyless_routes_rpc.test']);
      expect(sent('cluster')).to.deep.equal(['proxyless_via_gateway_http']);
      expect(sent('endpoint')).to.deep.equal(['proxyless_via_gateway_http']);
      // The call went through the gateway Envoy (so a scaled-to-zero host would be held and woken).
      const stats = await stack.envoy.stats('cluster.host_rpc.upstream_rq_total');
      expect(stats.get('cluster.host_rpc.upstream_rq_total')).to.be.at.least(1);
    });
  });
});
