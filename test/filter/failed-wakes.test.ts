// docs/filter-contract.md "Failed wakes", driven through the real filter.wasm: a host entry with a `failure`
// answers its held requests at once (paced like releases) and new ones on arrival, with the reason, and
// holds again (and calls for a wake) once a newer config lists it without one.
import { expect } from 'chai';
import { Action, MonotonicClock, ProxyWasmHost, SharedDataStore, StatsStore, type HttpContext } from '../support/proxy-wasm-host/index.ts';
import { HELD, TIMED_OUT, WAKE_CALLS, WAKE_FAILED, config, host, hostHeld, wake } from './fixtures.ts';

function header(ctx: HttpContext, name: string): string | undefined {
  return ctx.localReply?.headers.find(([k]) => k === name)?.[1];
}

const REASON = 'the process exited (code 3) before becoming healthy';
const failed = (reason = REASON, retryAfterSeconds = 10) => ({ failure: { reason, retryAfterSeconds } });

describe('failed wakes', () => {
  it('answers held requests at once with 503, the reason and the backoff as retry-after, not at holdTimeoutMs', () => {
    const vm = new ProxyWasmHost();
    const g1 = vm.startPlugin(config(1, [host('demo', { holdTimeoutMs: 60_000, retryAfterSeconds: 5 })]));
    const http = vm.request(g1.rootId, { ':authority': 'demo.local' });
    const grpc = vm.request(g1.rootId, { ':authority': 'demo.local', 'content-type': 'application/grpc' });
    expect(http.lastAction).to.equal(Action.StopAllIterationAndWatermark);
    vm.runFor(100);
    const g2 = vm.startPlugin(config(2, [host('demo', { holdTimeoutMs: 60_000, ...failed() })]));
    expect(g2.ok).to.equal(true);
    expect(http.localReply?.statusCode).to.equal(503);
    expect(header(http, 'retry-after')).to.equal('10');
    expect(header(http, 'x-scale-to-zero')).to.equal('wake_failed');
    expect(header(http, 'content-type')).to.equal('application/json');
    expect(http.localReply!.details).to.equal('scale_to_zero_wake_failed');
    const body = JSON.parse(http.localReply!.body);
    expect(body).to.include({ error: 'wake_failed', host: 'demo' });
    expect(body.message).to.equal(`host demo failed to start: ${REASON}; retry after 10 seconds`);
    expect(grpc.localReply?.grpcStatus).to.equal(14);
    expect(grpc.localReply?.body).to.contain(REASON);
    expect(header(grpc, 'content-type')).to.equal(undefined);
    expect(http.continued + grpc.continued).to.equal(0);
    expect(vm.metric(WAKE_FAILED)).to.equal(2);
    expect(vm.metric(TIMED_OUT)).to.equal(0);
    expect(vm.metric(HELD)).to.equal(0);
    expect(vm.metric(hostHeld('demo'))).to.equal(0);
  });

  it('answers new requests for a failed host at once, and holds only the others', () => {
    const vm = new ProxyWasmHost();
    const { rootId } = vm.startPlugin(config(1, [host('demo', failed()), host('other')]));
    const ctx = vm.request(rootId, { ':authority': 'demo.local' });
    expect(ctx.lastAction).to.equal(Action.StopIteration);
    expect(ctx.localReply?.statusCode).to.equal(503);
    expect(JSON.parse(ctx.localReply!.body).error).to.equal('wake_failed');
    const other = vm.request(rootId, { ':authority': 'other.local' });
    expect(other.lastAction).to.equal(Action.StopAllIterationAndWatermark);
    expect(vm.metric(HELD)).to.equal(1);
  });

  it('makes no wake call while the failure is listed, and holds and calls again once it is lifted', () => {
    const vm = new ProxyWasmHost();
    const g1 = vm.startPlugin(config(1, [host('demo', failed())], wake({ leaseMs: 100 })));
    vm.request(g1.rootId, { ':authority': 'demo.local' });
    vm.runFor(500);
    expect(vm.httpCalls).to.have.length(0);
    const g2 = vm.startPlugin(config(2, [host('demo')], wake({ leaseMs: 100 })));
    const next = vm.request(g2.rootId, { ':authority': 'demo.local' });
    expect(next.lastAction).to.equal(Action.StopAllIterationAndWatermark);
    expect(vm.httpCalls).to.have.length(1);
    expect(vm.httpCalls[0]!.headers).to.deep.include([':path', '/v1/wake/demo']);
    expect(vm.metric(WAKE_CALLS)).to.equal(1);
  });

  it('answers 300 held requests at most 100 per callback, the rest on 1 ms ticks', () => {
    const vm = new ProxyWasmHost();
    const g1 = vm.startPlugin(config(1, [host('demo')]));
    const held = Array.from({ length: 300 }, () => vm.request(g1.rootId, { ':authority': 'demo.local' }));
    const before = vm.effectsPerCallback.length;
    vm.startPlugin(config(2, [host('demo', failed())]));
    expect(held.filter((c) => c.localReply !== undefined)).to.have.length(100);
    vm.runFor(3);
    expect(held.every((c) => c.localReply?.statusCode === 503)).to.equal(true);
    const effects = vm.effectsPerCallback.slice(before);
    expect(Math.max(...effects)).to.equal(100);
    expect(effects.reduce((a, b) => a + b, 0)).to.equal(300);
    expect(vm.metric(WAKE_FAILED)).to.equal(300);
  });

  it('escapes a reason with quotes and backslashes in the JSON body', () => {
    const vm = new ProxyWasmHost();
    const reason = 'could not start ["./run", "C:\\\\x"]: spawn ENOENT';
    const { rootId } = vm.startPlugin(config(1, [host('demo', failed(reason, 3))]));
    const ctx = vm.request(rootId, { ':authority': 'demo.local' });
    expect(JSON.parse(ctx.localReply!.body).message).to.equal(`host demo failed to start: ${reason}; retry after 3 seconds`);
  });

  it('releases a failed host\'s held requests when it is no longer listed (it became ready meanwhile)', () => {
    const vm = new ProxyWasmHost();
    const g1 = vm.startPlugin(config(1, [host('demo')]));
    const held = Array.from({ length: 3 }, () => vm.request(g1.rootId, { ':authority': 'demo.local' }));
    vm.startPlugin(config(2, []));
    expect(held.every((c) => c.continued === 1)).to.equal(true);
  });

  it('rejects a failure entry that breaks the contract, naming the field', () => {
    const bad: [object, string][] = [
      [{ reason: '', retryAfterSeconds: 1 }, '$.hosts[0].failure.reason: must not be empty'],
      [{ reason: 'x'.repeat(201), retryAfterSeconds: 1 }, '$.hosts[0].failure.reason: is longer than 200 characters'],
      [{ reason: 'line\nbreak', retryAfterSeconds: 1 }, '$.hosts[0].failure.reason: must not contain control characters'],
      [{ reason: 'x', retryAfterSeconds: 3601 }, '$.hosts[0].failure.retryAfterSeconds: must be in 0..3600'],
      [{ reason: 'x' }, '$.hosts[0].failure.retryAfterSeconds: is required'],
      [{ reason: 'x', retryAfterSeconds: 1, until: 5 }, '$.hosts[0].failure.until: unknown field'],
    ];
    for (const [failure, error] of bad) {
      const vm = new ProxyWasmHost();
      const { ok } = vm.startPlugin({ generation: 1, hosts: [{ ...host('demo'), failure }] });
      expect(ok, JSON.stringify(failure)).to.equal(false);
      expect(vm.logText()).to.contain(error);
    }
  });

  it('publishes the shared-data record without the failure, so a VM of an older build can still read it', () => {
    const shared = { sharedData: new SharedDataStore(), stats: new StatsStore(), clock: new MonotonicClock() };
    const a = new ProxyWasmHost(shared);
    const b = new ProxyWasmHost(shared);
    const ra = a.startPlugin(config(1, [host('demo'), host('gone')]));
    const demo = a.request(ra.rootId, { ':authority': 'demo.local' });
    const gone = a.request(ra.rootId, { ':authority': 'gone.local' });
    // Only b sees the new config's on_configure (a stands for a VM whose code was replaced).
    b.startPlugin(config(2, [host('demo', failed())], wake()));
    const record = shared.sharedData.getText('scale_to_zero.config')!;
    expect(record).to.equal(`2\n${JSON.stringify(config(2, [host('demo')], wake()))}`);
    a.runFor(250);
    // What the record says still applies (gone is released); the failed host is held as before the change.
    expect(gone.continued).to.equal(1);
    expect(demo.continued).to.equal(0);
    expect(demo.localReply).to.equal(undefined);
  });
});
