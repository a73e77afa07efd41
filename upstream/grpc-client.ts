import * as grpc from '@grpc/grpc-js';
import { echoClientConstructor, healthClientConstructor, type EchoReply } from './protos.ts';

export type { EchoReply } from './protos.ts';

export interface GrpcCallError {
  error: { code: number; details: string };
}

export const DEFAULT_GRPC_DEADLINE_MS = 5_000;

function isServiceError(err: unknown): err is grpc.ServiceError {
  return typeof err === 'object' && err !== null && 'code' in err && typeof (err as { code: unknown }).code === 'number';
}

function toCallError(err: unknown): GrpcCallError {
  if (isServiceError(err)) return { error: { code: err.code, details: err.details } };
  return { error: { code: grpc.status.UNKNOWN, details: err instanceof Error ? err.message : String(err) } };
}

function toMetadata(headers: Record<string, string> | undefined): grpc.Metadata {
  const md = new grpc.Metadata();
  for (const [key, value] of Object.entries(headers ?? {})) md.set(key, value);
  return md;
}

/**
 * One channel per call: tests want each call to stand alone (a fresh
 * connection through Envoy, no state carried over from an earlier backend),
 * and the cost is irrelevant at test volumes.
 */
async function unary<Req, Res>(
  ctor: grpc.ServiceClientConstructor,
  method: string,
  target: string,
  authority: string,
  request: Req,
  deadlineMs: number,
  metadata: Record<string, string> | undefined,
): Promise<Res | GrpcCallError> {
  // default_authority lets us dial 127.0.0.1:port while presenting the
  // virtual host name Envoy routes on.
  const client = new ctor(target, grpc.credentials.createInsecure(), { 'grpc.default_authority': authority });
  try {
    return await new Promise<Res | GrpcCallError>((resolve) => {
      const fn = client[method] as unknown as (
        req: Req,
        md: grpc.Metadata,
        opts: grpc.CallOptions,
        cb: (err: grpc.ServiceError | null, res?: Res) => void,
      ) => grpc.ClientUnaryCall;
      fn.call(client, request, toMetadata(metadata), { deadline: Date.now() + deadlineMs }, (err, res) => {
        if (err) resolve(toCallError(err));
        else if (res === undefined) resolve({ error: { code: grpc.status.INTERNAL, details: 'empty response' } });
        else resolve(res);
      });
    });
  } catch (err) {
    return toCallError(err);
  } finally {
    client.close();
  }
}

/** grpc.health.v1.Health/Check; `service` '' asks about the server as a whole. */
export async function grpcHealthCheck(
  target: string,
  authority: string,
  service = '',
  deadlineMs = DEFAULT_GRPC_DEADLINE_MS,
  metadata?: Record<string, string>,
): Promise<{ status: string } | GrpcCallError> {
  const res = await unary<{ service: string }, { status: string }>(
    healthClientConstructor(),
    'Check',
    target,
    authority,
    { service },
    deadlineMs,
    metadata,
  );
  return 'error' in res ? res : { status: res.status };
}

/** stz.demo.v1.Echo/Echo; the reply reports the payload size and sha256 the upstream saw. */
export async function grpcEcho(
  target: string,
  authority: string,
  message: string,
  payload: Buffer = Buffer.alloc(0),
  deadlineMs = DEFAULT_GRPC_DEADLINE_MS,
  metadata?: Record<string, string>,
): Promise<EchoReply | GrpcCallError> {
  return unary<{ message: string; payload: Buffer }, EchoReply>(
    echoClientConstructor(),
    'Echo',
    target,
    authority,
    { message, payload },
    deadlineMs,
    metadata,
  );
}

export function isGrpcError(value: object): value is GrpcCallError {
  return 'error' in value;
}

/**
 * stz.demo.v1.Echo/EchoStream: asks for `count` replies `intervalMs` apart and collects them; `onReply`
 * sees each as it arrives. With `cancelAfter` the call is cancelled once that many replies have arrived,
 * and those are the result: with a long stream asked for, that proves the replies are streamed, not
 * gathered until the end (which would run into the deadline instead).
 */
export async function grpcEchoStream(
  target: string,
  authority: string,
  request: { message: string; count: number; intervalMs?: number },
  options: { deadlineMs?: number; onReply?: (reply: EchoReply) => void; cancelAfter?: number } = {},
): Promise<EchoReply[] | GrpcCallError> {
  const ctor = echoClientConstructor();
  const client = new ctor(target, grpc.credentials.createInsecure(), { 'grpc.default_authority': authority });
  try {
    return await new Promise<EchoReply[] | GrpcCallError>((resolve) => {
      const fn = client.EchoStream as unknown as (req: object, md: grpc.Metadata, opts: grpc.CallOptions) => grpc.ClientReadableStream<EchoReply>;
      const call = fn.call(client, { message: request.message, count: request.count, interval_ms: request.intervalMs ?? 0 }, new grpc.Metadata(), {
        deadline: Date.now() + (options.deadlineMs ?? DEFAULT_GRPC_DEADLINE_MS),
      });
      const replies: EchoReply[] = [];
      let cancelled = false;
      call.on('data', (reply: EchoReply) => {
        replies.push(reply);
        options.onReply?.(reply);
        if (replies.length === options.cancelAfter) {
          cancelled = true;
          call.cancel();
          resolve(replies);
        }
      });
      call.on('error', (err) => (cancelled ? undefined : resolve(toCallError(err))));
      call.on('end', () => resolve(replies));
    });
  } finally {
    client.close();
  }
}

/**
 * stz.demo.v1.Echo/EchoChat, as a conversation: sends one message, waits for its reply, then sends the
 * next, so every reply proves both directions are open at once.
 */
export async function grpcEchoChat(target: string, authority: string, messages: string[], deadlineMs = DEFAULT_GRPC_DEADLINE_MS): Promise<EchoReply[] | GrpcCallError> {
  const ctor = echoClientConstructor();
  const client = new ctor(target, grpc.credentials.createInsecure(), { 'grpc.default_authority': authority });
  try {
    return await new Promise<EchoReply[] | GrpcCallError>((resolve) => {
      const fn = client.EchoChat as unknown as (md: grpc.Metadata, opts: grpc.CallOptions) => grpc.ClientDuplexStream<{ message: string }, EchoReply>;
      const call = fn.call(client, new grpc.Metadata(), { deadline: Date.now() + deadlineMs });
      const replies: EchoReply[] = [];
      const sendNext = (): void => {
        const next = messages[replies.length];
        if (next === undefined) call.end();
        else call.write({ message: next });
      };
      call.on('data', (reply: EchoReply) => {
        replies.push(reply);
        sendNext();
      });
      call.on('error', (err) => resolve(toCallError(err)));
      call.on('end', () => resolve(replies));
      sendNext();
    });
  } finally {
    client.close();
  }
}
