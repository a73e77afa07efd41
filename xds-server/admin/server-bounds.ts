// Bounds on the admin port's HTTP server itself (below Koa): a client that sends its request slowly, or
// opens connections without end, is cut off; the routes' own limits (body 16 KiB, wake call rates) sit above.
import type http from 'node:http';
import type { Logger } from '../log.ts';

export interface AdminServerBounds {
  /** The request line and headers must arrive within this (slowloris); then 408 and the connection closes. */
  headersTimeoutMs: number;
  /** The whole request (headers and body) must arrive within this. The answer may take longer (wakes, SSE). */
  requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this. */
  keepAliveTimeoutMs: number;
  /** Open connections; more are dropped at accept (counted: stz_admin_connections_refused_total). */
  maxConnections: number;
}

export const DEFAULT_ADMIN_SERVER_BOUNDS: AdminServerBounds = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  maxConnections: 1_024,
};

/** Applies the bounds; `count` is set by the caller once metrics exist (connections dropped at the cap). */
export function applyAdminServerBounds(server: http.Server, b: AdminServerBounds, log: Logger): { count: () => void } {
  server.headersTimeout = b.headersTimeoutMs;
  server.requestTimeout = b.requestTimeoutMs;
  server.keepAliveTimeout = b.keepAliveTimeoutMs;
  server.maxConnections = b.maxConnections;
  const dropped = { count: (): void => {} };
  let lastLog = 0;
  server.on('drop', () => {
    dropped.count();
    // At most one line per 10 s: a flood must not become a log flood.
    const now = Date.now();
    if (now - lastLog >= 10_000) {
      lastLog = now;
      log.warn('admin connection dropped: the connection cap is reached', { maxConnections: b.maxConnections });
    }
  });
  return dropped;
}
