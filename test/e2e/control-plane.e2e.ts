// Issue 2: the control plane alone drives a real Envoy (ready hosts; the filter is disabled on their routes).
import net from 'node:net';
import { expect } from 'chai';
import { startUpstream, type Upstream } from '../../upstream/server.ts';
import { grpcHealthCheck } from '../../upstream/grpc-client.ts';
import { eventually } from '../support/eventually.ts';
import { http1Request, Http2Connection } from '../support/http-client.ts';
import { startStack, type Stack } from '../support/stack.ts';

const hostsFor = (u: Upstream, listenerPort = 0): Record<string, unknown> => ({
  listener: { address: '127.0.0.1', port: listenerPort },
  hosts: [
    { name: 'web', domains: ['web.test'], protocol: 'http1', endpoints: [{ address: '127.0.0.1', port: u.httpPort }] },
    { name: 'h2', domains: ['h2.test'], protocol: 'http2', endpoints: [{ address: '127.0.0.1', port: u.httpPort }] },
    { name: 'rpc', domains: ['rpc.test'], protocol: 'grpc', endpoints: [{ address: '127.0.0.1', port: u.grpcPort }] },
  ],
});

describe('control plane driving a real Envoy', function () {
  this.timeout(60_000);
  let stack: Stack;

  before(async () => {
    stack = await startStack({ config: (u) => hostsFor(u) });
  });
  after(async () => {
    await stack?.close();
  });

  it('routes an HTTP/1.1 request by Host header to the upstream', async () => {
    const reply = await http1Request({ port: stack.port, host: 'web.test', path: '/hello?x=1' });
    expect(reply.status).to.equal(200);
    const echo = JSON.parse(reply.body) as { path: string; protocol: string; upstream: string };
    expect(echo).to.include({ path: '/hello?x=1', protocol: 'HTTP/1.1', upstream: 'upstream-a' });
  });

  it('matches a Host with a port to its domain and forwards the Host header untouched', async () => {
    const reply = await http1Request({ port: stack.port, host: 'web.test:8443', path: '/port' });
    expect(reply.status).to.equal(200);
    expect(JSON.parse(reply.body)).to.include({ path: '/port', authority: 'web.test:8443' });
  });

  it('routes HTTP/2 to an h2c upstream and answers 404 for an unknown host', async () => {
    const h2 = new Http2Connection(stack.port);
    try {
      const ok = await h2.request({ host: 'h2.test', path: '/two' });
      expect(ok.status).to.equal(200);
      expect(JSON.parse(ok.body)).to.include({ protocol: 'HTTP/2', path: '/two' });
      const unknown = await h2.request({ host: 'nobody.test' });
      expect(unknown.status).to.equal(404);
    } finally {
      h2.close();
    }
  });

  it('passes a gRPC health check through Envoy to the upstream', async () => {
    const result = await grpcHealthCheck(`127.0.0.1:${stack.port}`, 'rpc.test');
    expect(result).to.deep.equal({ status: 'SERVING' });
  });

  it('moves traffic to new endpoints from a config change, without restarting Envoy', async () => {
    const second = await startUpstream({ id: 'upstream-b' });
    try {
      const uptimeBefore = (await stack.envoy.stats('server.uptime')).get('server.uptime')!;
      const config = hostsFor(stack.upstream) as { hosts: { name: string; endpoints: unknown[] }[] };
      config.hosts[0]!.endpoints = [{ address: '127.0.0.1', port: second.httpPort }];
      await stack.writeConfig(config);
      const reload = await stack.adminFetch('/v1/config/reload', { method: 'POST' });
      expect(reload.status).to.equal(200);
      await eventually(async () => {
        const reply = await http1Request({ port: stack.port, host: 'web.test' });
        expect(JSON.parse(reply.body).upstream).to.equal('upstream-b');
      }, { what: 'traffic on upstream-b' });
      expect(stack.envoy.isRunning()).to.equal(true);
      const uptimeAfter = (await stack.envoy.stats('server.uptime')).get('server.uptime')!;
      expect(uptimeAfter).to.be.at.least(uptimeBefore);
    } finally {
      await stack.writeConfig(hostsFor(stack.upstream));
      await stack.adminFetch('/v1/config/reload', { method: 'POST' });
      await second.close();
    }
  });

  it('adds 200 hosts from a reload without an ACKed first phase: hosts in force never miss a request, and the new ones answer once the reload returns', async () => {
    const config = hostsFor(stack.upstream) as { hosts: Record<string, unknown>[] };
    const added = Array.from({ length: 200 }, (_, i) => ({ name: `n${i}`, domains: [`n${i}.test`], protocol: 'http1', endpoints: [{ address: '127.0.0.1', port: stack.upstream.httpPort }] }));
    let reloaded = false;
    const statuses: number[] = [];
    try {
      await stack.writeConfig({ ...config, hosts: [...config.hosts, ...added] });
      // Requests to a host in force all through the push (new clusters warming, the new routes beside them).
      const traffic = (async () => {
        while (!reloaded) statuses.push((await http1Request({ port: stack.port, host: 'web.test' })).status);
      })();
      const reload = await stack.adminFetch('/v1/config/reload', { method: 'POST' });
      reloaded = true;
      await traffic;
      expect(reload.status).to.equal(200);
      // The reload returns once Envoy has the new clusters warm (the publish waits for that, not for the routes'
      // turn): a new host answers at once.
      for (const host of ['n0.test', 'n199.test']) {
        const reply = await http1Request({ port: stack.port, host });
        expect(reply.status, host).to.equal(200);
      }
      expect(statuses.length).to.be.greaterThan(0);
      expect(statuses.filter((s) => s !== 200), 'requests to web.test during the push').to.deep.equal([]);
    } finally {
      reloaded = true;
      await stack.writeConfig(hostsFor(stack.upstream));
      await stack.adminFetch('/v1/config/reload', { method: 'POST' });
    }
  });

  it('reports a config Envoy rejects as a NACK while traffic keeps flowing on the last good config', async () => {
    // A listener port that another process holds: our validation cannot know, Envoy cannot bind it.
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const blockedPort = (blocker.address() as net.AddressInfo).port;
    try {
      await stack.writeConfig(hostsFor(stack.upstream, blockedPort));
      expect((await stack.adminFetch('/v1/config/reload', { method: 'POST' })).status).to.equal(200);
      const nack = await eventually(async () => {
        const body = (await (await stack.adminFetch('/v1/nodes')).json()) as { nodes: { types: { listener?: { nack?: { message: string; rejectedVersion: string } } } }[] };
        const n = body.nodes[0]?.types.listener?.nack;
        if (!n) throw new Error('no NACK recorded yet');
        return n;
      }, { what: 'the NACK in the admin API' });
      expect(nack.message).to.match(/bind|address already in use/i);
      const metrics = await (await stack.adminFetch('/metrics')).text();
      expect(metrics).to.match(/stz_xds_nacks_total\{type="type.googleapis.com\/envoy.config.listener.v3.Listener"\} [1-9]/);
      const reply = await http1Request({ port: stack.port, host: 'web.test' });
      expect(reply.status).to.equal(200);
    } finally {
      await stack.writeConfig(hostsFor(stack.upstream));
      await stack.adminFetch('/v1/config/reload', { method: 'POST' });
      blocker.close();
    }
    await eventually(async () => {
      const body = (await (await stack.adminFetch('/v1/nodes')).json()) as { nodes: { types: { listener?: { nack?: unknown; ackedVersion?: string; sentVersion?: string } } }[] };
      const listener = body.nodes[0]?.types.listener;
      expect(listener?.nack).to.equal(undefined);
      expect(listener?.ackedVersion).to.equal(listener?.sentVersion);
    }, { what: 'the good config ACKed again' });
  });

  it('keeps serving while the control plane restarts, then resyncs with the new one', async () => {
    const before = await http1Request({ port: stack.port, host: 'web.test' });
    expect(before.status).to.equal(200);
    await stack.restartControlPlane();
    await eventually(async () => {
      const body = (await (await stack.adminFetch('/v1/nodes')).json()) as { nodes: { types: { listener?: { ackedVersion?: string } } }[] };
      expect(body.nodes).to.have.length(1);
      expect(body.nodes[0]!.types.listener?.ackedVersion).to.be.a('string');
    }, { timeoutMs: 30_000, what: 'Envoy reconnecting to the restarted control plane' });
    // The new control plane's changes reach Envoy: an endpoint change moves traffic.
    const third = await startUpstream({ id: 'upstream-c' });
    try {
      const config = hostsFor(stack.upstream) as { hosts: { endpoints: unknown[] }[] };
      config.hosts[0]!.endpoints = [{ address: '127.0.0.1', port: third.httpPort }];
      await stack.writeConfig(config);
      expect((await stack.adminFetch('/v1/config/reload', { method: 'POST' })).status).to.equal(200);
      await eventually(async () => {
        const reply = await http1Request({ port: stack.port, host: 'web.test' });
        expect(JSON.parse(reply.body).upstream).to.equal('upstream-c');
      }, { what: 'traffic on upstream-c after the restart' });
    } finally {
      await stack.writeConfig(hostsFor(stack.upstream));
      await stack.adminFetch('/v1/config/reload', { method: 'POST' });
      await third.close();
    }
  });
});
