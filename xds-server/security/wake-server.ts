// The filter's wake calls over mutual TLS: an HTTPS listener of its own that serves only
// POST /v1/wake/{name}, to clients with a certificate from our CA, and only for a backend the caller's gateway
// routes to. Everything else (the admin API, the status page) stays on the admin port. Allowed calls go to the
// admin app's own wake route, so its validation, rate limits and metrics apply unchanged.
import http from 'node:http';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { WAKE_PATH_PREFIX } from '../../snapshots/names.ts';
import type { XdsTls } from './xds-tls.ts';

export interface WakeServerOptions {
  tls: XdsTls;
  /** May this gateway (`<namespace>/<name>`) wake this host? (a host it does not route: no) */
  routes: (gateway: string, host: string) => boolean;
  /** The admin app, which answers the call (read at each request: it is installed after start-up). */
  forward: () => http.RequestListener;
}

const JSON_TYPE = { 'content-type': 'application/json' };

function answer(res: http.ServerResponse, status: number, error: string, message: string): void {
  res.writeHead(status, JSON_TYPE).end(JSON.stringify({ error, message }));
}

export function createWakeServer(o: WakeServerOptions): https.Server {
  const identity = o.tls.provider.current;
  if (!identity) throw new Error('the wake port needs the server certificate first');
  const server = https.createServer({ ca: identity.ca, cert: identity.cert, key: identity.key, requestCert: true, rejectUnauthorized: false }, (req, res) => {
    const url = new URL(req.url ?? '/', 'https://wake.invalid');
    if (!url.pathname.startsWith(WAKE_PATH_PREFIX) || url.pathname.length === WAKE_PATH_PREFIX.length || url.pathname.slice(WAKE_PATH_PREFIX.length).includes('/')) {
      answer(res, 404, 'not_found', `this port serves only POST ${WAKE_PATH_PREFIX}{name}; the admin API is on the admin port`);
      return;
    }
    const who = o.tls.identityOfSocket(req.socket as TLSSocket);
    if (!who.ok) {
      o.tls.refuse(who.reason, { port: 'wake', peer: req.socket.remoteAddress, error: who.message });
      answer(res, 403, 'forbidden', who.message);
      return;
    }
    let host: string;
    try {
      host = decodeURIComponent(url.pathname.slice(WAKE_PATH_PREFIX.length));
    } catch {
      answer(res, 400, 'invalid_request', 'the host name in the path is not valid percent-encoding');
      return;
    }
    if (who.identity.kind === 'gateway' && !o.routes(who.identity.gateway, host)) {
      const message = `gateway ${who.identity.gateway} does not route host "${host}": its Envoys may not wake it`;
      o.tls.refuse('wake_not_routed', { port: 'wake', peer: req.socket.remoteAddress, certificate: who.identity.uri, host, error: message });
      answer(res, 403, 'forbidden', message);
      return;
    }
    o.forward()(req, res);
  });
  server.prependListener('secureConnection', (socket: TLSSocket) => void o.tls.admitSocket(socket, 'wake'));
  server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
    o.tls.refuse('handshake_failed', { port: 'wake', peer: socket.remoteAddress, error: err.code ?? err.message });
  });
  // A re-issued server certificate serves the next connections; open ones keep theirs.
  o.tls.provider.onChange((s) => server.setSecureContext({ ca: s.ca, cert: s.cert, key: s.key }));
  return server;
}
