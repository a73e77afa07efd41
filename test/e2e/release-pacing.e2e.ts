// Issue 12: a mass release on the real Envoy. 1,000 requests held on ONE worker (--concurrency 1, the case
// the filter's per-callback bound is about) are released by one wake: every one reaches the upstream and is
// answered 200, the Wasm VM does not fail, Envoy stays up and serves the next request. (1,200 wake-failed
// replies, the nested worst case, are in failed-wakes.e2e.ts.) Outcomes only; how fast is bench/release-burst.ts.
// The other runs slow the filter's work tick to 60 s: what goes beyond the first batch then moves only because
// the upstream's answers to released requests each take the next batch (filter/assembly/http-context.ts).
import { expect } from 'chai';
import { buildFilterVariant } from '../../bench/lib/filter-variants.ts';
import { eventually } from '../support/eventually.ts';
import { Http2Connection, http1Request, type Reply } from '../support/http-client.ts';
import { startStack, type Stack } from '../support/stack.ts';

const COUNT = 1_000;

/** clients 'h2': every request is a stream of one HTTP/2 connection to the gateway, instead of a connection each. */
function massRelease(label: string, protocol: 'http1' | 'http2', filterWasm: () => string | undefined, clients: 'http1' | 'h2' = 'http1'): void {
  describe(label, function () {
    this.timeout(120_000);
    let stack: Stack;

    before(async function () {
      this.timeout(180_000);
      const filterWasmPath = filterWasm();
      stack = await startStack({
        concurrency: 1,
        ...(filterWasmPath ? { controlPlane: { filterWasmPath } } : {}),
        config: (u) => ({
          hosts: [
            {
              name: 'mass',
              domains: ['mass.test'],
              protocol,
              endpoints: [{ address: '127.0.0.1', port: u.httpPort }],
              buffer: { holdTimeoutMs: 60_000, maxHeld: 2_000, retryAfterSeconds: 1 },
              idleAfterMs: 0,
            },
          ],
        }),
      });
    });
    after(async () => {
      await stack?.close();
    });
    afterEach(function () {
      if (this.currentTest?.state === 'failed') console.error(`Envoy log tail:\n${stack.envoy.logTail(40)}`);
    });

    it(`releases ${COUNT.toLocaleString('en')} requests held on one worker: all answered 200 by the upstream, Envoy and its Wasm VM alive`, async () => {
      const scaled = await stack.adminFetch('/v1/hosts/mass/scale-to-zero', { method: 'POST' });
      expect(scaled.status).to.equal(200);
      stack.upstream.clearReceived();
      const stats = async (): Promise<Map<string, number>> => stack.envoy.stats('scale_to_zero');
      const releasedBefore = (await stats()).get('wasmcustom.scale_to_zero.released') ?? 0;

      const h2 = clients === 'h2' ? new Http2Connection(stack.port) : undefined;
      const send = (i: number): Promise<Reply> =>
        h2 ? h2.request({ host: 'mass.test', path: `/mass/${i}`, timeoutMs: 90_000 }) : http1Request({ port: stack.port, host: 'mass.test', path: `/mass/${i}`, timeoutMs: 90_000 });
      const all: Promise<Reply>[] = Array.from({ length: COUNT }, (_, i) => send(i));
      await eventually(async () => expect((await stats()).get('wasmcustom.scale_to_zero.held')).to.equal(COUNT), {
        what: `${COUNT} requests held`,
        timeoutMs: 30_000,
        intervalMs: 50,
      });
      expect(stack.upstream.received.filter((r) => r.path.startsWith('/mass/'))).to.have.length(0);

      const woken = await stack.adminFetch('/v1/hosts/mass/wake', { method: 'POST' });
      expect(woken.status).to.equal(200);
      const replies = await Promise.all(all);
      h2?.close();

      expect(replies.filter((r) => r.status === 200)).to.have.length(COUNT);
      // Each answer is the upstream's own, for its own request.
      replies.forEach((r, i) => expect(JSON.parse(r.body).path, `reply ${i}`).to.equal(`/mass/${i}`));
      expect(stack.envoy.isRunning()).to.equal(true);
      const after = await stats();
      expect(after.get('wasmcustom.scale_to_zero.held')).to.equal(0);
      expect((after.get('wasmcustom.scale_to_zero.released') ?? 0) - releasedBefore).to.equal(COUNT);
      // A VM that overflowed its stack logs it and answers nothing more; this one still holds and releases.
      expect(stack.envoy.logTail(400)).to.not.contain('Maximum call stack size exceeded');
      const next = await http1Request({ port: stack.port, host: 'mass.test', path: '/after', timeoutMs: 10_000 });
      expect(next.status).to.equal(200);
    });
  });
}

massRelease('mass release on a real Envoy', 'http1', () => undefined);
// Ticks every 60 s while work is queued: only the first batch (inside on_configure) and the upstream's answers
// can move this release along within the test's timeout.
const slowTick = (): string => buildFilterVariant({ workTickMs: 60_000 });
massRelease('mass release on a real Envoy, driven by the upstream\'s answers (work tick slowed to 60 s)', 'http1', slowTick);
// Over h2c the released requests share few upstream connections: each batch is resumed while Envoy's codec is
// still dispatching the answer that took it, onto that same connection.
massRelease('mass release on a real Envoy to an h2c upstream, driven by its answers (work tick slowed to 60 s)', 'http2', slowTick);
// One HTTP/2 connection from the client: each batch is resumed, and answered, on the downstream connection whose
// response for another of its streams is passing through the filter at that moment.
massRelease('mass release on a real Envoy over one client HTTP/2 connection to an h2c upstream, driven by its answers (work tick slowed to 60 s)', 'http2', slowTick, 'h2');
