// docs/filter-contract.md "Request handling" and "Metrics", driven through the real filter.wasm.
import { expect } from 'chai';
import { Action, ProxyWasmHost, type HttpContext } from '../support/proxy-wasm-host/index.ts';
import {
  CANCELLED, HELD, HOLD_TIME_MS, OVERFLOWED, RELEASED, TIMED_OUT, config, host, hostHeld,
} from './fixtures.ts';

function header(ctx: HttpContext, name: string): string | undefined {
  return ctx.localReply?.headers.find(([k]) => k === name)?.[1];
}

describe('holding and releasing requests', () => {
  it('holds a listed host with StopAllIterationAndWatermark and keeps body and trailers stopped', () => {
    const vm = new ProxyWasmHost();
    const { rootId } = vm.startPlugin(config(1, [host('demo')]));
    const ctx = vm.request(rootId, { ':authority': 'demo.local', ':method': 'POST' });
    expect(ctx.lastAction).to.equal(Action.StopAllIterationAndWatermark);
    expect(vm.requestBody(ctx, 100, false)).to.equal(Action.StopIterationAndWatermark);
    expect(vm.requestBody(ctx, 100, true)).to.equal(Action.StopIterationAndWatermark);
    expect(vm.requestTrailers(ctx)).to.equal(Action.StopIteration);
    expect(vm.metric(HELD)).to.equal(1);
    expect(vm.metric(hostHeld('demo'))).to.equal(1);
    // Something is held, so the plugin context ticks to watch timeouts.
    expect(vm.roots.get(rootId)!.tickPeriodMs).to.equal(100);
  });

  it('passes an unlisted host with Continue', () => {
    const vm = new ProxyWasmHost();
    const { rootId } = vm.startPlugin(config(1, [host('demo')]));
    const ctx = vm.request(rootId, { ':authority': 'ready.local' });
    expect(ctx.lastAction).to.equal(Action.Continue);
    expect(vm.requestBody(ctx, 10, true)).to.equal(Action.Continue);
  });

  it('continues a held request when a newer config no longer lists its host', () => {
    const vm = new ProxyWasmHost();
    const first = vm.startPlugin(config(1, [host('demo'), host('other')]));
    const demo = vm.request(first.rootId, { ':authority': 'demo.local' });
    const other = vm.request(first.rootId, { ':authority': 'other.local' });
    const second = vm.startPlugin(config(2, [host('other')]));
    expect(second.ok).to.equal(true);
    expect(demo.continued).to.equal(1);
    expect(other.continued).to.equal(0);
    expect(vm.metric(RELEASED)).to.equal(1);
    expect(vm.metric(HELD)).to.equal(1);
    expect(vm.metric(hostHeld('demo'))).to.equal(0);
    expect(vm.metric(hostHeld('other'))).to.equal(1);
    expect(vm.stats.samples(HOLD_TIME_MS)).to.have.length(1);
    // Once released, later body callbacks continue.
    expect(vm.requestBody(demo, 10, true)).to.equal(Action.Continue);
  });

  it('releases requests held under several older generations', () => {
    const vm = new ProxyWasmHost();
    const g1 = vm.startPlugin(config(1, [host('demo')]));
    const a = vm.request(g1.rootId, { ':authority': 'demo.local' });
    const g2 = vm.startPlugin(config(2, [host('demo', { holdTimeoutMs: 60_000 })]));
    const b = vm.request(g2.rootId, { ':authority': 'demo.local' });
    // A request arriving on the old plugin context still sees the newest config of the VM.
    const c = vm.request(g1.rootId, { ':authority': 'demo.local' });
    expect([a, b, c].map((x) => x.lastAction)).to.deep.equal([4, 4, 4]);
    vm.startPlugin(config(3, []));
    expect([a, b, c].map((x) => x.continued)).to.deep.equal([1, 1, 1]);
    expect(vm.metric(HELD)).to.equal(0);
    expect(vm.metric(RELEASED)).to.equal(3);
  });

  it('keeps holding when the newer config still lists the host', () => {
    const vm = new ProxyWasmHost();
    const g1 = vm.startPlugin(config(1, [host('demo')]));
    const a = vm.request(g1.rootId, { ':authority': 'demo.local' });
    vm.startPlugin(config(2, [host('demo', { domains: ['demo.local', 'demo.internal'] })]));
    expect(a.continued).to.equal(0);
    expect(vm.metric(HELD)).to.equal(1);
  });

  it('does not let a valid but older generation undo a newer one', () => {
    const vm = new ProxyWasmHost();
    vm.startPlugin(config(5, [host('demo')]));
    const old = vm.startPlugin(config(4, []));
    expect(old.ok).to.equal(true);
    const ctx = vm.request(old.rootId, { ':authority': 'demo.local' });
    expect(ctx.lastAction).to.equal(Action.StopAllIterationAndWatermark);
  });

  it('answers at once with 503, retry-after and a JSON body when the host is at maxHeld on this worker', () => {
    const vm = new ProxyWasmHost();
    const { rootId } = vm.startPlugin(config(1, [host('demo', { maxHeld: 2, retryAfterSeconds: 7 })]));
    const held = [vm.request(rootId, { ':authority': 'demo.local' }), vm.request(rootId, { ':authority': 'demo.local' })];
    const third = vm.request(rootId, { ':authority': 'demo.local', 'content-type': 'application/json' });
    expect(held.map((x) => x.lastAction)).to.deep.equal([4, 4]);
    expect(third.lastAction).to.equal(Action.StopIteration);
    expect(third.localReply).to.not.equal(undefined);
    expect(third.localReply!.statusCode).to.equal(503);
    expect(third.localReply!.grpcStatus).to.equal(null);
    expect(header(third, 'retry-after')).to.equal('7');
    expect(header(third, 'x-scale-to-zero')).to.equal('overflow');
    expect(header(third, 'content-type')).to.equal('application/json');
    const body = JSON.parse(third.localReply!.body);
    expect(body).to.include({ error: 'hold_overflow', host: 'demo' });
    expect(body.message).to.be.a('string').and.contain('retry after 7 seconds');
    expect(vm.metric(OVERFLOWED)).to.equal(1);
    expect(vm.metric(HELD)).to.equal(2);
  });

  it('answers every request at once when maxHeld is 0', () => {
    const vm = new ProxyWasmHost();
    const { rootId } = vm.startPlugin(config(1, [host('demo', { maxHeld: 0 })]));
    const ctx = vm.request(rootId, { ':authority': 'demo.local' });
    expect(ctx.localReply?.statusCode).to.equal(503);
    expect(vm.metric(HELD)).to.equal(0);
    expect(vm.roots.get(rootId)!.tickPeriodMs).to.equal(0);
  });

  it('gives gRPC callers grpc-status 14 with the message, and no JSON content-type', () => {
    const vm = new ProxyWasmHost();
    const { rootId } = vm.startPlugin(config(1, [host('demo', { maxHeld: 0, retryAfterSeconds: 3 })]));
    const ctx = vm.request(rootId, { ':authority': 'demo.local', 'content-type': 'application/grpc+proto' });
    expect(ctx.localReply?.grpcStatus).to.equal(14);
    expect(ctx.localReply?.body).to.contain('demo').and.contain('retry after 3 seconds');
    expect(header(ctx, 'content-type')).to.equal(undefined);
    expect(header(ctx, 'retry-after')).to.equal('3');
  });

  it('times out a held request on a tick after holdTimeoutMs with a 503', () => {
    const vm = new ProxyWasmHost();
    const { rootId } = vm.startPlugin(config(1, [host('demo', { holdTimeoutMs: 1000, retryAfterSeconds: 5 })]));
    const ctx = vm.request(rootId, { ':authority': 'demo.local' });
    const grpc = vm.request(rootId, { ':authority': 'demo.local', 'content-type': 'application/grpc' });
    vm.runFor(900);
    expect(ctx.localReply).to.equal(undefined);
    vm.runFor(300);
    expect(ctx.localReply?.statusCode).to.equal(503);
    expect(header(ctx, 'x-scale-to-zero')).to.equal('timeout');
    expect(header(ctx, 'retry-after')).to.equal('5');
    expect(JSON.parse(ctx.localReply!.body)).to.include({ error: 'hold_timeout', host: 'demo' });
    expect(grpc.localReply?.grpcStatus).to.equal(14);
    expect(ctx.continued).to.equal(0);
    expect(vm.metric(TIMED_OUT)).to.equal(2);
    expect(vm.metric(HELD)).to.equal(0);
    const samples = vm.stats.samples(HOLD_TIME_MS);
    expect(samples).to.have.length(2);
    expect(samples[0]).to.be.within(1000, 1100);
    // Nothing held, nothing pending: the timer stops.
    vm.runFor(200);
    expect(vm.roots.get(rootId)!.tickPeriodMs).to.equal(0);
  });

  it('uses the newest config\'s holdTimeoutMs for requests already held', () => {
    const vm = new ProxyWasmHost();
    const g1 = vm.startPlugin(config(1, [host('demo', { holdTimeoutMs: 60_000 })]));
    const ctx = vm.request(g1.rootId, { ':authority': 'demo.local' });
    vm.startPlugin(config(2, [host('demo', { holdTimeoutMs: 500 })]));
    vm.runFor(700);
    expect(ctx.localReply?.statusCode).to.equal(503);
  });

  it('forgets a held request whose client went away: gauge back to 0, no continue attempted', () => {
    const vm = new ProxyWasmHost();
    const g1 = vm.startPlugin(config(1, [host('demo')]));
    const gone = vm.request(g1.rootId, { ':authority': 'demo.local' });
    const stays = vm.request(g1.rootId, { ':authority': 'demo.local' });
    vm.clock.advance(250);
    vm.finish(gone);
    expect(vm.metric(HELD)).to.equal(1);
    expect(vm.metric(hostHeld('demo'))).to.equal(1);
    expect(vm.metric(CANCELLED)).to.equal(1);
    expect(vm.stats.samples(HOLD_TIME_MS)).to.deep.equal([250]);
    vm.startPlugin(config(2, []));
    expect(gone.continued + gone.continueFailures).to.equal(0);
    expect(stays.continued).to.equal(1);
    expect(vm.metric(HELD)).to.equal(0);
    expect(vm.metric(hostHeld('demo'))).to.equal(0);
    expect(vm.metric(CANCELLED)).to.equal(1);
  });

  it('forgets a request that goes away after its release was queued', () => {
    const vm = new ProxyWasmHost();
    const g1 = vm.startPlugin(config(1, [host('demo')]));
    const held = Array.from({ length: 120 }, () => vm.request(g1.rootId, { ':authority': 'demo.local' }));
    vm.startPlugin(config(2, []));
    const last = held[119]!;
    expect(last.continued).to.equal(0);
    vm.finish(last);
    vm.runFor(10);
    expect(last.continued + last.continueFailures).to.equal(0);
    expect(held.slice(0, 119).every((c) => c.continued === 1)).to.equal(true);
    expect(vm.metric(HELD)).to.equal(0);
    expect(vm.metric(RELEASED)).to.equal(119);
    expect(vm.metric(CANCELLED)).to.equal(1);
  });

  it('releases 1,000 held requests at most 100 per callback, one batch per 1 ms tick, in hold order', () => {
    const vm = new ProxyWasmHost();
    const g1 = vm.startPlugin(config(1, [host('demo')]));
    const held = Array.from({ length: 1000 }, () => vm.request(g1.rootId, { ':authority': 'demo.local' }));
    const before = vm.effectsPerCallback.length;
    const g2 = vm.startPlugin(config(2, []));
    // The first batch goes out inside on_configure; the rest are paced by the new plugin context's tick.
    expect(held.filter((c) => c.continued === 1)).to.have.length(100);
    expect(held.slice(0, 100).every((c) => c.continued === 1)).to.equal(true);
    expect(vm.roots.get(g2.rootId)!.tickPeriodMs).to.equal(1);
    for (let tick = 1; tick <= 9; tick++) {
      vm.runFor(1);
      expect(held.filter((c) => c.continued === 1)).to.have.length(100 * (tick + 1));
    }
    expect(held.every((c) => c.continued === 1)).to.equal(true);
    const effects = vm.effectsPerCallback.slice(before).filter((n) => n > 0);
    expect(effects).to.deep.equal(Array(10).fill(100));
    expect(vm.metric(RELEASED)).to.equal(1000);
    expect(vm.metric(HELD)).to.equal(0);
    // Nothing left: the old plugin context's timer is stopped on its next tick; the new one idles.
    vm.runFor(200);
    expect(vm.roots.get(g1.rootId)!.tickPeriodMs).to.equal(0);
    expect(vm.roots.get(g2.rootId)!.tickPeriodMs).to.equal(0);
  });

  it('also takes the next batch of a release when an upstream answers, at most 100 per callback', () => {
    const vm = new ProxyWasmHost();
    const g1 = vm.startPlugin(config(1, [host('demo')]));
    const held = Array.from({ length: 1000 }, () => vm.request(g1.rootId, { ':authority': 'demo.local' }));
    const before = vm.effectsPerCallback.length;
    vm.startPlugin(config(2, []));
    expect(held.filter((c) => c.continued === 1)).to.have.length(100);
    // Released requests' answers arrive before the next tick: each one starts the next batch, in hold order.
    for (let i = 0; i < 3; i++) expect(vm.response(held[i]!)).to.equal(Action.Continue);
    expect(held.filter((c) => c.continued === 1)).to.have.length(400);
    expect(held.slice(0, 400).every((c) => c.continued === 1)).to.equal(true);
    // Any upstream answer drives it, not only a released request's.
    const ready = vm.request(g1.rootId, { ':authority': 'ready.local' });
    vm.response(ready);
    expect(held.filter((c) => c.continued === 1)).to.have.length(500);
    vm.runFor(5);
    expect(held.every((c) => c.continued === 1)).to.equal(true);
    expect(vm.effectsPerCallback.slice(before).filter((n) => n > 0)).to.deep.equal(Array(10).fill(100));
    expect(vm.metric(RELEASED)).to.equal(1000);
  });

  it('does not take a batch in an answer Envoy made itself: that callback may be nested inside the last batch', () => {
    const vm = new ProxyWasmHost();
    const g1 = vm.startPlugin(config(1, [host('demo')]));
    const held = Array.from({ length: 300 }, () => vm.request(g1.rootId, { ':authority': 'demo.local' }));
    vm.startPlugin(config(2, []));
    // The router answered the resumed requests itself (no endpoint): their response callbacks run inside
    // Envoy's drain of the batch that resumed them, so taking another batch there would nest it deeper.
    for (const c of held.slice(0, 100)) vm.response(c, { ':status': '503' }, 'no_healthy_upstream');
    expect(held.filter((c) => c.continued === 1)).to.have.length(100);
    vm.runFor(2);
    expect(held.every((c) => c.continued === 1)).to.equal(true);
  });

  it('reads no property for a response while nothing is queued', () => {
    const vm = new ProxyWasmHost();
    const { rootId } = vm.startPlugin(config(1, [host('demo')]));
    vm.request(rootId, { ':authority': 'demo.local' });
    const ready = vm.request(rootId, { ':authority': 'ready.local' });
    const reads = vm.propertyReads.length;
    vm.response(ready);
    expect(vm.propertyReads.length).to.equal(reads);
  });

  it('counts only requests still there against the bound, and queues a second release behind the first', () => {
    const vm = new ProxyWasmHost();
    const g1 = vm.startPlugin(config(1, [host('demo'), host('other')]));
    const demo = Array.from({ length: 150 }, () => vm.request(g1.rootId, { ':authority': 'demo.local' }));
    const other = Array.from({ length: 150 }, () => vm.request(g1.rootId, { ':authority': 'other.local' }));
    const before = vm.effectsPerCallback.length;
    vm.startPlugin(config(2, [host('other')]));
    expect(demo.filter((c) => c.continued === 1)).to.have.length(100);
    // 20 queued requests go away before their turn: skipped, not counted against the next batch.
    const gone = demo.slice(100, 120);
    for (const c of gone) vm.finish(c);
    // A second release while the first is still paced: queued behind it, in the same bounded batches.
    vm.startPlugin(config(3, []));
    vm.runFor(5);
    expect([...demo.slice(0, 100), ...demo.slice(120)].every((c) => c.continued === 1)).to.equal(true);
    expect(gone.every((c) => c.continued === 0)).to.equal(true);
    expect(other.every((c) => c.continued === 1)).to.equal(true);
    expect(vm.effectsPerCallback.slice(before).filter((n) => n > 0)).to.deep.equal([100, 100, 80]);
    expect(vm.metric(RELEASED)).to.equal(280);
    expect(vm.metric(CANCELLED)).to.equal(20);
  });

  it('answers 250 simultaneous timeouts at most 100 per callback', () => {
    const vm = new ProxyWasmHost();
    const { rootId } = vm.startPlugin(config(1, [host('demo', { holdTimeoutMs: 100 })]));
    const held = Array.from({ length: 250 }, () => vm.request(rootId, { ':authority': 'demo.local' }));
    const before = vm.effectsPerCallback.length;
    vm.runFor(300);
    expect(held.every((c) => c.localReply?.statusCode === 503)).to.equal(true);
    const effects = vm.effectsPerCallback.slice(before).filter((n) => n > 0);
    expect(effects).to.deep.equal([100, 100, 50]);
    expect(vm.metric(TIMED_OUT)).to.equal(250);
  });

  it('does not trap on callbacks for context ids it never saw', () => {
    const vm = new ProxyWasmHost();
    const { rootId } = vm.startPlugin(config(1, [host('demo')]));
    expect(vm.callback(999, () => vm.raw.proxy_on_request_body(999, 10, 1))).to.equal(0);
    expect(vm.callback(999, () => vm.raw.proxy_on_request_trailers(999, 1))).to.equal(0);
    expect(vm.callback(999, () => vm.raw.proxy_on_done(999))).to.equal(1);
    vm.callback(999, () => vm.raw.proxy_on_delete(999));
    vm.callback(998, () => vm.raw.proxy_on_tick(998));
    vm.callback(998, () => vm.raw.proxy_on_http_call_response(998, 1, 0, 0, 0));
    // A request callback without a context_create is still decided normally.
    expect(vm.callback(997, () => vm.raw.proxy_on_request_headers(997, 0, 1))).to.equal(0);
    expect(vm.request(rootId, { ':authority': 'demo.local' }).lastAction).to.equal(4);
  });

  it('hands the timer to the newest remaining plugin context when the driving one is deleted', () => {
    const vm = new ProxyWasmHost();
    const g1 = vm.startPlugin(config(1, [host('demo', { holdTimeoutMs: 200 })]));
    const g2 = vm.startPlugin(config(2, [host('demo', { holdTimeoutMs: 200 })]));
    const ctx = vm.request(g2.rootId, { ':authority': 'demo.local' });
    vm.deleteRoot(g2.rootId);
    expect(vm.roots.get(g1.rootId)!.tickPeriodMs).to.equal(100);
    vm.runFor(400);
    expect(ctx.localReply?.statusCode).to.equal(503);
  });
});
