import { createHash } from 'node:crypto';
import { routeByPreface } from './protocol-sniff.ts';
import { EventEmitter } from 'node:events';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import { WebSocketServer } from 'ws';
import { HealthImplementation } from 'grpc-health-check';
import {
  ECHO_CHAT_METHOD_PATH,
  ECHO_METHOD_PATH,
  ECHO_SERVICE_NAME,
  ECHO_STREAM_METHOD_PATH,
  echoServiceDefinition,
  type EchoReply,
  type EchoRequest,
  type EchoStreamRequest,
} from './protos.ts';
import { serveEchoChat, serveEchoStream, type ReplyFor } from './grpc-streams.ts';

export type UpstreamProtocol = 'HTTP/1.1' | 'HTTP/2' | 'gRPC';

export interface ReceivedRequest {
  upstream: string;
  protocol: UpstreamProtocol;
  method: string;
  path: string;
  authority: string;
  /** Only the headers tests correlate on (content-type, x-request-id, x-test-id). */
  headers: Record<string, string>;
  bodyBytes: number;
  bodySha256: string;
  /** Epoch ms at which the request head arrived. */
  receivedAt: number;
}

export interface UpstreamOptions {
  host?: string;
  /** 0 picks a free port. */
  httpPort?: number;
  /** 0 picks a free port. */
  grpcPort?: number;
  id?: string;
  /** Sleep this long before binding anything, to imitate a slow cold start. */
  startupDelayMs?: number;
  /** Cap on `received`; the oldest entries are dropped first. */
  maxRecorded?: number;
}

export interface Upstream {
  readonly id: string;
  readonly host: string;
  readonly httpPort: number;
  readonly grpcPort: number;
  /** Epoch ms at which both ports were accepting connections. */
  readonly readyAt: number;
  readonly received: ReceivedRequest[];
  /** Emits 'request' with each ReceivedRequest as it is recorded. */
  readonly events: EventEmitter;
  clearReceived(): void;
  close(): Promise<void>;
}

export { HTTP2_PREFACE } from './protocol-sniff.ts';
export const MAX_DELAY_MS = 30_000;
/** A WebSocket upgrade to this path (HTTP/1.1) opens an echo: every message comes back as sent. */
export const WEBSOCKET_ECHO_PATH = '/ws';
const DEFAULT_MAX_RECORDED = 10_000;
let instanceCounter = 0;
const RECORDED_HEADERS = ['content-type', 'x-request-id', 'x-test-id'] as const;

export function epochNowMs(): number {
  return performance.timeOrigin + performance.now();
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function pickHeaders(get: (name: string) => string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of RECORDED_HEADERS) {
    const value = get(name);
    if (value !== undefined) out[name] = value;
  }
  return out;
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}

function parseIntParam(params: URLSearchParams, name: string): number | undefined {
  const raw = params.get(name);
  if (raw === null || !/^\d+$/.test(raw)) return undefined;
  return Number(raw);
}

type AnyRequest = http.IncomingMessage | http2.Http2ServerRequest;
type AnyResponse = http.ServerResponse | http2.Http2ServerResponse;

function reply(res: AnyResponse, status: number, contentType: string, body: string): void {
  const payload = Buffer.from(body);
  const headers = { 'content-type': contentType, 'content-length': String(payload.length) };
  // Identical calls, but TypeScript cannot call writeHead through the union
  // of the two overloaded signatures.
  if (res instanceof http.ServerResponse) {
    res.writeHead(status, headers);
  } else {
    res.writeHead(status, headers);
  }
  res.end(payload);
}

class UpstreamImpl implements Upstream {
  readonly events = new EventEmitter();
  readonly received: ReceivedRequest[] = [];
  httpPort = 0;
  grpcPort = 0;
  readyAt = 0;

  private readonly sockets = new Set<net.Socket>();
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly frontServer: net.Server;
  private readonly h1Server: http.Server;
  private readonly h2Server: http2.Http2Server;
  private readonly grpcServer: grpc.Server;
  private readonly wsServer = new WebSocketServer({ noServer: true });
  private closing: Promise<void> | undefined;

  constructor(
    readonly id: string,
    readonly host: string,
    private readonly maxRecorded: number,
  ) {
    const onRequest = (req: AnyRequest, res: AnyResponse): void => this.handleHttp(req, res);

    this.h1Server = http.createServer(onRequest);
    // Longer than Node's 5 s default so a pooling proxy in front (Envoy) is
    // unlikely to reuse a connection in the instant we decide to close it.
    this.h1Server.keepAliveTimeout = 75_000;
    this.h1Server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => this.handleUpgrade(req, socket, head));

