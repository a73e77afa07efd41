// Cross-VM behaviour through Envoy's process-wide shared data: the wake lease (contract `wake`) and the
// newest config published for VMs that never see its on_configure (a VM whose code was replaced).
// Two ProxyWasmHost instances sharing one store, stats and clock stand for two Envoy workers.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { Action, CLUSTER_NAME, MonotonicClock, ProxyWasmHost, SharedDataStore, StatsStore } from '../support/proxy-wasm-host/index.ts';
import { HELD, RELEASED, WAKE_CALLS, config, host, hostHeld, wake } from './fixtures.ts';

function twoWorkers() {
  const shared = { sharedData: new SharedDataStore(), stats: new StatsStore(), clock: new MonotonicClock() };
  return { a: new ProxyWasmHost(shared), b: new ProxyWasmHost(shared), ...shared };
}

describe('wake calls (shared-data lease)', () => {
  it('sends exactly one POST when two workers hold the first request for the same host', () => {
    const { a, b, stats } = twoWorkers();
    const cfg = config(1, [host('demo')], wake({ leaseMs: 5000, timeoutMs: 2000 }));
    const ra = a.startPlugin(cfg);
    const rb = b.startPlugin(cfg);
    a.request(ra.rootId, { ':authority': 'demo.local' });
    b.request(rb.rootId, { ':authority': 'demo.local' });
    a.request(ra.rootId, { ':authority': 'demo.local' });
    expect(a.httpCalls.length + b.httpCalls.length).to.equal(1);
    const call = a.httpCalls[0]!;
    expect(call.upstream).to.equal('scale_to_zero_control_plane');
    expect(call.timeoutMs).to.equal(2000);
    expect(call.headers).to.deep.include.members([
      [':method', 'POST'], [':path', '/v1/wake/demo'], [':authority', 'scale-to-zero-control-plane'],
    ]);
    // Made on behalf of the plugin context, whose lifetime outlasts any one request.
    expect(call.contextId).to.equal(ra.rootId);
    expect(stats.value(WAKE_CALLS)).to.equal(1);
  });

  it('retries once per lease while requests are still held, whichever worker wins', () => {
    const { a, b, stats } = twoWorkers();
    const cfg = config(1, [host('demo', { holdTimeoutMs: 60_000 })], wake({ leaseMs: 1000 }));
    const ra = a.startPlugin(cfg);
    const rb = b.startPlugin(cfg);
    a.request(ra.rootId, { ':authority': 'demo.local' });
    b.request(rb.rootId, { ':authority': 'demo.local' });
    a.httpCallResponse(a.httpCalls[0]!, 503);
    // a.runFor moves the shared clock and fires a's ticks; b's driver tick is fired by hand after it.
    for (let i = 0; i < 35; i++) {
      a.runFor(100);
      b.tick(rb.rootId);
    }
    // 3.5 s of holding with a 1 s lease: the first call plus three retries, never two per lease.
    expect(a.httpCalls.length + b.httpCalls.length).to.equal(4);
    expect(stats.value(WAKE_CALLS)).to.equal(4);
  });

  it('stops calling once the host is released', () => {
    const { a } = twoWorkers();
    const ra = a.startPlugin(config(1, [host('demo')], wake({ leaseMs: 100 })));
    a.request(ra.rootId, { ':authority': 'demo.local' });
    a.startPlugin(config(2, [], wake({ leaseMs: 100 })));
    a.runFor(1000);
    expect(a.httpCalls).to.have.length(1);
  });

  it('does not call when the config has no wake section', () => {
    const { a } = twoWorkers();
    const ra = a.startPlugin(config(1, [host('demo')]));
    a.request(ra.rootId, { ':authority': 'demo.local' });
    a.runFor(1000);
    expect(a.httpCalls).to.have.length(0);
  });

  it('takes over a lease that holds an unreadable value instead of waiting forever', () => {
    const { a, sharedData } = twoWorkers();
    sharedData.set('scale_to_zero.wake.demo', Buffer.from('garbage'), 0);
    const ra = a.startPlugin(config(1, [host('demo')], wake()));
    a.request(ra.rootId, { ':authority': 'demo.local' });
    expect(a.httpCalls).to.have.length(1);
  });

  it('logs a failed or non-2xx wake reply without trapping', () => {
    const { a } = twoWorkers();
    const ra = a.startPlugin(config(1, [host('demo')], wake()));
    a.request(ra.rootId, { ':authority': 'demo.local' });
    a.httpCallResponse(a.httpCalls[0]!);
    a.httpCallResponse(a.httpCalls[0]!, 500);
    expect(a.logText()).to.contain('failed').and.contain('answered 500');
  });
});

