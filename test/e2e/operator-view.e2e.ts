// Issue 11: what an operator sees, on the real Envoy. Requests held now reach the control plane in the
// filter's wake calls; the status document is pushed over server-sent events as things change; cold starts
// are recorded with their phases and in the Prometheus histograms; xDS push-to-ACK latency and clients.
import { expect } from 'chai';
import { REPO_ROOT } from '../../envoy-bootstrap/envoy.ts';
import { openEventStream, type EventStreamReader } from '../support/event-stream.ts';
import { http1Request } from '../support/http-client.ts';
import { freePort } from '../support/ports.ts';
import { startStack, type Stack } from '../support/stack.ts';

interface StatusHost {
  name: string;
  phase: string;
  wakeCount: number;
  held: { total: number; byEnvoy: { envoy: string; count: number }[] };
  coldStarts: { source: string; outcome: string; totalMs?: number; wakeToReadyMs?: number; readyToReleaseAckedMs?: number; firstTrafficReportedAt?: string }[];
}
interface StatusDoc {
  hosts: StatusHost[];
  nodes: { nodeId: string; clientKind: string; loadReports: { streams: number; fresh: boolean } }[];
}

const host = (doc: StatusDoc, name: string): StatusHost => {
  const h = doc.hosts.find((x) => x.name === name);
  if (!h) throw new Error(`no host ${name} in the status document`);
  return h;
};

