// Clients that misbehave against the control plane's ports, each bounded (a fixed number of streams,
// messages or requests) and stopping by itself: many streams from one client, an oversized message, a
// client that never reads, a burst of wake calls. Used in-process by the protocol tests and, as a separate
// process (`tsx test/support/abuse.ts '<json>'`), by the e2e test, so the control plane's memory is measured
// without the abuser's.
import http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { Agent, request } from 'undici';
import { TYPE_URLS } from '../../snapshots/type-urls.ts';
import {
  decodeDeltaDiscoveryResponse, decodeDiscoveryResponse, encodeDeltaDiscoveryRequest, encodeDiscoveryRequest,
  type DecodedDeltaResponse, type DecodedResponse, type DeltaDiscoveryRequest, type DiscoveryRequest,
} from '../../xds-server/protos/codec.ts';
import { ADS_PATH, DELTA_ADS_PATH } from '../../xds-server/ads/service.ts';


/** A client certificate (PEM) and the CA it trusts: a client of a control plane that requires mTLS. */
export interface ClientTls {
  ca: string;
  cert: string;
  key: string;
}

function channelCredentials(tls: ClientTls | undefined): grpc.ChannelCredentials {
  return tls ? grpc.credentials.createSsl(Buffer.from(tls.ca), Buffer.from(tls.key), Buffer.from(tls.cert)) : grpc.credentials.createInsecure();
}

export interface StreamOutcome {
  served: number;
  refused: number;
  /** Distinct refusal messages with their counts (status code: details). */
  reasons: Record<string, number>;
}

/**
 * Opens `count` ADS streams over `connections` connections, each sending one CDS request with the node id
 * `nodeId(i)`; waits until each got a response or ended; then cancels all. Served = got a response.
 */
export async function openManyStreams(options: { port: number; count: number; connections: number; nodeId: (i: number) => string; timeoutMs?: number; tls?: ClientTls }): Promise<StreamOutcome> {
  const clients = Array.from(
    { length: options.connections },
    // Own subchannel each: really separate connections.
    () => new grpc.Client(`127.0.0.1:${options.port}`, channelCredentials(options.tls), { 'grpc.use_local_subchannel_pool': 1 }),
  );
  const calls: grpc.ClientDuplexStream<Buffer, Buffer>[] = [];
  const outcome: StreamOutcome = { served: 0, refused: 0, reasons: {} };
  const results = Array.from({ length: options.count }, (_, i) => {
    const call = clients[i % clients.length]!.makeBidiStreamRequest(ADS_PATH, (b: Buffer) => b, (b: Buffer) => b);
    calls.push(call);
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        outcome.reasons['no answer'] = (outcome.reasons['no answer'] ?? 0) + 1;
        resolve();
      }, options.timeoutMs ?? 30_000);
      call.once('data', () => {
        clearTimeout(timer);
        outcome.served += 1;
        resolve();
      });
      call.on('error', (err: grpc.ServiceError) => {
        clearTimeout(timer);
        if (err.code === grpc.status.CANCELLED) return resolve();
        outcome.refused += 1;
        const key = `${err.code}: ${err.details.replace(/has \d+ open streams/, 'has N open streams')}`;
        outcome.reasons[key] = (outcome.reasons[key] ?? 0) + 1;
        resolve();
      });
      call.write(encodeDiscoveryRequest({ node: { id: options.nodeId(i) }, type_url: TYPE_URLS.cluster }));
    });
  });
  await Promise.all(results);
  for (const c of calls) c.cancel();
  for (const c of clients) c.close();
  return outcome;
}

/** Sends one request message of `bytes` bytes on a new ADS stream; the status the stream ends with. */
export async function sendOversizedMessage(port: number, bytes: number, tls?: ClientTls): Promise<{ code: number; details: string }> {
  const client = new grpc.Client(`127.0.0.1:${port}`, channelCredentials(tls), { 'grpc.max_send_message_length': -1, 'grpc.use_local_subchannel_pool': 1 });
  try {
    const call = client.makeBidiStreamRequest(ADS_PATH, (b: Buffer) => b, (b: Buffer) => b);
    return await new Promise((resolve) => {
      call.on('error', (err: grpc.ServiceError) => resolve({ code: err.code, details: err.details }));
      call.on('data', () => {});
      call.write(Buffer.alloc(bytes, 0x0a));
    });
  } finally {
    client.close();
  }
}

/** Sends requests as fast as it can on one stream until the server ends it (or `max` requests). */
export async function floodRequests(port: number, nodeId: string, max: number): Promise<{ sent: number; code: number | undefined; details: string }> {
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
  const call = client.makeBidiStreamRequest(ADS_PATH, (b: Buffer) => b, (b: Buffer) => b);
  call.on('data', () => {});
  const ended = new Promise<{ code: number; details: string }>((resolve) => call.on('error', (err: grpc.ServiceError) => resolve({ code: err.code, details: err.details })));
  let sent = 0;
  let result: { code: number; details: string } | undefined;
  void ended.then((r) => (result = r));
  const request = (i: number): Buffer => encodeDiscoveryRequest({ node: { id: nodeId }, type_url: TYPE_URLS.listener, resource_names: [`l${i % 7}`] });
  while (sent < max && result === undefined) {
    for (let i = 0; i < 100 && sent < max; i++) call.write(request(sent++));
    await new Promise((r) => setImmediate(r));
  }
  const final = await Promise.race([ended, new Promise<undefined>((r) => setTimeout(() => r(undefined), 5_000))]);
  call.cancel();
  client.close();
  return { sent, code: final?.code, details: final?.details ?? '' };
}

