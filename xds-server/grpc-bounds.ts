// Bounds on what one client can make the xDS/LRS port do (issue 14: abuse; issue 12: reconnect storms and
// write backpressure). Every limit has a default here, the README's table says why, and a client that
// crosses one is refused or disconnected with a logged reason and a counted metric
// (stz_grpc_streams_refused_total / stz_grpc_streams_disconnected_total), never silently.
import type * as grpc from '@grpc/grpc-js';
import type { Logger } from './log.ts';
import type { Metrics } from './metrics.ts';
import { TokenBucket } from './admin/rate-limit.ts';

export interface GrpcBounds {
  /** Largest request message accepted; a larger one ends its stream with RESOURCE_EXHAUSTED (grpc-js, from its 5-byte header). */
  maxReceiveMessageBytes: number;
  /** HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS of every connection. */
  maxConcurrentStreamsPerConnection: number;
  /** Open streams (ADS and LRS together) of one node id. */
  maxStreamsPerNode: number;
  /** Open streams (ADS and LRS together) from one peer IP address. */
  maxStreamsPerAddress: number;
  /** Requests one stream may send per second (token bucket refill) ... */
  requestsPerSecond: number;
  /** ... and at once (bucket size). A stream that sends faster is disconnected. */
  requestBurst: number;
  /** The server pings an idle connection this often ... */
  keepaliveTimeMs: number;
  /** ... and closes it when a ping is not answered within this. */
  keepaliveTimeoutMs: number;
  /**
   * Bytes written to a stream that the client has not taken yet above which the stream counts as blocked:
   * snapshot pushes wait (coalesced: once it drains it is sent the newest snapshot only).
   */
  writeBufferBytes: number;
  /** A stream blocked this long (its client does not read) is reset. */
  slowClientTimeoutMs: number;
  /** New ADS streams answered (initial sync) at once; further new streams wait their turn. */
  initialSyncConcurrency: number;
  /** A stream in initial sync gives its turn up after this, synced or not. */
  initialSyncTimeoutMs: number;
  /** Requests a waiting stream may queue before its turn; more end it (RESOURCE_EXHAUSTED). */
  maxQueuedRequests: number;
  /** Node's HTTP/2 session memory cap per connection (MiB); above it new streams are refused (ENHANCE_YOUR_CALM). */
  maxSessionMemoryMiB: number;
  /**
   * HTTP/2 receive window, per stream and per connection: what a client may send before we take it. Node's
   * default (64 KiB) made Envoy's 5,000-name EDS request and ACK wait for window updates.
   */
  receiveWindowBytes: number;
}

export const DEFAULT_GRPC_BOUNDS: GrpcBounds = {
  maxReceiveMessageBytes: 4 * 1024 * 1024,
  maxConcurrentStreamsPerConnection: 100,
  maxStreamsPerNode: 8,
  maxStreamsPerAddress: 1_024,
  requestsPerSecond: 200,
  requestBurst: 1_000,
  keepaliveTimeMs: 30_000,
  keepaliveTimeoutMs: 20_000,
  writeBufferBytes: 1024 * 1024,
  slowClientTimeoutMs: 60_000,
  initialSyncConcurrency: 32,
  initialSyncTimeoutMs: 5_000,
  maxQueuedRequests: 64,
  maxSessionMemoryMiB: 64,
  receiveWindowBytes: 1024 * 1024,
};

export function grpcServerOptions(b: GrpcBounds): grpc.ServerOptions {
  return {
    'grpc.max_receive_message_length': b.maxReceiveMessageBytes,
    'grpc.max_concurrent_streams': b.maxConcurrentStreamsPerConnection,
    'grpc.keepalive_time_ms': b.keepaliveTimeMs,
    'grpc.keepalive_timeout_ms': b.keepaliveTimeoutMs,
    'grpc-node.max_session_memory': b.maxSessionMemoryMiB,
  };
}

/**
 * The Node servers behind a grpc-js server (one per bound port), which grpc-js keeps in a private map (1.14.7):
 * reached by name, checked for shape; undefined if that changed.
 */
export function nodeServersOf(server: grpc.Server): unknown[] | undefined {
  const servers = (server as unknown as { http2Servers?: unknown }).http2Servers;
  return servers instanceof Map ? [...servers.keys()] : undefined;
}

/** HTTP/2's own window bounds (RFC 9113 6.5.2): checked at start, or every new connection would throw. */
export function assertReceiveWindow(bytes: number): void {
  if (!Number.isInteger(bytes) || bytes < 65_535 || bytes > 2 ** 31 - 1) {
    throw new RangeError(`grpcBounds.receiveWindowBytes must be an integer from 65535 to 2147483647 (HTTP/2's window bounds), not ${bytes}`);
  }
}

