// What the filter tells operators: the held-time response header of a released request (per host,
// contract "Held-time header"), and the held count its wake calls carry (contract "Wake calls").
import { expect } from 'chai';
import { ProxyWasmHost, type HttpContext } from '../support/proxy-wasm-host/index.ts';
import { MonotonicClock, SharedDataStore, StatsStore } from '../support/proxy-wasm-host/shared-state.ts';
import { config, host, wake } from './fixtures.ts';

const heldMs = (ctx: HttpContext): string | undefined => ctx.responseHeaders.find(([k]) => k === 'x-scale-to-zero-held-ms')?.[1];

describe('held-time response header', () => {
  it('adds how long a released request was held to its response, for a host with heldHeader', () => {
    const vm = new ProxyWasmHost();
    const { rootId } = vm.startPlugin(config(1, [host('demo', { heldHeader: true })]));
    const ctx = vm.request(rootId, { ':authority': 'demo.local' });
    vm.clock.advance(1234);
    vm.startPlugin(config(2, []));
    expect(ctx.continued).to.equal(1);
    vm.response(ctx, { ':status': '200', 'content-type': 'text/plain' });
    expect(heldMs(ctx)).to.equal('1234');
    expect(ctx.responseHeaders.filter(([k]) => k === 'x-scale-to-zero-held-ms')).to.have.length(1);
  });

  it('goes on the answering request\'s own response when that answer also takes the next batch of a release', () => {
    const vm = new ProxyWasmHost();
    const { rootId } = vm.startPlugin(config(1, [host('demo', { heldHeader: true })]));
    const held = Array.from({ length: 250 }, () => vm.request(rootId, { ':authority': 'demo.local' }));
    vm.clock.advance(40);
    vm.startPlugin(config(2, []));
    vm.response(held[0]!);
    // The batch switched the effective context to each resumed stream; the header still lands on held[0].
    expect(held.filter((c) => c.continued === 1)).to.have.length(200);
    expect(heldMs(held[0]!)).to.equal('40');
    expect(held.slice(1).every((c) => heldMs(c) === undefined)).to.equal(true);
  });

  it('is off by default, and never on a request that was not held', () => {
    const vm = new ProxyWasmHost();
    const { rootId } = vm.startPlugin(config(1, [host('demo'), host('other', { heldHeader: true })]));
    const held = vm.request(rootId, { ':authority': 'demo.local' });
    vm.clock.advance(50);
    vm.startPlugin(config(2, [host('other', { heldHeader: true })]));
    vm.response(held);
    expect(heldMs(held)).to.equal(undefined);
    const passing = vm.request(vm.startPlugin(config(3, [])).rootId, { ':authority': 'other.local' });
    vm.response(passing);
    expect(heldMs(passing)).to.equal(undefined);
  });

  it('refuses a heldHeader that is not a boolean', () => {
    const vm = new ProxyWasmHost();
    const bad = { ...config(1, [host('demo')]) } as unknown as { hosts: Record<string, unknown>[] };
    bad.hosts[0]!.heldHeader = 'yes';
    expect(vm.startPlugin(bad).ok).to.equal(false);
    expect(vm.logText()).to.include('heldHeader').and.include('must be a boolean');
  });
});

describe('held count in wake calls', () => {
  it('carries the Envoy-wide held count of the host and a per-process Envoy id shared by the workers', () => {
    const shared = { sharedData: new SharedDataStore(), stats: new StatsStore(), clock: new MonotonicClock() };
    const a = new ProxyWasmHost(shared);
    const b = new ProxyWasmHost(shared);
    const cfg = config(1, [host('demo', { holdTimeoutMs: 60_000 })], wake({ leaseMs: 1000 }));
    const ra = a.startPlugin(cfg);
    const rb = b.startPlugin(cfg);
    a.request(ra.rootId, { ':authority': 'demo.local' });
    b.request(rb.rootId, { ':authority': 'demo.local' });
    b.request(rb.rootId, { ':authority': 'demo.local' });
    const first = [...a.httpCalls, ...b.httpCalls];
    expect(first).to.have.length(1);
    const value = (call: (typeof first)[number], name: string): string | undefined => call.headers.find(([k]) => k === name)?.[1];
    expect(value(first[0]!, 'x-scale-to-zero-held')).to.equal('1');
    const id = value(first[0]!, 'x-scale-to-zero-envoy');
    expect(id).to.match(/^envoy-[0-9a-f]+$/);
    for (let i = 0; i < 11; i++) {
      a.runFor(100);
      b.tick(rb.rootId);
    }
    const calls = [...a.httpCalls, ...b.httpCalls];
    expect(calls).to.have.length(2);
    const retry = calls.find((c) => c !== first[0])!;
    // Both workers' requests: the per-host gauge is one stat for the whole Envoy.
    expect(value(retry, 'x-scale-to-zero-held')).to.equal('3');
    expect(value(retry, 'x-scale-to-zero-envoy'), 'the same id from either worker').to.equal(id);
  });
});
