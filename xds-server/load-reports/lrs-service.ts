// Envoy's Load Reporting Service (LRS): each Envoy streams per-cluster request counts to us at a fixed
// interval. This is the idle signal: it comes from the data plane itself, sees requests in progress (so a
// long-lived stream keeps a host awake), and needs no polling of Envoy's admin port.
import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import type protobuf from 'protobufjs';
import type { Logger } from '../log.ts';
import type { XdsTls } from '../security/xds-tls.ts';
import { millisToDuration } from '../../snapshots/listeners.ts';
import { messageType } from '../protos/load.ts';
import { oversizedRefusal, type StreamGuard } from '../grpc-bounds.ts';

export interface ClusterLoad {
  cluster: string;
  /** Requests that reached an upstream host of this cluster during the interval. */
  issued: number;
  /** Upstream requests active at the moment of the report. */
  inProgress: number;
}

export interface LoadReport {
  nodeId: string;
  /** One LRS stream: Envoys that share a node id still report apart. */
  reporter: string;
  at: number;
  clusters: ClusterLoad[];
}

export interface LoadReportEvents {
  report: [LoadReport];
  /** The reporter (node id and stream) whose stream opened or closed; on open, also the node id. */
  'stream-open': [string, string];
  'stream-close': [string];
}

const SERVICE = '/envoy.service.load_stats.v3.LoadReportingService';

/**
 * The parts of a decoded LoadStatsRequest we read, as protobufjs decodes them (no toObject copy: a report
 * lists every cluster every second, and copying each with all its default fields made ~3 MiB of garbage per
 * second at 5,000 clusters). uint64 counters decode as a number or a Long.
 */
interface RawClusterStats {
  cluster_name?: string;
  upstream_locality_stats?: { total_issued_requests?: Counter; total_requests_in_progress?: Counter }[];
}
type Counter = number | { toNumber(): number } | null;

export class LoadReportingService extends EventEmitter<LoadReportEvents> {
  private requestType: protobuf.Type | undefined;
  private responseType: protobuf.Type | undefined;
  private nextStream = 1;
  private tls: { tls: XdsTls; clustersOf: (gateway: string) => ReadonlySet<string> } | undefined;

  constructor(
    private readonly intervalMs: number,
    private readonly log: Logger,
    /** Stream caps and request rate, shared with ADS (none in unit tests). */
    private readonly guard?: StreamGuard,
  ) {
    super();
  }

  /**
   * On an mTLS port: a stream needs a client certificate, and a gateway's certificate reports load only for
   * the clusters of that gateway's backends (the rest of its report is dropped).
   */
  requireClientCertificates(tls: XdsTls, clustersOf: (gateway: string) => ReadonlySet<string>): void {
    this.tls = { tls, clustersOf };
  }

  register(server: grpc.Server): void {
    this.requestType = messageType('envoy.service.load_stats.v3.LoadStatsRequest');
    this.responseType = messageType('envoy.service.load_stats.v3.LoadStatsResponse');
    const req = this.requestType;
    const res = this.responseType;
    const definition: grpc.ServiceDefinition = {
      StreamLoadStats: {
        path: `${SERVICE}/StreamLoadStats`,
        requestStream: true,
        responseStream: true,
        requestSerialize: (b: Buffer) => b,
        requestDeserialize: (b: Buffer) => req.decode(b),
        responseSerialize: (b: Buffer) => b,
        responseDeserialize: (b: Buffer) => b,
        originalName: 'streamLoadStats',
      },
    };
    server.addService(definition, {
      StreamLoadStats: (call: grpc.ServerDuplexStream<Record<string, unknown>, Buffer>) => {
        const secure = this.tls;
        const checked = secure?.tls.identityOf(call);
        if (secure && checked && !checked.ok) {
          secure.tls.refuse(checked.reason, { peer: call.getPeer(), stream: 'lrs', error: checked.message });
          call.emit('error', { code: grpc.status.UNAUTHENTICATED, details: checked.message });
          return;
        }
        const gateway = checked?.ok && checked.identity.kind === 'gateway' ? checked.identity.gateway : undefined;
        const streamId = this.nextStream++;
        let nodeId = '';
        let reporter = '';
        const guard = this.guard;
        const ticket = guard?.open(call.getPeer(), 'LRS');
        if (ticket && 'refused' in ticket) {
          call.emit('error', { code: grpc.status.RESOURCE_EXHAUSTED, details: ticket.refused });
          return;
        }
        let ended = false;
        const refuse = (details: string): void => {
          end(details);
        };
        call.on('data', (message: { node?: { id?: string }; cluster_stats?: RawClusterStats[] }) => {
          if (ended) return;
          if (ticket) {
            if (!guard!.allow(ticket)) {
              refuse(guard!.disconnected('rate_limited', `more than ${guard!.bounds.requestBurst} load reports at once or ${guard!.bounds.requestsPerSecond} per second on one stream`, { node: nodeId || message.node?.id, service: 'LRS' }));
              return;
            }
            const ok = guard!.identify(ticket, message.node?.id ?? '', 'LRS');
            if (ok !== true) {
              refuse(ok.refused);
              return;
            }
          }
          if (!nodeId) {
            nodeId = message.node?.id ?? '';
            reporter = `${nodeId}#${streamId}`;
            this.emit('stream-open', reporter, nodeId);
            // Ask for every cluster at our interval; Envoy then reports on that period until the stream ends.
            call.write(Buffer.from(res.encode(res.fromObject({ send_all_clusters: true, load_reporting_interval: millisToDuration(this.intervalMs) })).finish()));
            this.log.debug('load reports started', { node: nodeId, intervalMs: this.intervalMs });
          }
          const allowed = gateway !== undefined && secure ? secure.clustersOf(gateway) : undefined;
          const clusters = (message.cluster_stats ?? [])
            .map((c) => ({
              cluster: c.cluster_name ?? '',
              issued: sum(c.upstream_locality_stats, 'total_issued_requests'),
              inProgress: sum(c.upstream_locality_stats, 'total_requests_in_progress'),
            }))
            .filter((c) => allowed === undefined || allowed.has(c.cluster));
          this.emit('report', { nodeId, reporter, at: Date.now(), clusters });
        });
        /** Ends the stream: OK, or RESOURCE_EXHAUSTED with `refused` (a bound was crossed). */
        const end = (refused?: string): void => {
          if (ended) return;
          ended = true;
          if (ticket) guard!.close(ticket);
          if (reporter) this.emit('stream-close', reporter);
          if (refused !== undefined) call.emit('error', { code: grpc.status.RESOURCE_EXHAUSTED, details: refused });
          else call.end();
        };
        call.on('end', () => end());
        call.on('error', () => end());
        call.on('cancelled', () => {
          oversizedRefusal(guard, call, { node: nodeId, peer: call.getPeer(), service: 'LRS' });
          end();
        });
      },
    });
  }
}

function sum(stats: RawClusterStats['upstream_locality_stats'], field: 'total_issued_requests' | 'total_requests_in_progress'): number {
  let n = 0;
  for (const s of stats ?? []) {
    const v = s[field];
    n += typeof v === 'number' ? v : v ? v.toNumber() : 0;
  }
  return n;
}