/**
 * Opens every connection's receive windows to `bytes` (stream and connection). grpc-js has no option for the
 * server's windows: they are set on its Node servers (nodeServersOf); false (and Node's 64 KiB windows) if
 * those cannot be reached. Call it before the port takes connections (in bindAsync's callback),
 * with `bytes` already checked by assertReceiveWindow (a throw here would be on every new connection).
 */
export function openReceiveWindows(server: grpc.Server, bytes: number): boolean {
  const servers = nodeServersOf(server);
  if (servers === undefined || servers.length === 0) return false;
  let hooked = false;
  for (const s of servers) {
    const http2Server = s as import('node:http2').Http2Server;
    if (typeof http2Server.on !== 'function') continue;
    http2Server.on('session', (session: import('node:http2').ServerHttp2Session) => {
      // SETTINGS_INITIAL_WINDOW_SIZE for the streams; the connection's own window is raised by a WINDOW_UPDATE.
      // A connection already closed again has nothing to open (both calls would throw on it).
      if (session.destroyed || session.closed) return;
      session.settings({ initialWindowSize: bytes });
      session.setLocalWindowSize(bytes);
    });
    hooked = true;
  }
  return hooked;
}

export type RefusalReason = 'too_many_streams_per_node' | 'too_many_streams_per_address';
export type DisconnectReason = 'rate_limited' | 'slow_client' | 'request_queue_full' | 'message_too_large';

/** The peer's IP address from grpc-js's "address:port" (IPv6 may come bracketed or bare). */
export function peerAddress(peer: string): string {
  const m = /^\[?(.*?)\]?:\d+$/.exec(peer);
  return m ? m[1]! : peer;
}

/**
 * Resets a server stream (HTTP/2 RST_STREAM CANCEL). A gRPC status cannot reach a client that does not read:
 * trailers queue behind the data it has not taken, so ending the call politely would leave it open.
 * grpc-js has no public API for this; the http2 stream is found on its call object (pinned version).
 */
export function resetStream(call: unknown): boolean {
  const stream = http2StreamOf(call);
  if (!stream) return false;
  if (!stream.destroyed) stream.close(0x8 /* NGHTTP2_CANCEL */);
  return true;
}

interface RawHttp2Stream {
  close(code: number): void;
  destroyed?: boolean;
  sentHeaders?: Record<string, unknown>;
  sentTrailers?: Record<string, unknown>;
}

function http2StreamOf(call: unknown): RawHttp2Stream | undefined {
  let c = (call as { call?: unknown }).call as Record<string, unknown> | undefined;
  for (let depth = 0; depth < 6 && c; depth++) {
    const stream = c.stream as RawHttp2Stream | undefined;
    if (stream && typeof stream.close === 'function') return stream;
    c = c.nextCall as Record<string, unknown> | undefined;
  }
  return undefined;
}

/**
 * The status grpc-js itself ended a call with, when it did so without the handler (a request over
 * maxReceiveMessageBytes: the handler only sees 'cancelled'), so that refusal is logged and counted too.
 */
export function statusSentByGrpc(call: unknown): { code: number; message: string } | undefined {
  const stream = http2StreamOf(call);
  const h = stream?.sentTrailers?.['grpc-status'] !== undefined ? stream.sentTrailers : stream?.sentHeaders;
  const code = h?.['grpc-status'];
  if (code === undefined) return undefined;
  return { code: Number(code), message: decodeURI(String(h?.['grpc-message'] ?? '')) };
}

const RESOURCE_EXHAUSTED = 8;

/** When grpc-js refused an oversized message on this call: the disconnect's message (logged and counted). */
export function oversizedRefusal(guard: StreamGuard | undefined, call: unknown, fields: Record<string, unknown>): string | undefined {
  if (!guard) return undefined;
  const sent = statusSentByGrpc(call);
  if (sent?.code !== RESOURCE_EXHAUSTED || !/larger than/i.test(sent.message)) return undefined;
  return guard.disconnected('message_too_large', `a request message was larger than ${guard.bounds.maxReceiveMessageBytes} bytes (${sent.message})`, fields);
}

/** Refusals and disconnects of one reason are logged at most this often (each counted in the metrics). */
const LOG_INTERVAL_MS = 10_000;

/** One open stream's place in the bounds: which address and node it counts for, its request budget. */
export interface StreamTicket {
  readonly address: string;
  nodeId: string;
  readonly bucket: TokenBucket;
}

/** Counts open streams per node and per address; refuses or disconnects with a log line and a metric. */
export class StreamGuard {
  private readonly perAddress = new Map<string, number>();
  private readonly perNode = new Map<string, number>();
  private readonly logged = new Map<string, { at: number; suppressed: number }>();