/** One sample of the control plane's /metrics text, or undefined when the series is absent. */
export function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('operator view: held requests, cold starts and metrics (real Envoy)', function () {
  this.timeout(90_000);
  let stack: Stack;
  let stream: EventStreamReader;
  let appPort: number;

  before(async () => {
    appPort = await freePort();
    stack = await startStack({
      controlPlane: { probeIntervalMs: 5, scaling: { loadReportIntervalMs: 200, idleCheckIntervalMs: 100 } },
      config: (u) => ({
        hosts: [
          // Manual: held until the admin API wakes it (the filter's wake calls still come, and carry the count).
          { name: 'held', domains: ['held.test'], initialState: 'scaled_to_zero', endpoints: [{ address: '127.0.0.1', port: u.httpPort }], buffer: { holdTimeoutMs: 30_000, maxHeld: 100, retryAfterSeconds: 1 } },
          // The same, with the held-time response header on.
          { name: 'timed', domains: ['timed.test'], initialState: 'scaled_to_zero', heldHeader: true, endpoints: [{ address: '127.0.0.1', port: u.httpPort }] },
          {
            name: 'app',
            domains: ['app.test'],
            endpoints: [{ address: '127.0.0.1', port: appPort }],
            scaler: { kind: 'process', command: [process.execPath, '--import', 'tsx', 'upstream/main.ts', '--http-port', String(appPort), '--grpc-port', '0', '--id', 'app-process'], cwd: REPO_ROOT },
            wakeTimeoutMs: 15_000,
            idleAfterMs: 0,
          },
        ],
      }),
    });
    stream = await openEventStream(`${stack.cp.adminUrl}/v1/status/events`);
  });
  after(async () => {
    stream?.close();
    await stack?.close();
  });

  const statusOf = (data: string): StatusDoc => JSON.parse(data) as StatusDoc;

  it('pushes held requests (summed over the Envoy\'s workers) and the wake that releases them, with the cold start', async () => {
    const first = await stream.next((e) => e.event === 'status');
    expect(host(statusOf(first.data), 'held')).to.include({ phase: 'scaled_to_zero', wakeCount: 0 });

    // Three requests on separate connections: with two workers they may be held by either; the gauge is Envoy-wide.
    const replies = [0, 1, 2].map(() => http1Request({ port: stack.port, host: 'held.test', path: '/hello', timeoutMs: 30_000 }));
    const held = await stream.next((e) => host(statusOf(e.data), 'held').held.total === 3, 10_000);
    const byEnvoy = host(statusOf(held.data), 'held').held.byEnvoy;
    expect(byEnvoy).to.have.length(1);
    expect(byEnvoy[0]).to.include({ count: 3 });
    expect(byEnvoy[0]!.envoy).to.match(/^envoy-[0-9a-f]+$/);
    const metricsHeld = await (await stack.adminFetch('/metrics')).text();
    expect(sample(metricsHeld, 'stz_requests_held{host="held"}')).to.equal(3);

    const woke = await stack.adminFetch('/v1/hosts/held/wake', { method: 'POST' });
    expect(woke.status).to.equal(200);
    for (const r of await Promise.all(replies)) {
      expect(r.status).to.equal(200);
      expect(r.headers['x-scale-to-zero-held-ms'], 'off by default').to.equal(undefined);
    }

    const ready = await stream.next((e) => {
      const h = host(statusOf(e.data), 'held');
      return h.phase === 'ready' && h.coldStarts[0]?.outcome === 'ready';
    });
    const h = host(statusOf(ready.data), 'held');
    expect(h.held.total, 'held requests are cleared on release').to.equal(0);
    expect(h.wakeCount).to.equal(1);
    const c = h.coldStarts[0]!;
    expect(c.source).to.equal('admin');
    expect(c.totalMs).to.be.a('number');
    expect(c.wakeToReadyMs! + c.readyToReleaseAckedMs!).to.equal(c.totalMs);

    const metrics = await (await stack.adminFetch('/metrics')).text();
    expect(sample(metrics, 'stz_requests_held{host="held"}')).to.equal(0);
    expect(sample(metrics, 'stz_wakes_total{host="held",source="admin"}')).to.equal(1);
    expect(sample(metrics, 'stz_cold_start_duration_seconds_count{host="held"}')).to.equal(1);
    expect(sample(metrics, 'stz_cold_start_duration_seconds_bucket{host="held",le="+Inf"}')).to.equal(1);
    expect(sample(metrics, 'stz_cold_start_phase_duration_seconds_count{host="held",phase="wake_to_ready"}')).to.equal(1);
    expect(sample(metrics, 'stz_cold_start_phase_duration_seconds_count{host="held",phase="ready_to_release_acked"}')).to.equal(1);
    expect(sample(metrics, 'stz_cold_start_duration_seconds_sum{host="held"}')).to.be.closeTo(c.totalMs! / 1000, 0.002);
  });

  it('records a cold start woken by a held request, with the first load report that shows its traffic', async () => {
    const reply = await http1Request({ port: stack.port, host: 'app.test', path: '/hello', timeoutMs: 30_000 });
    expect(reply.status).to.equal(200);
    const done = await stream.next((e) => host(statusOf(e.data), 'app').coldStarts[0]?.firstTrafficReportedAt !== undefined, 10_000);
    const c = host(statusOf(done.data), 'app').coldStarts[0]!;
    expect(c).to.include({ source: 'filter', outcome: 'ready' });
    const metrics = await (await stack.adminFetch('/metrics')).text();
    expect(sample(metrics, 'stz_wakes_total{host="app",source="filter"}')).to.equal(1);
    expect(sample(metrics, 'stz_cold_start_duration_seconds_count{host="app"}')).to.equal(1);
  });

  it('adds x-scale-to-zero-held-ms to a released request of a host with heldHeader, and not to its later ones', async () => {
    const startedAt = Date.now();
    const pending = http1Request({ port: stack.port, host: 'timed.test', path: '/hello', timeoutMs: 30_000 });
    await stream.next((e) => host(statusOf(e.data), 'timed').held.total === 1, 10_000);
    await new Promise((r) => setTimeout(r, 300));
    expect((await stack.adminFetch('/v1/hosts/timed/wake', { method: 'POST' })).status).to.equal(200);
    const reply = await pending;
    const elapsed = Date.now() - startedAt;
    expect(reply.status).to.equal(200);
    const heldMs = Number(reply.headers['x-scale-to-zero-held-ms']);
    expect(heldMs, `header ${String(reply.headers['x-scale-to-zero-held-ms'])}`).to.be.at.least(300).and.at.most(elapsed);
    const later = await http1Request({ port: stack.port, host: 'timed.test', path: '/hello' });
    expect(later.status).to.equal(200);
    expect(later.headers['x-scale-to-zero-held-ms'], 'a request that was not held').to.equal(undefined);
  });

  it('exports push-to-ACK latency per type, connected clients by kind and load-report streams', async () => {
    const metrics = await (await stack.adminFetch('/metrics')).text();
    for (const type of ['envoy.config.listener.v3.Listener', 'envoy.config.cluster.v3.Cluster', 'envoy.config.core.v3.TypedExtensionConfig']) {
      expect(sample(metrics, `stz_xds_push_ack_duration_seconds_count{type="type.googleapis.com/${type}"}`), type).to.be.at.least(1);
    }
    expect(sample(metrics, 'stz_xds_connected_clients{kind="envoy"}')).to.equal(1);
    expect(sample(metrics, 'stz_lrs_connected_streams')).to.equal(1);
    expect(metrics).to.include('# TYPE stz_cold_start_duration_seconds histogram').and.include('# TYPE stz_wakes_total counter');
    const doc = (await (await stack.adminFetch('/v1/status')).json()) as StatusDoc;
    expect(doc.nodes[0]).to.deep.include({ clientKind: 'envoy' });
    expect(doc.nodes[0]!.loadReports).to.include({ streams: 1, fresh: true });
  });

  it('refuses an invalid held report in a wake call (400)', async () => {
    // As the filter calls: the mTLS wake port with the Envoy's certificate.
    const bad = await stack.wakeCall('held', { 'x-scale-to-zero-held': 'lots', 'x-scale-to-zero-envoy': 'envoy-1' });
    expect(bad.status).to.equal(400);
    const empty = await stack.wakeCall('held', { 'x-scale-to-zero-held': '' });
    expect(empty.status).to.equal(400);
  });
});
