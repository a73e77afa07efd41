// docs/filter-contract.md "Request handling", cluster match: when no listed domain matches the
// :authority and the applied config lists clusters, the filter reads the property xds.cluster_name
// (the upstream cluster Envoy's route picked, e.g. one side of a weighted split) and holds the request
// for the entry listing that cluster, exactly as for a domain hit. Driven through the real filter.wasm.
import { expect } from 'chai';
import { Action, CLUSTER_NAME, ProxyWasmHost, propertyPath, type HttpContext } from '../support/proxy-wasm-host/index.ts';
import {
  HELD, HOLD_TIME_MS, OVERFLOWED, RELEASED, TIMED_OUT, WAKE_CALLS, config, host, hostHeld, wake,
} from './fixtures.ts';

/** A request whose route picked `cluster` (undefined: Envoy has no cluster for it, NotFound). */
function routed(vm: ProxyWasmHost, rootId: number, authority: string, cluster?: string, extra: Record<string, string> = {}): HttpContext {
  const properties = cluster === undefined ? {} : { [CLUSTER_NAME]: cluster };
  return vm.request(rootId, { ':authority': authority, ...extra }, { properties });
}

function header(ctx: HttpContext, name: string): string | undefined {
  return ctx.localReply?.headers.find(([k]) => k === name)?.[1];
}

/** A split route: cold (scaled to zero, listed by cluster) and warm (not listed), same authority. */
const cold = (overrides = {}) => host('cold', { domains: [], clusters: ['cold_cluster'], ...overrides });