  constructor(
    readonly bounds: GrpcBounds,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** A new stream from this peer: a ticket, or the refusal's message (the caller ends the stream with it). */
  open(peer: string, service: string): StreamTicket | { refused: string } {
    const address = peerAddress(peer);
    const n = this.perAddress.get(address) ?? 0;
    if (n >= this.bounds.maxStreamsPerAddress) {
      return { refused: this.refuse('too_many_streams_per_address', `more than ${this.bounds.maxStreamsPerAddress} open streams from ${address}`, { peer, service }) };
    }
    this.perAddress.set(address, n + 1);
    return { address, nodeId: '', bucket: new TokenBucket(this.bounds.requestsPerSecond, this.bounds.requestBurst, this.now) };
  }

  /** The stream named its node: counts it for that node, or the refusal's message. */
  identify(ticket: StreamTicket, nodeId: string, service: string): true | { refused: string } {
    if (ticket.nodeId !== '' || nodeId === '') return true;
    const n = this.perNode.get(nodeId) ?? 0;
    if (n >= this.bounds.maxStreamsPerNode) {
      return { refused: this.refuse('too_many_streams_per_node', `node "${nodeId}" has ${n} open streams (limit ${this.bounds.maxStreamsPerNode})`, { node: nodeId, address: ticket.address, service }) };
    }
    this.perNode.set(nodeId, n + 1);
    ticket.nodeId = nodeId;
    return true;
  }

  /** One request on the stream: false when it is over its rate (the caller disconnects it). */
  allow(ticket: StreamTicket): boolean {
    return ticket.bucket.take();
  }

  close(ticket: StreamTicket): void {
    decrement(this.perAddress, ticket.address);
    if (ticket.nodeId !== '') decrement(this.perNode, ticket.nodeId);
  }

  /** Logs and counts a disconnect for cause; returns the message for the client. */
  disconnected(reason: DisconnectReason, message: string, fields: Record<string, unknown>): string {
    this.metrics.inc('stz_grpc_streams_disconnected_total', { reason });
    this.warn(reason, `xDS/LRS stream disconnected: ${message}`, fields);
    return message;
  }

  private refuse(reason: RefusalReason, message: string, fields: Record<string, unknown>): string {
    this.metrics.inc('stz_grpc_streams_refused_total', { reason });
    this.warn(reason, `xDS/LRS stream refused: ${message}`, fields);
    return message;
  }

  /**
   * One line per reason at most every LOG_INTERVAL_MS, saying how many more there were: an abuser opening
   * thousands of streams must not turn into thousands of log lines (the metrics count every one).
   */
  private warn(reason: string, line: string, fields: Record<string, unknown>): void {
    const t = this.now();
    const last = this.logged.get(reason);
    if (last && t - last.at < LOG_INTERVAL_MS) {
      last.suppressed += 1;
      return;
    }
    this.logged.set(reason, { at: t, suppressed: 0 });
    this.log.warn(line, { reason, ...fields, ...(last?.suppressed ? { moreSinceLastLine: last.suppressed } : {}) });
  }

  /** Open streams counted (tests, metrics). */
  get openStreams(): number {
    let n = 0;
    for (const v of this.perAddress.values()) n += v;
    return n;
  }
}

function decrement(map: Map<string, number>, key: string): void {
  const n = (map.get(key) ?? 0) - 1;
  if (n <= 0) map.delete(key);
  else map.set(key, n);
}

/**
 * Turns for new streams' initial syncs: at most `concurrency` at once, the others wait in arrival order. A
 * reconnect storm then answers streams in batches instead of encoding hundreds of full snapshots at once,
 * and the connected streams' pushes and ACKs are never stuck behind all of them.
 */
export class SyncTurns {
  private readonly active = new Set<object>();
  private readonly waiting: Array<{ owner: object; start: () => void }> = [];

  constructor(private readonly concurrency: number) {}

  /** Calls start now or when a turn frees up. */
  request(owner: object, start: () => void): void {
    if (this.active.size < this.concurrency) {
      this.active.add(owner);
      start();
    } else this.waiting.push({ owner, start });
  }

  /** The owner's turn is over (synced, timed out, or the stream closed); idempotent. */
  release(owner: object): void {
    const i = this.waiting.findIndex((w) => w.owner === owner);
    if (i >= 0) this.waiting.splice(i, 1);
    if (!this.active.delete(owner)) return;
    while (this.active.size < this.concurrency && this.waiting.length > 0) {
      const next = this.waiting.shift()!;
      this.active.add(next.owner);
      next.start();
    }
  }

  get syncing(): number {
    return this.active.size;
  }

  get queued(): number {
    return this.waiting.length;
  }
}
