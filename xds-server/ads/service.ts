// Registers the ADS service on a grpc-js server. Messages are (de)serialised by our codec, not by
// proto-loader, so responses can reuse resource bytes encoded once per snapshot.
import * as grpc from '@grpc/grpc-js';
import type { SnapshotCache } from '../cache/snapshot-cache.ts';
import type { Logger } from '../log.ts';
import { oversizedRefusal, resetStream, SyncTurns, type StreamGuard, type StreamTicket } from '../grpc-bounds.ts';
import { decodeDeltaDiscoveryRequest, decodeDiscoveryRequest, type DeltaDiscoveryRequest, type DiscoveryRequest, type NodeInfo } from '../protos/codec.ts';
import { DeltaStreamSession } from './delta-session.ts';
import type { AdsEvents } from './events.ts';
import type { XdsTls } from '../security/xds-tls.ts';
import type { AdsSession } from './session.ts';
import { StreamSession, type StreamSessionOptions, type StreamSink } from './stream-session.ts';

const SERVICE = '/envoy.service.discovery.v3.AggregatedDiscoveryService';
/** The two ADS methods' gRPC paths (raw clients in tests and benchmarks call them by path). */
export const ADS_PATH = `${SERVICE}/StreamAggregatedResources`;
export const DELTA_ADS_PATH = `${SERVICE}/DeltaAggregatedResources`;
const identity = (b: Buffer): Buffer => b;