describe('cluster matching (property xds.cluster_name)', () => {
  it('holds a request whose authority matches nothing but whose cluster is listed', () => {
    const vm = new ProxyWasmHost();
    const { rootId } = vm.startPlugin(config(1, [cold()]));
    const ctx = routed(vm, rootId, 'app.example.com', 'cold_cluster', { ':method': 'POST' });
    expect(ctx.lastAction).to.equal(Action.StopAllIterationAndWatermark);
    expect(vm.requestBody(ctx, 100, true)).to.equal(Action.StopIterationAndWatermark);
    expect(vm.metric(HELD)).to.equal(1);
    expect(vm.metric(hostHeld('cold'))).to.equal(1);
    expect(vm.roots.get(rootId)!.tickPeriodMs).to.equal(100);
    // The path went out as the ABI wants it: segments "xds" and "cluster_name" joined by a NUL byte.
    expect(vm.propertyReads).to.deep.equal([{ contextId: ctx.id, path: ['xds', 'cluster_name'], status: 0 }]);
  });

  it('passes the warm half of a split: same authority, a cluster that is not listed', () => {
    const vm = new ProxyWasmHost();
    const { rootId } = vm.startPlugin(config(1, [cold()]));
    const logsBefore = vm.logs.length;
    const warm = routed(vm, rootId, 'app.example.com', 'warm_cluster');
    expect(warm.lastAction).to.equal(Action.Continue);
    expect(vm.requestBody(warm, 10, true)).to.equal(Action.Continue);
    vm.finish(warm);
    expect(warm.continued).to.equal(0);
    expect(warm.localReply).to.equal(undefined);
    expect(vm.metric(HELD)).to.equal(0);
    expect(vm.roots.get(rootId)!.tickPeriodMs).to.equal(0);
    expect(vm.logs.length).to.equal(logsBefore);
    expect(vm.propertyReads).to.have.length(1);
  });

  it('passes when Envoy has no cluster for the request (property not found)', () => {
    const vm = new ProxyWasmHost();
    const { rootId } = vm.startPlugin(config(1, [cold()]));
    const ctx = routed(vm, rootId, 'app.example.com');
    expect(ctx.lastAction).to.equal(Action.Continue);
    expect(vm.propertyReads.map((r) => r.status)).to.deep.equal([1]);
    expect(vm.metric(HELD)).to.equal(0);
  });

  it('matches cluster names exactly: case, prefixes and suffixes do not match', () => {
    const vm = new ProxyWasmHost();
    const { rootId } = vm.startPlugin(config(1, [cold()]));
    for (const name of ['Cold_cluster', 'cold_cluste', 'cold_cluster2', 'xcold_cluster', '', 'cold_cluster\0']) {
      expect(routed(vm, rootId, 'app.example.com', name).lastAction, JSON.stringify(name)).to.equal(Action.Continue);
    }
    expect(routed(vm, rootId, 'app.example.com', 'cold_cluster').lastAction).to.equal(Action.StopAllIterationAndWatermark);
  });

  it('holds a request with no :authority at all by its cluster', () => {
    const vm = new ProxyWasmHost();
    const { rootId } = vm.startPlugin(config(1, [cold()]));
    const ctx = vm.request(rootId, { ':path': '/' }, { properties: { [CLUSTER_NAME]: 'cold_cluster' } });
    expect(ctx.lastAction).to.equal(Action.StopAllIterationAndWatermark);
  });

  it('reads only the xds.cluster_name property (not the top-level cluster_name one)', () => {
    const vm = new ProxyWasmHost();
    const { rootId } = vm.startPlugin(config(1, [cold()]));
    const ctx = vm.request(rootId, { ':authority': 'app.example.com' }, { properties: { [propertyPath('cluster_name')]: 'cold_cluster' } });
    expect(ctx.lastAction).to.equal(Action.Continue);
  });

  it('picks the entry that lists the cluster among several, each with its own metrics', () => {
    const vm = new ProxyWasmHost();
    const { rootId } = vm.startPlugin(config(1, [
      host('a', { domains: [], clusters: ['a_v1', 'a_v2'] }),
      host('b', { clusters: ['b_v1'] }),
    ]));
    routed(vm, rootId, 'x.example', 'a_v2');
    routed(vm, rootId, 'x.example', 'b_v1');
    routed(vm, rootId, 'x.example', 'a_v1');
    expect(vm.metric(hostHeld('a'))).to.equal(2);
    expect(vm.metric(hostHeld('b'))).to.equal(1);
    expect(vm.metric(HELD)).to.equal(3);
  });

  it('a domain match wins over a cluster match, and then the cluster is not even read', () => {
    const vm = new ProxyWasmHost();
    const { rootId } = vm.startPlugin(config(1, [
      host('by-domain', { domains: ['app.example.com'] }),
      host('by-cluster', { domains: [], clusters: ['cold_cluster'] }),
    ]));
    const ctx = routed(vm, rootId, 'App.Example.com:8443', 'cold_cluster');
    expect(ctx.lastAction).to.equal(Action.StopAllIterationAndWatermark);
    expect(vm.metric(hostHeld('by-domain'))).to.equal(1);
    expect(vm.metric(hostHeld('by-cluster'))).to.equal(undefined);
    expect(vm.propertyReads).to.deep.equal([]);
  });

  it('never reads the property when the config lists no cluster (file mode pays nothing)', () => {
    const vm = new ProxyWasmHost();
    const { rootId } = vm.startPlugin(config(1, [host('demo', { domains: ['demo.local', '*.demo.example'] }), host('e', { clusters: [] })]));
    const requests = [
      routed(vm, rootId, 'demo.local', 'demo_cluster'),
      routed(vm, rootId, 'ready.local', 'demo_cluster'),
      routed(vm, rootId, 'other.example', 'cold_cluster'),
      vm.request(rootId, { ':path': '/' }, { properties: { [CLUSTER_NAME]: 'cold_cluster' } }),
    ];
    expect(requests.map((c) => c.lastAction)).to.deep.equal([4, 0, 0, 0]);
    expect(vm.propertyReads).to.deep.equal([]);
  });

  it('stops reading the property once a newer config lists no cluster any more', () => {
    const vm = new ProxyWasmHost();
    const g1 = vm.startPlugin(config(1, [cold()]));
    routed(vm, g1.rootId, 'x.example', 'warm_cluster');
    expect(vm.propertyReads).to.have.length(1);
    const g2 = vm.startPlugin(config(2, [host('demo')]));
    routed(vm, g2.rootId, 'x.example', 'cold_cluster');
    routed(vm, g1.rootId, 'x.example', 'cold_cluster');
    expect(vm.propertyReads).to.have.length(1);
  });

  it('releases a cluster-held request when a newer config no longer lists the entry', () => {
    const vm = new ProxyWasmHost();
    const g1 = vm.startPlugin(config(1, [cold(), host('other', { domains: [], clusters: ['other_cluster'] })]));
    const a = routed(vm, g1.rootId, 'app.example.com', 'cold_cluster');
    const b = routed(vm, g1.rootId, 'app.example.com', 'other_cluster');
    vm.clock.advance(40);
    const g2 = vm.startPlugin(config(2, [host('other', { domains: [], clusters: ['other_cluster'] })]));
    expect(g2.ok).to.equal(true);
    expect(a.continued).to.equal(1);
    expect(b.continued).to.equal(0);
    expect(vm.metric(RELEASED)).to.equal(1);
    expect(vm.metric(hostHeld('cold'))).to.equal(0);
    expect(vm.metric(hostHeld('other'))).to.equal(1);
    expect(vm.stats.samples(HOLD_TIME_MS)).to.deep.equal([40]);
    expect(vm.requestBody(a, 10, true)).to.equal(Action.Continue);
    // And the next request for that cluster passes.
    expect(routed(vm, g2.rootId, 'app.example.com', 'cold_cluster').lastAction).to.equal(Action.Continue);
  });

  it('keeps holding when the newer config lists the entry under a domain instead of the cluster (names decide)', () => {
    const vm = new ProxyWasmHost();
    const g1 = vm.startPlugin(config(1, [cold()]));
    const a = routed(vm, g1.rootId, 'app.example.com', 'cold_cluster');
    vm.startPlugin(config(2, [host('cold', { domains: ['cold.local'] })]));
    expect(a.continued).to.equal(0);
    expect(vm.metric(HELD)).to.equal(1);
    vm.startPlugin(config(3, []));
    expect(a.continued).to.equal(1);
  });

  it('times out a cluster-held request with the entry name in the 503 (and grpc-status 14 for gRPC)', () => {
    const vm = new ProxyWasmHost();
    const { rootId } = vm.startPlugin(config(1, [cold({ holdTimeoutMs: 1000, retryAfterSeconds: 9 })]));
    const ctx = routed(vm, rootId, 'app.example.com', 'cold_cluster');
    const grpc = routed(vm, rootId, 'app.example.com', 'cold_cluster', { 'content-type': 'application/grpc' });
    vm.runFor(900);
    expect(ctx.localReply).to.equal(undefined);
    vm.runFor(300);
    expect(ctx.localReply?.statusCode).to.equal(503);
    expect(header(ctx, 'x-scale-to-zero')).to.equal('timeout');
    expect(header(ctx, 'retry-after')).to.equal('9');
    expect(JSON.parse(ctx.localReply!.body)).to.include({ error: 'hold_timeout', host: 'cold' });
    expect(grpc.localReply?.grpcStatus).to.equal(14);
    expect(vm.metric(TIMED_OUT)).to.equal(2);
    expect(vm.metric(HELD)).to.equal(0);
    expect(vm.metric(hostHeld('cold'))).to.equal(0);
  });

  it('answers overflow at once when the entry already holds maxHeld on this worker, domain and cluster hits counted together', () => {
    const vm = new ProxyWasmHost();
    const { rootId } = vm.startPlugin(config(1, [host('cold', { domains: ['cold.local'], clusters: ['cold_cluster'], maxHeld: 2 })]));
    const held = [routed(vm, rootId, 'cold.local'), routed(vm, rootId, 'app.example.com', 'cold_cluster')];
    const third = routed(vm, rootId, 'app.example.com', 'cold_cluster');
    expect(held.map((c) => c.lastAction)).to.deep.equal([4, 4]);
    expect(third.lastAction).to.equal(Action.StopIteration);
    expect(third.localReply?.statusCode).to.equal(503);
    expect(header(third, 'x-scale-to-zero')).to.equal('overflow');
    expect(JSON.parse(third.localReply!.body)).to.include({ error: 'hold_overflow', host: 'cold' });
    expect(vm.metric(OVERFLOWED)).to.equal(1);
    expect(vm.metric(HELD)).to.equal(2);
  });

  it('sends the wake call for the entry name on the first cluster-held request', () => {
    const vm = new ProxyWasmHost();
    const { rootId } = vm.startPlugin(config(1, [cold()], wake()));
    routed(vm, rootId, 'app.example.com', 'cold_cluster');
    routed(vm, rootId, 'app.example.com', 'cold_cluster');
    expect(vm.httpCalls).to.have.length(1);
    expect(vm.httpCalls[0]!.headers).to.deep.include([':path', '/v1/wake/cold']);
    expect(vm.metric(WAKE_CALLS)).to.equal(1);
  });

  it('forgets a cluster-held request whose client went away', () => {
    const vm = new ProxyWasmHost();
    const { rootId } = vm.startPlugin(config(1, [cold()]));
    const ctx = routed(vm, rootId, 'app.example.com', 'cold_cluster');
    vm.finish(ctx);
    expect(vm.metric(HELD)).to.equal(0);
    expect(vm.metric('scale_to_zero.cancelled')).to.equal(1);
    vm.startPlugin(config(2, []));
    expect(ctx.continued + ctx.continueFailures).to.equal(0);
  });
});
