// Issue 4: wake on the first request, release when healthy, scale back to zero when idle — with the
// process scaler running the demo upstream as a real child process, behind the real Envoy. Run twice: with
// Envoy on state-of-the-world ADS and on delta ADS (issue 12): the hold/release path must not care.
import { expect } from 'chai';
import { eventually } from '../support/eventually.ts';
import { http1Request, type Reply } from '../support/http-client.ts';
import { freePort } from '../support/ports.ts';
import { processHost, startStack, type Stack } from '../support/stack.ts';

interface HostJson {
  state: string;
  scaling: { phase: string; wakeCount: number; lastError?: string };
}

for (const adsApi of ['GRPC', 'DELTA_GRPC'] as const) describe(`scale to zero and back on a real Envoy (ADS ${adsApi === 'GRPC' ? 'state of the world' : 'delta'})`, function () {
  this.timeout(120_000);
  let stack: Stack;
  let appPort: number;
  let idlePort: number;
  const started: Record<string, number> = {};

  before(async () => {
    appPort = await freePort();
    idlePort = await freePort();
    stack = await startStack({
      adsApi,
      controlPlane: { probeIntervalMs: 5, scaling: { loadReportIntervalMs: 200, idleCheckIntervalMs: 100, drainTimeoutMs: 5_000 } },
      config: () => ({
        hosts: [
          processHost('app', appPort),
          processHost('idle', idlePort, { idleAfterMs: 1_500 }),
          processHost('never', 1, {
            scaler: { kind: 'process', command: [process.execPath, '-e', 'setInterval(() => {}, 1000)'] },
            // Held requests time out before the wake gives up (a failed wake answers them itself: failed-wakes.e2e.ts).
            wakeTimeoutMs: 2_500,
            buffer: { holdTimeoutMs: 800, maxHeld: 100, retryAfterSeconds: 2 },
          }),
          processHost('crashy', 1, {
            scaler: { kind: 'process', command: [process.execPath, '-e', 'process.exit(3)'] },
            buffer: { holdTimeoutMs: 2_500, maxHeld: 100, retryAfterSeconds: 2 },
            wakeFailureBackoffMs: 1_000,
          }),
        ],
      }),
    });
    stack.cp.hostOutput.on('line', (host, line) => {
      if (line.includes('"upstream ready"')) started[host] = (started[host] ?? 0) + 1;
    });
  });
  after(async () => {
    await stack?.close();
  });

  const host = async (name: string): Promise<HostJson> => (await (await stack.adminFetch(`/v1/hosts/${name}`)).json()) as HostJson;

  it(`serves Envoy over the ADS variant it asked for (${adsApi})`, async () => {
    const nodes = (await (await stack.adminFetch('/v1/nodes')).json()) as { nodes: { clientKind: string; variant: string }[] };
    expect(nodes.nodes.filter((n) => n.clientKind === 'envoy').map((n) => n.variant)).to.deep.equal([adsApi === 'GRPC' ? 'sotw' : 'delta']);
  });

  it('starts a stopped host on its first request and answers it with the upstream', async () => {
    expect((await host('app')).scaling.phase).to.equal('scaled_to_zero');
    expect(stack.cp.processes.isRunning('app')).to.equal(false);
    const reply = await http1Request({ port: stack.port, host: 'app.test', path: '/first', timeoutMs: 30_000 });
    expect(reply.status).to.equal(200);
    expect(JSON.parse(reply.body)).to.include({ upstream: 'app-process', path: '/first' });
    // The answer can reach the client before the control plane has processed Envoy's ACK of the release,
    // and the phase turns ready only on that ACK.
    const state = await eventually(async () => {
      const s = await host('app');
      expect(s.scaling).to.include({ phase: 'ready', wakeCount: 1 });
      return s;
    }, { what: 'phase ready after the release is ACKed' });
    expect(state.state).to.equal('ready');
    expect(stack.cp.processes.isRunning('app')).to.equal(true);
  });

  it('wakes exactly once for 100 concurrent first requests', async () => {
    const down = await stack.adminFetch('/v1/hosts/app/scale-to-zero', { method: 'POST' });
    expect(down.status).to.equal(200);
    expect(stack.cp.processes.isRunning('app')).to.equal(false);
    const wakesBefore = stack.cp.metrics.value('stz_wakes_total', { host: 'app', source: 'filter' });
    const startsBefore = started.app ?? 0;
    const replies = await Promise.all(Array.from({ length: 100 }, (_, i) => http1Request({ port: stack.port, host: 'app.test', path: `/c${i}`, timeoutMs: 30_000 })));
    expect(replies.map((r) => r.status)).to.deep.equal(new Array(100).fill(200));
    expect(stack.cp.metrics.value('stz_wakes_total', { host: 'app', source: 'filter' }) - wakesBefore).to.equal(1);
    expect((started.app ?? 0) - startsBefore).to.equal(1);
    // The filter's lease lets one wake call through for all of Envoy's workers.
    expect(stack.cp.metrics.value('stz_wake_calls_total', { result: 'accepted' })).to.be.at.most(2);
  });

  it('answers with the hold timeout when a host never becomes healthy, and the admin API says why', async () => {
    const reply = await http1Request({ port: stack.port, host: 'never.test', timeoutMs: 30_000 });
    expect(reply.status).to.equal(503);
    expect(reply.headers['x-scale-to-zero']).to.equal('timeout');
    // While the request was held the filter retried the wake; once nothing is held, the retries stop.
    const state = await eventually(async () => {
      const h = await host('never');
      expect(h.scaling.phase).to.be.oneOf(['failed', 'scaled_to_zero']);
      expect(stack.cp.processes.isRunning('never')).to.equal(false);
      return h;
    }, { what: 'the failed host settled' });
    expect(state.scaling.lastError).to.match(/not healthy within wakeTimeoutMs 2500 ms/);
    expect(state.scaling.wakeCount).to.be.at.least(1);
  });

  it('reports a host whose process exits at once, and tries again on the next request after the backoff', async () => {
    const first = await http1Request({ port: stack.port, host: 'crashy.test', timeoutMs: 30_000 });
    expect(first.status).to.equal(503);
    expect(first.headers['x-scale-to-zero']).to.equal('wake_failed');
    const state = await eventually(async () => {
      const h = await host('crashy');
      if (!h.scaling.lastError) throw new Error('no error recorded yet');
      return h;
    });
    expect(state.scaling.lastError).to.match(/exited \(code 3\) before becoming healthy/);
    const wakes = state.scaling.wakeCount;
    await eventually(async () => expect((await host('crashy')).scaling.phase).to.equal('scaled_to_zero'), { what: 'the backoff to end' });
    await http1Request({ port: stack.port, host: 'crashy.test', timeoutMs: 30_000 });
    expect((await host('crashy')).scaling.wakeCount).to.be.greaterThan(wakes);
  });

  it('scales an idle host back to zero, and the next request wakes it again', async () => {
    expect((await http1Request({ port: stack.port, host: 'idle.test', timeoutMs: 30_000 })).status).to.equal(200);
    expect(stack.cp.processes.isRunning('idle')).to.equal(true);
    await eventually(async () => {
      const h = await host('idle');
      expect(h.scaling.phase).to.equal('scaled_to_zero');
      expect(stack.cp.processes.isRunning('idle')).to.equal(false);
    }, { timeoutMs: 20_000, what: 'the idle host scaled to zero' });
    const again = await http1Request({ port: stack.port, host: 'idle.test', path: '/again', timeoutMs: 30_000 });
    expect(again.status).to.equal(200);
    expect(JSON.parse(again.body).path).to.equal('/again');
    expect((await host('idle')).scaling.wakeCount).to.equal(2);
  });

  it('serves a request that races the scale-down instead of losing it', async () => {
    await http1Request({ port: stack.port, host: 'app.test', timeoutMs: 30_000 });
    expect((await host('app')).scaling.phase).to.equal('ready');
    const wakesBefore = (await host('app')).scaling.wakeCount;
    const replies: Reply[] = [];
    let stop = false;
    // Four clients keep sending, each waiting for its answer, all through the scale-down.
    const clients = Array.from({ length: 4 }, async (_, c) => {
      for (let i = 0; !stop && i < 500; i++) replies.push(await http1Request({ port: stack.port, host: 'app.test', path: `/race-${c}-${i}`, timeoutMs: 30_000 }));
    });
    await new Promise((r) => setTimeout(r, 200));
    const down = await stack.adminFetch('/v1/hosts/app/scale-to-zero', { method: 'POST' });
    expect(down.status).to.equal(200);
    await eventually(async () => expect((await host('app')).scaling.wakeCount).to.be.greaterThan(wakesBefore), { timeoutMs: 30_000, what: 'the racing requests waking the host again' });
    await new Promise((r) => setTimeout(r, 300));
    stop = true;
    await Promise.all(clients);
    expect(replies.length).to.be.greaterThan(4);
    expect(replies.filter((r) => r.status !== 200).map((r) => `${r.status} ${r.body}`)).to.deep.equal([]);
  });
});