    this.h2Server = http2.createServer(onRequest);
    this.h2Server.on('session', (session: http2.ServerHttp2Session) => {
      this.sessions.add(session);
      session.once('close', () => this.sessions.delete(session));
    });
    this.h2Server.on('sessionError', () => {});

    this.frontServer = net.createServer({ noDelay: true }, (socket) => this.route(socket));

    this.grpcServer = new grpc.Server();
    const health = new HealthImplementation({ '': 'SERVING', [ECHO_SERVICE_NAME]: 'SERVING' });
    health.addToServer(this.grpcServer);
    this.grpcServer.addService(echoServiceDefinition(), {
      Echo: (
        call: grpc.ServerUnaryCall<EchoRequest, EchoReply>,
        callback: grpc.sendUnaryData<EchoReply>,
      ) => this.handleEcho(call, callback),
      EchoStream: (call: grpc.ServerWritableStream<EchoStreamRequest, EchoReply>) => serveEchoStream(call, this.streamReplies(call, ECHO_STREAM_METHOD_PATH)),
      EchoChat: (call: grpc.ServerDuplexStream<EchoRequest, EchoReply>) => serveEchoChat(call, this.streamReplies(call, ECHO_CHAT_METHOD_PATH)),
    });
  }

  async start(httpPort: number, grpcPort: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.frontServer.once('error', reject);
      this.frontServer.listen(httpPort, this.host, () => {
        this.frontServer.off('error', reject);
        resolve();
      });
    });
    const address = this.frontServer.address();
    if (address === null || typeof address === 'string') throw new Error('unexpected HTTP listen address');
    this.httpPort = address.port;

    const grpcHost = this.host.includes(':') ? `[${this.host}]` : this.host;
    this.grpcPort = await new Promise<number>((resolve, reject) => {
      this.grpcServer.bindAsync(`${grpcHost}:${grpcPort}`, grpc.ServerCredentials.createInsecure(), (err, port) =>
        err ? reject(err) : resolve(port),
      );
    });
    this.readyAt = epochNowMs();
  }

  clearReceived(): void {
    this.received.length = 0;
  }

  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    const frontClosed = new Promise<void>((resolve) => {
      if (!this.frontServer.listening) return resolve();
      this.frontServer.close(() => resolve());
    });
    for (const session of this.sessions) session.destroy();
    for (const client of this.wsServer.clients) client.terminate();
    for (const socket of this.sockets) socket.destroy();
    // forceShutdown cancels in-flight calls instead of waiting on them, which
    // is what a test teardown wants.
    this.grpcServer.forceShutdown();
    await frontClosed;
  }

  private record(entry: ReceivedRequest): void {
    this.received.push(entry);
    if (this.received.length > this.maxRecorded) {
      this.received.splice(0, this.received.length - this.maxRecorded);
    }
    this.events.emit('request', entry);
  }

  private route(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    routeByPreface(socket, this.h1Server, this.h2Server);
  }

  private handleHttp(req: AnyRequest, res: AnyResponse): void {
    const receivedAt = epochNowMs();
    const isH2 = req.httpVersion === '2.0';
    const rawPath = req.url ?? '/';
    const url = new URL(rawPath, 'http://upstream.invalid');
    const method = req.method ?? 'GET';

    if (url.pathname === '/healthz') {
      req.resume();
      reply(res, 200, 'text/plain', 'ok');
      return;
    }

    const hash = createHash('sha256');
    let bodyBytes = 0;
    req.on('data', (chunk: Buffer) => {
      bodyBytes += chunk.length;
      hash.update(chunk);
    });
    req.on('error', () => {});
    req.on('end', () => {
      const authority = isH2
        ? (req as http2.Http2ServerRequest).authority
        : (headerValue(req.headers.host) ?? '');
      const entry: ReceivedRequest = {
        upstream: this.id,
        protocol: isH2 ? 'HTTP/2' : 'HTTP/1.1',
        method,
        path: rawPath,
        authority,
        headers: pickHeaders((name) => headerValue(req.headers[name])),
        bodyBytes,
        bodySha256: hash.digest('hex'),
        receivedAt,
      };
      this.record(entry);

      let status = 200;
      if (url.pathname === '/status') {
        const code = parseIntParam(url.searchParams, 'code');
        if (code === undefined || code < 200 || code > 599) {
          reply(res, 400, 'text/plain', 'status code must be an integer in 200..599\n');
          return;
        }
        status = code;
      }
      const body = JSON.stringify(entry);
      const send = (): void => {
        if (!res.writableEnded && !res.destroyed) reply(res, status, 'application/json', body);
      };

      if (url.pathname === '/delay') {
        const ms = Math.min(parseIntParam(url.searchParams, 'ms') ?? 0, MAX_DELAY_MS);
        const timer = setTimeout(() => {
          this.timers.delete(timer);
          send();
        }, ms);
        this.timers.add(timer);
        res.once('close', () => {
          clearTimeout(timer);
          this.timers.delete(timer);
        });
        return;
      }
      send();
    });
  }

  /** Records the upgrade like a request (body 0 bytes), then echoes each message, text as text and binary as binary. */
  private handleUpgrade(req: http.IncomingMessage, socket: net.Socket, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://upstream.invalid');
    if (url.pathname !== WEBSOCKET_ECHO_PATH || (req.headers.upgrade ?? '').toLowerCase() !== 'websocket') {
      socket.end('HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
      return;
    }
    this.record({
      upstream: this.id,
      protocol: 'HTTP/1.1',
      method: req.method ?? 'GET',
      path: req.url ?? '/',
      authority: headerValue(req.headers.host) ?? '',
      headers: pickHeaders((name) => headerValue(req.headers[name])),
      bodyBytes: 0,
      bodySha256: sha256Hex(Buffer.alloc(0)),
      receivedAt: epochNowMs(),
    });
    this.wsServer.handleUpgrade(req, socket, head, (ws) => {
      ws.on('error', () => {});
      ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    });
  }

  private handleEcho(call: grpc.ServerUnaryCall<EchoRequest, EchoReply>, callback: grpc.sendUnaryData<EchoReply>): void {
    const payload = call.request.payload ?? Buffer.alloc(0);
    const authority = this.recordCall(call, ECHO_METHOD_PATH, payload);
    callback(null, { message: call.request.message, upstream: this.id, payload_bytes: payload.length, payload_sha256: sha256Hex(payload), authority, sequence: 0 });
  }

  /** A streaming call is recorded once, when it starts; its replies are numbered from 1. */
  private streamReplies(call: Pick<grpc.ServerUnaryCall<unknown, unknown>, 'metadata' | 'getPath' | 'getHost'>, defaultPath: string): ReplyFor {
    const authority = this.recordCall(call, defaultPath, Buffer.alloc(0));
    return (message, payload, sequence) => ({ message, upstream: this.id, payload_bytes: payload.length, payload_sha256: sha256Hex(payload), authority, sequence });
  }

  /** Records a gRPC call as received; returns the :authority it arrived with. */
  private recordCall(call: Pick<grpc.ServerUnaryCall<unknown, unknown>, 'metadata' | 'getPath' | 'getHost'>, defaultPath: string, payload: Buffer): string {
    const receivedAt = epochNowMs();
    const metadataValue = (name: string): string | undefined => {
      const values = call.metadata.get(name);
      return values.length === 0 ? undefined : values.map(String).join(', ');
    };
    // grpc-js strips pseudo-headers from metadata; getHost() is where the
    // :authority ends up.
    const authority = metadataValue(':authority') ?? call.getHost();
    this.record({
      upstream: this.id,
      protocol: 'gRPC',
      method: 'POST',
      path: call.getPath() || defaultPath,
      authority,
      headers: pickHeaders(metadataValue),
      bodyBytes: payload.length,
      bodySha256: sha256Hex(payload),
      receivedAt,
    });
    return authority;
  }
}

export async function startUpstream(options: UpstreamOptions = {}): Promise<Upstream> {
  const host = options.host ?? '127.0.0.1';
  const id = options.id ?? `upstream-${process.pid}-${++instanceCounter}`;
  const upstream = new UpstreamImpl(id, host, options.maxRecorded ?? DEFAULT_MAX_RECORDED);
  if (options.startupDelayMs !== undefined && options.startupDelayMs > 0) {
    await sleep(options.startupDelayMs);
  }
  try {
    await upstream.start(options.httpPort ?? 0, options.grpcPort ?? 0);
  } catch (err) {
    await upstream.close();
    throw err;
  }
  return upstream;
}