describe('config published in shared data', () => {
  it('publishes the accepted config with its generation, and never moves it backwards', () => {
    const { a, b, sharedData } = twoWorkers();
    a.startPlugin(config(7, [host('demo')]));
    expect(sharedData.getText('scale_to_zero.config.generation')).to.equal('7');
    expect(sharedData.getText('scale_to_zero.config')).to.match(/^7\n\{/);
    // e.g. Envoy's canary VM or a slower worker configuring an older generation afterwards.
    b.startPlugin(config(6, []));
    expect(sharedData.getText('scale_to_zero.config.generation')).to.equal('7');
    expect(sharedData.getText('scale_to_zero.config')).to.match(/^7\n/);
    // A rejected config is not published.
    b.startPlugin('{"generation":9}');
    expect(sharedData.getText('scale_to_zero.config.generation')).to.equal('7');
  });

  it('releases, on its timeout tick, what an old VM holds when shared data has a newer generation', () => {
    const { a: oldVm, b: newVm } = twoWorkers();
    const r = oldVm.startPlugin(config(1, [host('demo'), host('other')]));
    const demo = oldVm.request(r.rootId, { ':authority': 'demo.local' });
    const other = oldVm.request(r.rootId, { ':authority': 'other.local' });
    // The new VM (new code) gets generation 2; the old VM never sees its on_configure.
    newVm.startPlugin(config(2, [host('other')]));
    expect(demo.continued).to.equal(0);
    oldVm.runFor(150);
    expect(demo.continued).to.equal(1);
    expect(other.continued).to.equal(0);
    expect(oldVm.metric(RELEASED)).to.equal(1);
    expect(oldVm.metric(HELD)).to.equal(1);
    // From then on the old VM decides new requests against generation 2 as well.
    expect(oldVm.request(r.rootId, { ':authority': 'demo.local' }).lastAction).to.equal(Action.Continue);
  });

  it('ignores a shared config that is not newer, and one it cannot parse', () => {
    const { a, sharedData } = twoWorkers();
    const r = a.startPlugin(config(3, [host('demo')]));
    const ctx = a.request(r.rootId, { ':authority': 'demo.local' });
    sharedData.set('scale_to_zero.config', Buffer.from('4\n{"generation":4,"hosts":"broken"}'), 0);
    sharedData.set('scale_to_zero.config.generation', Buffer.from('4'), 0);
    a.runFor(500);
    expect(ctx.continued).to.equal(0);
    expect(a.logText()).to.contain('ignoring unreadable config generation 4');
  });
});

// The record version 1 of docs/filter-contract.md "Shared data", frozen: these bytes were written by the
// filter.wasm built before any later change to the record (commit 08a8913) for the configuration they hold,
// with one request held for "demo" at the test host's clock start. Never regenerate them: a build that cannot
// read them, or writes something else for the same configuration, breaks code upgrades (a VM of the older
// build reads what the newer one writes, and the other way round).
describe('shared-data record version 1 (frozen fixture)', () => {
  const FIXTURE = fileURLToPath(new URL('./fixtures/shared-data-v1/', import.meta.url));
  const frozen = (key: string): Buffer => readFileSync(path.join(FIXTURE, key));
  const frozenConfigJson = (): string => {
    const text = frozen('scale_to_zero.config').toString('utf8');
    return text.slice(text.indexOf('\n') + 1);
  };

  it('the current reader applies a frozen record: releases what it no longer lists, matches its domains and clusters', () => {
    const { a, sharedData } = twoWorkers();
    const r = a.startPlugin(config(1, [host('demo'), host('old')]));
    const old = a.request(r.rootId, { ':authority': 'old.local' });
    const demo = a.request(r.rootId, { ':authority': 'demo.local' });
    for (const key of ['scale_to_zero.config', 'scale_to_zero.config.generation']) sharedData.set(key, frozen(key), 0);
    a.runFor(250);
    expect(a.logText()).to.contain('applied generation 1764500000123 listing 2 host(s)');
    expect(old.continued).to.equal(1);
    expect(demo.continued).to.equal(0);
    expect(a.request(r.rootId, { ':authority': 'x.demo.example' }).lastAction).to.equal(Action.StopAllIterationAndWatermark);
    const shop = a.request(r.rootId, { ':authority': 'shop.invalid' }, { properties: { [CLUSTER_NAME]: 'shop_v2' } });
    expect(shop.lastAction).to.equal(Action.StopAllIterationAndWatermark);
    expect(a.metric(hostHeld('shop'))).to.equal(1);
  });

  it('the current reader honours a frozen wake lease until it expires', () => {
    const { a, sharedData, clock } = twoWorkers();
    sharedData.set('scale_to_zero.wake.demo', frozen('scale_to_zero.wake.demo'), 0);
    const lease = Number(frozen('scale_to_zero.wake.demo').toString('utf8'));
    expect(lease).to.be.greaterThan(clock.nowMs);
    const r = a.startPlugin(frozenConfigJson());
    a.request(r.rootId, { ':authority': 'demo.local' });
    expect(a.httpCalls).to.have.length(0);
    a.runFor(lease - clock.nowMs + 150);
    expect(a.httpCalls).to.have.length(1);
  });

  it('the current writer writes the frozen bytes for the same configuration, with or without a failed wake or heldHeader', () => {
    const cfg = JSON.parse(frozenConfigJson()) as { hosts: { failure?: unknown }[] };
    const withFailure = { ...cfg, hosts: cfg.hosts.map((h, i) => (i === 0 ? { ...h, failure: { reason: 'boom "quoted"', retryAfterSeconds: 9 } } : h)) };
    const withHeldHeader = { ...cfg, hosts: cfg.hosts.map((h) => ({ ...h, heldHeader: true })) };
    for (const text of [frozenConfigJson(), JSON.stringify(withFailure), JSON.stringify(withHeldHeader)]) {
      const { a, sharedData } = twoWorkers();
      const r = a.startPlugin(text);
      expect(r.ok, a.logText()).to.equal(true);
      if (!text.includes('failure')) a.request(r.rootId, { ':authority': 'demo.local' });
      expect(sharedData.get('scale_to_zero.config')!.value.equals(frozen('scale_to_zero.config')), text).to.equal(true);
      expect(sharedData.get('scale_to_zero.config.generation')!.value.equals(frozen('scale_to_zero.config.generation'))).to.equal(true);
      if (!text.includes('failure')) expect(sharedData.get('scale_to_zero.wake.demo')!.value.equals(frozen('scale_to_zero.wake.demo'))).to.equal(true);
    }
  });
});
