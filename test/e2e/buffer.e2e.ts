// Issue 3: the buffer filter in the real Envoy, configured only over ECDS by our control plane.
// Outcomes and order are asserted here; how fast is for bench/.
import { createHash, randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { validateGatewayConfig } from '../../sources/file/parse.ts';
import { DEFAULT_GROUP } from '../../xds-server/cache/snapshot-cache.ts';
import { grpcEcho, isGrpcError } from '../../upstream/grpc-client.ts';
import { startUpstream, type Upstream } from '../../upstream/server.ts';
import { eventually } from '../support/eventually.ts';
import { http1Request, Http2Connection, type Reply } from '../support/http-client.ts';
import { startStack, type Stack } from '../support/stack.ts';

const HELD = 'wasmcustom.scale_to_zero.held';

function config(u: Upstream, overrides: Record<string, Record<string, unknown>> = {}): Record<string, unknown> {
  const host = (name: string, protocol: string, port: number): Record<string, unknown> => ({
    name,
    domains: [`${name}.test`],
    protocol,
    endpoints: [{ address: '127.0.0.1', port }],
    buffer: { holdTimeoutMs: 60_000, maxHeld: 1000, retryAfterSeconds: 3 },
    ...overrides[name],
  });
  return {
    hosts: [
      host('web', 'http1', u.httpPort),
      host('h2', 'http2', u.httpPort),
      host('rpc', 'grpc', u.grpcPort),
      host('ready', 'http1', u.httpPort),
      host('tight', 'http1', u.httpPort),
      host('tightrpc', 'grpc', u.grpcPort),
    ],
  };
}

async function held(stack: Stack): Promise<number> {
  return (await stack.envoy.stats('scale_to_zero')).get(HELD) ?? 0;
}

async function waitHeld(stack: Stack, n: number): Promise<void> {
  await eventually(async () => {
    const h = await held(stack);
    if (h !== n) throw new Error(`held gauge is ${h}, want ${n}`);
  }, { timeoutMs: 20_000, what: `${n} held requests` });
}

async function post(stack: Stack, path: string): Promise<Response> {
  const res = await stack.adminFetch(path, { method: 'POST' });
  expect(res.status, `${path} answered ${res.status}`).to.equal(200);
  return res;
}

describe('buffer filter on a real Envoy', function () {
  this.timeout(120_000);
  let stack: Stack;

  before(async () => {
    stack = await startStack({ config: (u) => config(u, { tight: { buffer: { holdTimeoutMs: 800, maxHeld: 2, retryAfterSeconds: 7 } }, tightrpc: { buffer: { holdTimeoutMs: 800, maxHeld: 2, retryAfterSeconds: 7 } } }) });
  });
  after(async () => {
    await stack?.close();
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed') console.error(`Envoy log tail:\n${stack.envoy.logTail(40)}`);
    for (const h of ['web', 'h2', 'rpc']) await stack.adminFetch(`/v1/hosts/${h}/wake`, { method: 'POST' });
  });

  it('holds 200 concurrent requests over HTTP/1.1, HTTP/2 and gRPC until the host is woken, then all get the upstream answer', async () => {
    for (const h of ['web', 'h2', 'rpc']) await post(stack, `/v1/hosts/${h}/scale-to-zero`);
    stack.upstream.clearReceived();
    let wokenAt = Infinity;
    const answeredEarly: string[] = [];
    const track = <T>(what: string, p: Promise<T>): Promise<T> =>
      p.then((v) => {
        if (Date.now() < wokenAt) answeredEarly.push(what);
        return v;
      });
    const h1 = Array.from({ length: 80 }, (_, i) => track(`h1-${i}`, http1Request({ port: stack.port, host: 'web.test', path: `/h1/${i}`, timeoutMs: 60_000 })));
    const conns = [new Http2Connection(stack.port), new Http2Connection(stack.port)];
    const h2 = Array.from({ length: 60 }, (_, i) => track(`h2-${i}`, conns[i % 2]!.request({ host: 'h2.test', path: `/h2/${i}`, timeoutMs: 60_000 })));
    const rpc = Array.from({ length: 60 }, (_, i) => track(`rpc-${i}`, grpcEcho(`127.0.0.1:${stack.port}`, 'rpc.test', `m${i}`, Buffer.from(`p${i}`), 60_000)));
    try {
      await waitHeld(stack, 200);
      expect(answeredEarly).to.deep.equal([]);
      expect(stack.upstream.received).to.have.length(0);
      wokenAt = Date.now();
      await Promise.all(['web', 'h2', 'rpc'].map((h) => post(stack, `/v1/hosts/${h}/wake`)));
      const [r1, r2, r3] = await Promise.all([Promise.all(h1), Promise.all(h2), Promise.all(rpc)]);
      expect(answeredEarly).to.deep.equal([]);
      expect(r1.map((r) => r.status)).to.deep.equal(new Array(80).fill(200));
      expect(r1.map((r) => JSON.parse(r.body).path)).to.deep.equal(Array.from({ length: 80 }, (_, i) => `/h1/${i}`));
      expect(r2.map((r) => r.status)).to.deep.equal(new Array(60).fill(200));
      expect(r2.every((r) => JSON.parse(r.body).protocol === 'HTTP/2')).to.equal(true);
      for (const [i, r] of r3.entries()) {
        expect(isGrpcError(r), JSON.stringify(r)).to.equal(false);
        expect(r).to.include({ message: `m${i}`, payload_sha256: createHash('sha256').update(`p${i}`).digest('hex') });
      }
      expect(stack.upstream.received).to.have.length(200);
      await waitHeld(stack, 0);
      const stats = await stack.envoy.stats('scale_to_zero');
      expect(stats.get('wasmcustom.scale_to_zero.released')).to.be.at.least(200);
      // The same metrics in Envoy's Prometheus output, including the hold-time histogram.
      const prometheus = await (await stack.envoy.admin('/stats/prometheus')).text();
      // (Envoy drops the wasmcustom. prefix there.)
      expect(prometheus).to.match(/^scale_to_zero_held\{\} 0$/m);
      expect(prometheus).to.match(/^scale_to_zero_released\{\} [1-9]\d*$/m);
      // Histograms reach the admin output at Envoy's stats flush (every 5 s).
      await eventually(async () => {
        const text = await (await stack.envoy.admin('/stats/prometheus')).text();
        const count = Number(/^scale_to_zero_hold_time_ms_count\{\} (\d+)$/m.exec(text)?.[1] ?? 0);
        if (count < 200) throw new Error(`hold_time_ms count is ${count}`);
      }, { timeoutMs: 15_000, intervalMs: 500, what: 'the hold-time histogram' });
    } finally {
      for (const c of conns) c.close();
    }
  });

  it('releases a held 1 MiB POST byte-identical', async () => {
    await post(stack, '/v1/hosts/web/scale-to-zero');
    const body = randomBytes(1024 * 1024);
    const reply = http1Request({ port: stack.port, host: 'web.test', path: '/upload', method: 'POST', body, headers: { 'content-type': 'application/octet-stream' }, timeoutMs: 60_000 });
    await waitHeld(stack, 1);
    await post(stack, '/v1/hosts/web/wake');
    const r = await reply;
    expect(r.status).to.equal(200);
    const echo = JSON.parse(r.body) as { bodyBytes: number; bodySha256: string };
    expect(echo.bodyBytes).to.equal(body.length);
    expect(echo.bodySha256).to.equal(createHash('sha256').update(body).digest('hex'));
  });

  it('answers overflow at once and timeouts later with 503, Retry-After and a JSON body', async () => {
    await post(stack, '/v1/hosts/tight/scale-to-zero');
    // The cap is per worker (2 workers × maxHeld 2), so at most 4 are held and at least 4 of 8 overflow.
    const replies: Reply[] = await Promise.all(Array.from({ length: 8 }, () => http1Request({ port: stack.port, host: 'tight.test', timeoutMs: 30_000 })));
    const overflow = replies.filter((r) => r.headers['x-scale-to-zero'] === 'overflow');
    const timeout = replies.filter((r) => r.headers['x-scale-to-zero'] === 'timeout');
    expect(overflow.length + timeout.length).to.equal(8);
    expect(overflow.length).to.be.at.least(4);
    expect(timeout.length).to.be.at.least(1);
    for (const r of replies) {
      expect(r.status).to.equal(503);
      expect(r.headers['retry-after']).to.equal('7');
      expect(r.headers['content-type']).to.match(/application\/json/);
      const body = JSON.parse(r.body) as { error: string; host: string; message: string };
      expect(body.host).to.equal('tight');
      expect(body.error).to.equal(r.headers['x-scale-to-zero'] === 'overflow' ? 'hold_overflow' : 'hold_timeout');
      expect(body.message).to.be.a('string').and.not.equal('');
    }
    const stats = await stack.envoy.stats('scale_to_zero');
    expect(stats.get('wasmcustom.scale_to_zero.overflowed')).to.be.at.least(overflow.length);
    expect(stats.get('wasmcustom.scale_to_zero.timed_out')).to.be.at.least(timeout.length);
    await waitHeld(stack, 0);
  });

  it('answers gRPC callers with UNAVAILABLE (14) on overflow and timeout, not an HTTP error body', async () => {
    await post(stack, '/v1/hosts/tightrpc/scale-to-zero');
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => grpcEcho(`127.0.0.1:${stack.port}`, 'tightrpc.test', `x${i}`, Buffer.alloc(0), 30_000)));
    for (const r of results) {
      expect(isGrpcError(r), JSON.stringify(r)).to.equal(true);
      if (isGrpcError(r)) {
        expect(r.error.code).to.equal(14);
        expect(r.error.details).to.match(/tightrpc/);
      }
    }
    await waitHeld(stack, 0);
  });

  it('forgets clients that disconnect while held, and Envoy stays healthy', async () => {
    await post(stack, '/v1/hosts/web/scale-to-zero');
    const before = (await stack.envoy.stats('scale_to_zero')).get('wasmcustom.scale_to_zero.cancelled') ?? 0;
    const controllers = Array.from({ length: 20 }, () => new AbortController());
    const pending = controllers.map((c) => http1Request({ port: stack.port, host: 'web.test', signal: c.signal, timeoutMs: 60_000 }).catch((e: Error) => e));
    await waitHeld(stack, 20);
    for (const c of controllers) c.abort();
    const outcomes = await Promise.all(pending);
    expect(outcomes.every((o) => o instanceof Error)).to.equal(true);
    await waitHeld(stack, 0);
    const after = (await stack.envoy.stats('scale_to_zero')).get('wasmcustom.scale_to_zero.cancelled') ?? 0;
    expect(after - before).to.equal(20);
    expect(await (await stack.envoy.admin('/ready')).text()).to.match(/LIVE/);
    await post(stack, '/v1/hosts/web/wake');
    expect((await http1Request({ port: stack.port, host: 'web.test' })).status).to.equal(200);
  });

  it('does not drain existing downstream connections on an ECDS push', async () => {
    const h2 = new Http2Connection(stack.port);
    try {
      expect((await h2.request({ host: 'ready.test' })).status).to.equal(200);
      const drainBefore = await stack.envoy.stats('downstream_cx_drain_close');
      for (let i = 0; i < 4; i++) {
        await post(stack, '/v1/hosts/web/scale-to-zero');
        await post(stack, '/v1/hosts/web/wake');
        // The same HTTP/2 connection keeps serving after every push.
        expect((await h2.request({ host: 'ready.test', path: `/after-push-${i}` })).status).to.equal(200);
      }
      const stats = await stack.envoy.stats();
      expect(stats.get('listener_manager.total_filter_chains_draining')).to.equal(0);
      expect(stats.get('http.gateway.downstream_cx_drain_close')).to.equal(drainBefore.get('http.gateway.downstream_cx_drain_close') ?? 0);
      expect(stats.get('extension_config_discovery.http_filter.scale_to_zero_buffer.config_reload')).to.be.at.least(8);
    } finally {
      h2.close();
    }
  });

  it('serves ready hosts untouched while another host holds requests', async () => {
    await post(stack, '/v1/hosts/rpc/scale-to-zero');
    const heldCalls = Array.from({ length: 30 }, (_, i) => grpcEcho(`127.0.0.1:${stack.port}`, 'rpc.test', `h${i}`, Buffer.alloc(0), 60_000));
    await waitHeld(stack, 30);
    const replies = await Promise.all(Array.from({ length: 50 }, (_, i) => http1Request({ port: stack.port, host: 'ready.test', path: `/p${i}`, headers: { 'x-test-id': `t${i}` } })));
    expect(replies.map((r) => r.status)).to.deep.equal(new Array(50).fill(200));
    expect(replies.map((r) => (JSON.parse(r.body) as { headers: Record<string, string> }).headers['x-test-id'])).to.deep.equal(Array.from({ length: 50 }, (_, i) => `t${i}`));
    expect(await held(stack)).to.equal(30);
    await post(stack, '/v1/hosts/rpc/wake');
    const done = await Promise.all(heldCalls);
    expect(done.every((r) => !isGrpcError(r))).to.equal(true);
  });

  it('pushes new endpoints with the release in one push, endpoints first on the stream: no released request meets the old endpoint', async () => {
    const fresh = await startUpstream({ id: 'upstream-fresh' });
    try {
      // Scaled to zero with an endpoint nothing listens on, as a host whose replicas are gone.
      await stack.writeConfig(config(stack.upstream, { web: { endpoints: [{ address: '127.0.0.1', port: 1 }] } }));
      await post(stack, '/v1/config/reload');
      await post(stack, '/v1/hosts/web/scale-to-zero');
      const requests = Array.from({ length: 40 }, (_, i) => http1Request({ port: stack.port, host: 'web.test', path: `/e${i}`, timeoutMs: 60_000 }));
      await waitHeld(stack, 40);
      // New endpoints of an existing cluster and the release in one publish (both changes made in the same
      // tick): nothing warms, so they go out in one push without waiting for an ACK in between; the ADS
      // stream delivers the endpoints before the filter config that releases, and Envoy applies them in
      // that order. (New or changed clusters would be pushed first and ACKed: test/unit/publisher.test.ts.)
      const next = validateGatewayConfig({ listener: { address: '127.0.0.1', port: 0 }, ...config(stack.upstream, { web: { endpoints: [{ address: '127.0.0.1', port: fresh.httpPort }] } }) });
      if (!next.ok) throw new Error('test config invalid');
      const before = stack.cp.cache.getSnapshot(DEFAULT_GROUP)!;
      // Per group: each snapshot group (the file gateway's, which the Envoy's certificate names, and the
      // default one) is set once.
      const published = new Map<string, { endpoint: string; extensionConfig: string }[]>();
      const record = (e: { group: string; versions: { endpoint: string; extensionConfig: string } }): void => {
        published.set(e.group, [...(published.get(e.group) ?? []), { endpoint: e.versions.endpoint, extensionConfig: e.versions.extensionConfig }]);
      };
      stack.cp.events.on('snapshot-set', record);
      const changes = Promise.all([stack.cp.store.replaceConfig(next.value), stack.cp.store.setScaledToZero('web', false, 'test')]);
      const { snapshot } = await stack.cp.publisher.schedule();
      await changes;
      stack.cp.events.off('snapshot-set', record);
      expect(published.size).to.be.greaterThan(0);
      for (const [group, sets] of published) expect(sets, group).to.deep.equal([{ endpoint: snapshot.versions.endpoint, extensionConfig: snapshot.versions.extensionConfig }]);
      expect(snapshot.versions.extensionConfig).to.not.equal(before.versions.extensionConfig);
      const replies = await Promise.all(requests);
      expect(replies.map((r) => r.status)).to.deep.equal(new Array(40).fill(200));
      expect(replies.every((r) => JSON.parse(r.body).upstream === 'upstream-fresh')).to.equal(true);
    } finally {
      await stack.writeConfig(config(stack.upstream, { tight: { buffer: { holdTimeoutMs: 800, maxHeld: 2, retryAfterSeconds: 7 } }, tightrpc: { buffer: { holdTimeoutMs: 800, maxHeld: 2, retryAfterSeconds: 7 } } }));
      await stack.adminFetch('/v1/config/reload', { method: 'POST' });
      await fresh.close();
    }
  });
});