/**
 * A raw HTTP/2 ADS client (state of the world, or delta with `delta: true`) that sends requests and does not
 * read what it is sent until resume().
 */
export class SlowReader {
  private readonly session: http2.ClientHttp2Session;
  private readonly stream: http2.ClientHttp2Stream;
  private pending = Buffer.alloc(0);
  readonly responses: DecodedResponse[] = [];
  readonly deltaResponses: DecodedDeltaResponse[] = [];
  /** Resolves with the stream's RST code (or 0) when it closes. */
  readonly closed: Promise<number>;

  constructor(
    port: number,
    private readonly delta = false,
  ) {
    this.session = http2.connect(`http://127.0.0.1:${port}`);
    this.session.on('error', () => {});
    this.stream = this.session.request({ ':method': 'POST', ':path': delta ? DELTA_ADS_PATH : ADS_PATH, 'content-type': 'application/grpc', te: 'trailers' });
    this.stream.on('error', () => {});
    // Nothing reads: Node stops granting HTTP/2 flow-control window once its buffer is full.
    this.stream.pause();
    this.closed = new Promise((resolve) => this.stream.on('close', () => resolve(this.stream.rstCode ?? 0)));
  }

  send(request: Partial<DiscoveryRequest> | Partial<DeltaDiscoveryRequest>): void {
    const message = this.delta ? encodeDeltaDiscoveryRequest(request as Partial<DeltaDiscoveryRequest>) : encodeDiscoveryRequest(request as Partial<DiscoveryRequest>);
    const frame = Buffer.alloc(5 + message.length);
    frame.writeUInt32BE(message.length, 1);
    message.copy(frame, 5);
    this.stream.write(frame);
  }

  /** Starts reading: decodes every gRPC message received from now on (and what waited). */
  resume(): void {
    this.stream.on('data', (chunk: Buffer) => {
      this.pending = Buffer.concat([this.pending, chunk]);
      while (this.pending.length >= 5) {
        const length = this.pending.readUInt32BE(1);
        if (this.pending.length < 5 + length) break;
        const bytes = this.pending.subarray(5, 5 + length);
        if (this.delta) this.deltaResponses.push(decodeDeltaDiscoveryResponse(Buffer.from(bytes)));
        else this.responses.push(decodeDiscoveryResponse(bytes));
        this.pending = this.pending.subarray(5 + length);
      }
    });
    this.stream.resume();
  }

  close(): void {
    this.stream.close();
    this.session.close();
  }
}

export interface WakeBurstResult {
  sent: number;
  byStatus: Record<string, number>;
  /** Answers that were neither 202 nor a 429 with {"error":"rate_limited"} and retry-after. */
  unexpected: number;
  durationMs: number;
}

/** `total` POST /v1/wake/{host} calls over `connections` keep-alive connections, as fast as answered. */
export async function wakeBurst(options: { adminUrl: string; host: string; total: number; connections: number; tls?: ClientTls }): Promise<WakeBurstResult> {
  const agent = new Agent({
    connections: options.connections,
    pipelining: 1,
    keepAliveTimeout: 10_000,
    ...(options.tls ? { connect: { ca: options.tls.ca, cert: options.tls.cert, key: options.tls.key } } : {}),
  });
  const result: WakeBurstResult = { sent: 0, byStatus: {}, unexpected: 0, durationMs: 0 };
  const started = performance.now();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < options.total) {
      next += 1;
      result.sent += 1;
      try {
        const res = await request(`${options.adminUrl}/v1/wake/${options.host}`, { method: 'POST', dispatcher: agent });
        const body = await res.body.text();
        result.byStatus[res.statusCode] = (result.byStatus[res.statusCode] ?? 0) + 1;
        const ok = res.statusCode === 202 || (res.statusCode === 429 && res.headers['retry-after'] === '1' && (JSON.parse(body) as { error?: string }).error === 'rate_limited');
        if (!ok) result.unexpected += 1;
      } catch {
        result.byStatus.error = (result.byStatus.error ?? 0) + 1;
        result.unexpected += 1;
      }
    }
  };
  await Promise.all(Array.from({ length: options.connections }, worker));
  result.durationMs = performance.now() - started;
  await agent.close();
  return result;
}

// As a process: one scenario, its result as JSON on stdout.
if (import.meta.url === `file://${process.argv[1]}`) {
  const args = JSON.parse(process.argv[2] ?? '{}') as { scenario: string } & Record<string, unknown>;
  const run = async (): Promise<unknown> => {
    switch (args.scenario) {
      case 'streams':
        return openManyStreams({ port: args.port as number, count: args.count as number, connections: args.connections as number, nodeId: () => args.nodeId as string, ...(args.tls ? { tls: args.tls as ClientTls } : {}) });
      case 'oversized':
        return sendOversizedMessage(args.port as number, args.bytes as number, args.tls as ClientTls | undefined);
      case 'wake-burst':
        return wakeBurst({ adminUrl: args.adminUrl as string, host: args.host as string, total: args.total as number, connections: args.connections as number, ...(args.tls ? { tls: args.tls as ClientTls } : {}) });
      default:
        throw new Error(`unknown scenario ${args.scenario}`);
    }
  };
  run().then(
    (r) => process.stdout.write(JSON.stringify(r) + '\n'),
    (err: Error) => {
      process.stderr.write(String(err.stack ?? err) + '\n');
      process.exitCode = 1;
    },
  );
}
