// One port for HTTP/1.1 and h2c: a connection is handed to the HTTP/2 server when its first bytes are the
// HTTP/2 preface, else to the HTTP/1.1 server. Used by the demo upstream and by the test harness's pods.
import type { EventEmitter } from 'node:events';
import type net from 'node:net';

export const HTTP2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/**
 * Commits only once the bytes seen either diverge from the preface or contain all of it: a client may send
 * the preface in several segments. The bytes already read are put back before the chosen server reads.
 */
export function routeByPreface(socket: net.Socket, h1: EventEmitter, h2: EventEmitter): void {
  // A peer vanishing mid-connection must not become an uncaught exception.
  socket.on('error', () => {});
  let seen: Buffer = Buffer.alloc(0);
  const onData = (chunk: Buffer): void => {
    seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
    const n = Math.min(seen.length, HTTP2_PREFACE.length);
    const prefaceSoFar = seen.subarray(0, n).equals(HTTP2_PREFACE.subarray(0, n));
    if (prefaceSoFar && seen.length < HTTP2_PREFACE.length) return;
    socket.off('data', onData);
    socket.off('end', onEnd);
    socket.pause();
    socket.unshift(seen);
    (prefaceSoFar ? h2 : h1).emit('connection', socket);
    // Both servers attach their own readers; resuming replays the bytes already taken off the wire first.
    process.nextTick(() => socket.resume());
  };
  const onEnd = (): void => {
    socket.destroy();
  };
  socket.on('data', onData);
  socket.once('end', onEnd);
}
