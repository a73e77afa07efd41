// Registers the ADS service on a grpc-js server. Messages are (de)serialised by our codec, not by
// proto-loader, so responses can reuse resource bytes encoded once per snapshot.
import * as grpc from '@grpc/grpc-js';
import type { SnapshotCache } from '../cache/snapshot-cache.ts';
import type { Logger } from '../log.ts';
import { decodeDeltaDiscoveryRequest, decodeDiscoveryRequest, type DeltaDiscoveryRequest, type DiscoveryRequest } from '../protos/codec.ts';
import { DeltaStreamSession } from './delta-session.ts';
import type { AdsEvents } from './events.ts';
import type { XdsTls } from '../security/xds-tls.ts';
import type { AdsSession } from './session.ts';
import { StreamSession, type StreamSessionOptions, type StreamSink } from './stream-session.ts';

const SERVICE = '/envoy.service.discovery.v3.AggregatedDiscoveryService';
const identity = (b: Buffer): Buffer => b;

const adsDefinition: grpc.ServiceDefinition = {
  StreamAggregatedResources: {
    path: `${SERVICE}/StreamAggregatedResources`,
    requestStream: true,
    responseStream: true,
    requestSerialize: identity,
    requestDeserialize: decodeDiscoveryRequest,
    responseSerialize: identity,
    responseDeserialize: identity,
    originalName: 'streamAggregatedResources',
  },
  DeltaAggregatedResources: {
    path: `${SERVICE}/DeltaAggregatedResources`,
    requestStream: true,
    responseStream: true,
    requestSerialize: identity,
    requestDeserialize: decodeDeltaDiscoveryRequest,
    responseSerialize: identity,
    responseDeserialize: identity,
    originalName: 'deltaAggregatedResources',
  },
};

export class AdsService {
  private readonly sessions = new Set<AdsSession>();
  /** Set on an mTLS port: every stream is checked for a client certificate and pinned to its identity. */
  private tls: XdsTls | undefined;

  constructor(
    private readonly cache: SnapshotCache,
    private readonly events: AdsEvents,
    private readonly log: Logger,
    private readonly options: Partial<StreamSessionOptions> = {},
  ) {}

  register(server: grpc.Server): void {
    server.addService(adsDefinition, {
      StreamAggregatedResources: (call: grpc.ServerDuplexStream<DiscoveryRequest, Buffer>) =>
        this.stream(call, (sink) => new StreamSession(sink, this.cache, this.events, this.log, this.options)),
      DeltaAggregatedResources: (call: grpc.ServerDuplexStream<DeltaDiscoveryRequest, Buffer>) =>
        this.stream(call, (sink) => new DeltaStreamSession(sink, this.cache, this.events, this.log, this.options)),
    });
  }

  requireClientCertificates(tls: XdsTls): void {
    this.tls = tls;
  }

  get connected(): AdsSession[] {
    return [...this.sessions].filter((s) => s.nodeId !== '');
  }

  private stream<R extends { type_url: string }>(
    call: grpc.ServerDuplexStream<R, Buffer>,
    open: (sink: StreamSink) => AdsSession & { onRequest(request: R): void },
  ): void {
    const tls = this.tls;
    const checked = tls?.identityOf(call);
    if (tls && checked && !checked.ok) {
      tls.refuse(checked.reason, { peer: call.getPeer(), stream: 'ads', error: checked.message });
      call.emit('error', { code: grpc.status.UNAUTHENTICATED, details: checked.message });
      return;
    }
    let ended = false;
    const sink: StreamSink = {
      write: (response) => {
        if (!ended) call.write(response);
      },
      fail: (code, message) => {
        if (ended) return;
        ended = true;
        session.close(message);
        call.emit('error', { code, details: message });
      },
    };
    const session = open(sink);
    if (tls && checked?.ok) {
      session.identity = checked.identity;
      session.onIdentityRefused = (reason, message, node) => tls.refuse(reason, { peer: call.getPeer(), stream: 'ads', node, error: message });
    }
    this.sessions.add(session);
    const finish = (reason: string): void => {
      this.sessions.delete(session);
      session.close(reason);
      if (!ended) {
        ended = true;
        call.end();
      }
    };
    call.on('data', (request: R) => {
      try {
        session.onRequest(request);
      } catch (err) {
        // A bug (e.g. a resource that does not encode) must not pass silently: the client would wait forever.
        this.log.error('failed to answer a DiscoveryRequest; ending the stream', { node: session.nodeId, typeUrl: request.type_url, error: String((err as Error)?.stack ?? err) });
        sink.fail(grpc.status.INTERNAL, `the control plane failed to answer a ${request.type_url} request: ${(err as Error).message}`);
      }
    });
    call.on('end', () => finish('client closed the stream'));
    call.on('error', (err: Error) => finish(`stream error: ${err.message}`));
    call.on('cancelled', () => finish('stream cancelled'));
  }
}
