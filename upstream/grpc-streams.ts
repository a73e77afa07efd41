// The demo service's streaming methods, so users can try gRPC streaming through the gateway: a server
// stream (EchoStream: n replies, spaced out) and a bidirectional one (EchoChat: one reply per request, as
// each arrives). Bounded: a call cannot ask for more than 1,000 replies or wait more than 10 s between them.
import * as grpc from '@grpc/grpc-js';
import type { EchoReply, EchoRequest, EchoStreamRequest } from './protos.ts';

export const MAX_STREAM_REPLIES = 1_000;
export const MAX_STREAM_INTERVAL_MS = 10_000;

/** Builds the reply to one message: who answered, what arrived, and its place in the stream (from 1). */
export type ReplyFor = (message: string, payload: Buffer, sequence: number) => EchoReply;

export function serveEchoStream(call: grpc.ServerWritableStream<EchoStreamRequest, EchoReply>, replyFor: ReplyFor): void {
  const { message, count, interval_ms: intervalMs } = call.request;
  if (count > MAX_STREAM_REPLIES || intervalMs > MAX_STREAM_INTERVAL_MS) {
    const error: Partial<grpc.StatusObject> = { code: grpc.status.INVALID_ARGUMENT, details: `count must be at most ${MAX_STREAM_REPLIES} and interval_ms at most ${MAX_STREAM_INTERVAL_MS}` };
    call.emit('error', error);
    return;
  }
  const total = Math.max(1, count);
  let sent = 0;
  let timer: NodeJS.Timeout | undefined;
  const next = (): void => {
    if (call.cancelled) return;
    call.write(replyFor(message, Buffer.alloc(0), ++sent));
    if (sent >= total) call.end();
    else timer = setTimeout(next, intervalMs);
  };
  call.on('cancelled', () => clearTimeout(timer));
  next();
}

export function serveEchoChat(call: grpc.ServerDuplexStream<EchoRequest, EchoReply>, replyFor: ReplyFor): void {
  let sequence = 0;
  call.on('data', (request: EchoRequest) => {
    if (!call.cancelled) call.write(replyFor(request.message, request.payload ?? Buffer.alloc(0), ++sequence));
  });
  call.on('end', () => call.end());
  call.on('error', () => {});
}
