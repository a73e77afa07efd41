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
import { decodeLoadStats, type DecodedLoadStats } from './load-stats-decode.ts';

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
  /**
   * The clusters that had a request issued or in progress; an absent cluster had neither (Envoy lists every
   * cluster in every report; the idle ones are left out when it is read, load-stats-decode.ts).
   */
  clusters: ClusterLoad[];
}

export interface LoadReportEvents {
  report: [LoadReport];
  /** The reporter (node id and stream) whose stream opened or closed; on open, also the node id. */
  'stream-open': [string, string];
  'stream-close': [string];
}

const SERVICE = '/envoy.service.load_stats.v3.LoadReportingService';

export class LoadReportingService extends EventEmitter<LoadReportEvents> {
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
    this.responseType = messageType('envoy.service.load_stats.v3.LoadStatsResponse');
    const res = this.responseType;
    const definition: grpc.ServiceDefinition = {
      StreamLoadStats: {
        path: `${SERVICE}/StreamLoadStats`,
        requestStream: true,
        responseStream: true,
        requestSerialize: (b: Buffer) => b,
        // Only the node id and each cluster's counts, read from the bytes (load-stats-decode.ts).
        requestDeserialize: (b: Buffer) => decodeLoadStats(b),
        responseSerialize: (b: Buffer) => b,
        responseDeserialize: (b: Buffer) => b,
        originalName: 'streamLoadStats',
      },
    };
    server.addService(definition, {
      StreamLoadStats: (call: grpc.ServerDuplexStream<DecodedLoadStats, Buffer>) => {
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
        call.on('data', (message: DecodedLoadStats) => {
          if (ended) return;
          if (ticket) {
            if (!guard!.allow(ticket)) {
              refuse(guard!.disconnected('rate_limited', `more than ${guard!.bounds.requestBurst} load reports at once or ${guard!.bounds.requestsPerSecond} per second on one stream`, { node: nodeId || message.nodeId, service: 'LRS' }));
              return;
            }
            const ok = guard!.identify(ticket, message.nodeId ?? '', 'LRS');
            if (ok !== true) {
              refuse(ok.refused);
              return;
            }
          }
          if (!nodeId) {
            nodeId = message.nodeId ?? '';
            reporter = `${nodeId}#${streamId}`;
            this.emit('stream-open', reporter, nodeId);
            // Ask for every cluster at our interval; Envoy then reports on that period until the stream ends.
            call.write(Buffer.from(res.encode(res.fromObject({ send_all_clusters: true, load_reporting_interval: millisToDuration(this.intervalMs) })).finish()));
            this.log.debug('load reports started', { node: nodeId, intervalMs: this.intervalMs });
          }
          const allowed = gateway !== undefined && secure ? secure.clustersOf(gateway) : undefined;
          const clusters = allowed === undefined ? message.clusters : message.clusters.filter((c) => allowed.has(c.cluster));
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