const adsDefinition: grpc.ServiceDefinition = {
  StreamAggregatedResources: {
    path: ADS_PATH,
    requestStream: true,
    responseStream: true,
    requestSerialize: identity,
    requestDeserialize: decodeDiscoveryRequest,
    responseSerialize: identity,
    responseDeserialize: identity,
    originalName: 'streamAggregatedResources',
  },
  DeltaAggregatedResources: {
    path: DELTA_ADS_PATH,
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
  private readonly turns: SyncTurns | undefined;
  /** Set on an mTLS port: every stream is checked for a client certificate and pinned to its identity. */
  private tls: XdsTls | undefined;

  constructor(
    private readonly cache: SnapshotCache,
    private readonly events: AdsEvents,
    private readonly log: Logger,
    private readonly options: Partial<StreamSessionOptions> = {},
    /** Without a guard (unit tests of the sessions) nothing is bounded here. */
    private readonly guard?: StreamGuard,
  ) {
    this.turns = guard ? new SyncTurns(guard.bounds.initialSyncConcurrency) : undefined;
  }

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

  /** New streams answering their initial requests now, and those waiting for their turn. */
  get initialSyncs(): { syncing: number; waiting: number } {
    return { syncing: this.turns?.syncing ?? 0, waiting: this.turns?.queued ?? 0 };
  }

  private stream<R extends { type_url: string; node?: NodeInfo | null }>(
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
    const guard = this.guard;
    const bounds = guard?.bounds;
    const peer = call.getPeer();
    let ticket: StreamTicket | undefined;
    if (guard) {
      const t = guard.open(peer, 'ADS');
      if ('refused' in t) {
        call.emit('error', { code: grpc.status.RESOURCE_EXHAUSTED, details: t.refused });
        return;
      }
      ticket = t;
    }
    let ended = false;
    // Write backpressure: bytes handed to grpc-js that the client has not taken yet. Above the bound the
    // stream is blocked (snapshot pushes wait and coalesce); blocked for too long, it is reset.
    let unflushed = 0;
    let slowTimer: NodeJS.Timeout | undefined;
    const blocked = (): boolean => slowTimer !== undefined;
    const block = (): void => {
      if (slowTimer !== undefined || !bounds) return;
      slowTimer = setTimeout(() => {
        if (ended) return;
        const message = guard!.disconnected('slow_client', `the client did not read its xDS responses for ${bounds.slowClientTimeoutMs} ms (${unflushed} bytes unread)`, { node: session.nodeId, peer, stream: session.streamId });
        finish(message);
        resetStream(call);
      }, bounds.slowClientTimeoutMs);
      slowTimer.unref();
    };
    const unblock = (): void => {
      if (slowTimer === undefined) return;
      clearTimeout(slowTimer);
      slowTimer = undefined;
      session.resume();
    };
    const sink: StreamSink = {
      write: (response) => {
        if (ended) return;
        unflushed += response.length;
        const accepted = call.write(response, () => {
          unflushed -= response.length;
          if (unflushed <= (bounds?.writeBufferBytes ?? Infinity) && !ended) unblock();
        });
        if (!accepted || unflushed > (bounds?.writeBufferBytes ?? Infinity)) block();
      },
      blocked,
      fail: (code, message) => {
        if (ended) return;
        ended = true;
        release();
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
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      this.sessions.delete(session);
      if (slowTimer !== undefined) clearTimeout(slowTimer);
      if (turnTimer !== undefined) clearTimeout(turnTimer);
      this.turns?.release(session);
      if (ticket) guard!.close(ticket);
    };
    const finish = (reason: string): void => {
      release();
      session.close(reason);
      if (!ended) {
        ended = true;
        call.end();
      }
    };
    const handle = (request: R): void => {
      if (ended) return;
      if (ticket && ticket.nodeId === '' && request.node?.id) {
        const ok = guard!.identify(ticket, request.node.id, 'ADS');
        if (ok !== true) {
          sink.fail(grpc.status.RESOURCE_EXHAUSTED, ok.refused);
          return;
        }
      }
      try {
        session.onRequest(request);
      } catch (err) {
        // A bug (e.g. a resource that does not encode) must not pass silently: the client would wait forever.
        this.log.error('failed to answer a DiscoveryRequest; ending the stream', { node: session.nodeId, typeUrl: request.type_url, error: String((err as Error)?.stack ?? err) });
        sink.fail(grpc.status.INTERNAL, `the control plane failed to answer a ${request.type_url} request: ${(err as Error).message}`);
        return;
      }
      if (turnTimer !== undefined && session.answeredEverySent()) endTurn();
    };
    // A new stream's requests wait for its initial-sync turn (reconnect storms); its turn ends once every
    // type it asked for is answered (ACK or NACK) or after initialSyncTimeoutMs.
    let queue: R[] | undefined = this.turns ? [] : undefined;
    let turnTimer: NodeJS.Timeout | undefined;
    const endTurn = (): void => {
      if (turnTimer !== undefined) clearTimeout(turnTimer);
      turnTimer = undefined;
      this.turns?.release(session);
    };
    // The turn is asked for with the first request: a stream that says nothing takes no turn from others.
    const askTurn = (): void =>
      this.turns!.request(session, () => {
        if (released) return;
        turnTimer = setTimeout(endTurn, bounds!.initialSyncTimeoutMs);
        turnTimer.unref();
        const waiting = queue ?? [];
        queue = undefined;
        for (const r of waiting) handle(r);
      });
    call.on('data', (request: R) => {
      if (ended) return;
      if (ticket && !guard!.allow(ticket)) {
        const message = guard!.disconnected('rate_limited', `more than ${bounds!.requestBurst} requests at once or ${bounds!.requestsPerSecond} per second on one stream`, { node: session.nodeId || request.node?.id, peer, stream: session.streamId });
        sink.fail(grpc.status.RESOURCE_EXHAUSTED, message);
        return;
      }
      if (queue !== undefined) {
        if (queue.length >= bounds!.maxQueuedRequests) {
          const message = guard!.disconnected('request_queue_full', `${bounds!.maxQueuedRequests} requests sent before the stream's initial sync began`, { node: request.node?.id, peer });
          sink.fail(grpc.status.RESOURCE_EXHAUSTED, message);
          return;
        }
        queue.push(request);
        if (queue.length === 1) askTurn();
        return;
      }
      handle(request);
    });
    call.on('end', () => finish('client closed the stream'));
    call.on('error', (err: Error) => finish(`stream error: ${err.message}`));
    call.on('cancelled', () => finish(oversizedRefusal(guard, call, { node: session.nodeId, peer, service: 'ADS' }) ?? 'stream cancelled'));
  }
}

