// The load report reader takes only the node id and each active cluster's counts from the bytes: it must agree
// with a full protobufjs decode of the same report (summed the way the control plane reads it, idle clusters
// left out), whatever else the report carries.
import { expect } from 'chai';
import protobuf from 'protobufjs';
import { decodeLoadStats } from '../../../xds-server/load-reports/load-stats-decode.ts';
import { messageType } from '../../../xds-server/protos/load.ts';

const request = messageType('envoy.service.load_stats.v3.LoadStatsRequest');

function encode(message: Record<string, unknown>): Uint8Array {
  return request.encode(request.fromObject(message)).finish();
}

// protobufjs' own Long class (from the "long" package it depends on), for counters above 2^32.
const Long = protobuf.util.Long as unknown as { fromString(s: string, unsigned: boolean): object; fromNumber(n: number, unsigned: boolean): object };
type Counter = number | { toNumber(): number } | null | undefined;
const num = (v: Counter): number => (v === null || v === undefined ? 0 : typeof v === 'number' ? v : v.toNumber());

/** protobufjs' decode, summed per cluster over its localities; clusters with nothing issued or in progress left out. */
function reference(bytes: Uint8Array): { nodeId: string | undefined; clusters: { cluster: string; issued: number; inProgress: number }[] } {
  const m = request.decode(bytes) as unknown as {
    node?: { id?: string };
    cluster_stats?: { cluster_name?: string; upstream_locality_stats?: { total_issued_requests?: Counter; total_requests_in_progress?: Counter }[] }[];
  };
  return {
    nodeId: m.node ? m.node.id : undefined,
    clusters: (m.cluster_stats ?? []).map((c) => ({
      cluster: c.cluster_name ?? '',
      issued: (c.upstream_locality_stats ?? []).reduce((n, s) => n + num(s.total_issued_requests), 0),
      inProgress: (c.upstream_locality_stats ?? []).reduce((n, s) => n + num(s.total_requests_in_progress), 0),
    })).filter((c) => c.issued > 0 || c.inProgress > 0),
  };
}

describe('load report reader', () => {
  it('reads what a full decode reads: node id, every cluster, counts summed over localities', () => {
    const bytes = encode({
      node: {
        id: 'envoy-1',
        cluster: 'gateway',
        metadata: { fields: { 'scaletozero.dev/gateway': { string_value: 'ns/gw' } } },
        user_agent_name: 'envoy',
        extensions: Array.from({ length: 50 }, (_, i) => ({ name: `envoy.ext.${i}`, category: 'envoy.filters.http', type_urls: [`type.googleapis.com/x.${i}`] })),
      },
      cluster_stats: [
        {
          cluster_name: 'host_a',
          upstream_locality_stats: [
            { locality: { region: 'r1' }, total_successful_requests: 7, total_requests_in_progress: 3, total_error_requests: 1, total_issued_requests: 11, priority: 1 },
            { locality: { region: 'r2' }, total_requests_in_progress: 2, total_issued_requests: Long.fromString('1099511627776', true) },
          ],
          total_dropped_requests: 4,
          dropped_requests: [{ category: 'overload', dropped_count: 4 }],
          load_report_interval: { seconds: 1, nanos: 2000 },
        },
        { cluster_name: 'host_b', load_report_interval: { seconds: 1 } },
        { cluster_name: 'host_c', upstream_locality_stats: [{ total_issued_requests: 0, total_requests_in_progress: 0 }], cluster_service_name: 'svc' },
        { cluster_name: 'hôst_ü_雪', upstream_locality_stats: [{ total_requests_in_progress: 1 }] },
      ],
    });
    const decoded = decodeLoadStats(bytes);
    expect(decoded).to.deep.equal(reference(bytes));
    expect(decoded.clusters[0]).to.deep.equal({ cluster: 'host_a', issued: 11 + 1099511627776, inProgress: 5 });
    // host_b and host_c had nothing issued or in progress.
    expect(decoded.clusters.map((c) => c.cluster)).to.deep.equal(['host_a', 'hôst_ü_雪']);
  });

  it('reads a report without a node, and one without clusters', () => {
    for (const message of [{ cluster_stats: [{ cluster_name: 'x', upstream_locality_stats: [{ total_issued_requests: 2 }] }] }, { node: { id: 'n' } }, {}]) {
      const bytes = encode(message);
      expect(decodeLoadStats(bytes), JSON.stringify(message)).to.deep.equal(reference(bytes));
    }
  });

  it('agrees with a full decode over many generated reports', () => {
    let seed = 12345;
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    for (let i = 0; i < 200; i++) {
      const message = {
        ...(random(4) > 0 ? { node: { id: `node-${random(100)}`, extensions: [{ name: 'e', category: 'c' }] } } : {}),
        cluster_stats: Array.from({ length: random(6) }, (_, c) => ({
          cluster_name: `host_${c}_${random(1000)}`,
          upstream_locality_stats: Array.from({ length: random(3) }, () => ({
            total_issued_requests: random(3) === 0 ? 0 : random(1_000_000),
            total_requests_in_progress: random(5) === 0 ? Long.fromNumber(random(2 ** 30) * 1024, true) : random(2) === 0 ? 0 : random(300),
            total_successful_requests: random(10),
            upstream_endpoint_stats: random(2) ? [{ total_issued_requests: 99, total_requests_in_progress: 98 }] : [],
          })),
        })),
      };
      const bytes = encode(message);
      expect(decodeLoadStats(bytes), JSON.stringify(message)).to.deep.equal(reference(bytes));
    }
  });

  it('refuses a report cut short', () => {
    const bytes = encode({ node: { id: 'n' }, cluster_stats: [{ cluster_name: 'host_a', upstream_locality_stats: [{ total_issued_requests: 300 }] }] });
    for (const cut of [bytes.length - 1, bytes.length - 3, 8]) expect(() => decodeLoadStats(bytes.subarray(0, cut)), `cut at ${cut}`).to.throw(RangeError);
  });
});
