// Mutual TLS on the xDS/LRS gRPC port: server credentials whose certificate can be replaced without
// rebinding the port, each call's client identity, and refusals (logged with a reason, counted).
//
// grpc-js verifies nothing we can see: a handshake that fails happens below it. So the port asks for a client
// certificate without letting OpenSSL reject it (rejectUnauthorized false), and this module looks at each TLS
// connection as it is established (the underlying Node server's 'secureConnection'): an unverified one is
// closed before HTTP/2 reads a frame, and its verification error names the reason. Every gRPC call checks
// again (grpc-js's auth context is empty for an unverified connection), so nothing unverified is served even
// if that hook were missing.
import { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { nodeServersOf } from '../grpc-bounds.ts';
import type { Logger } from '../log.ts';
import { clientIdentityOf, type ClientIdentity, type RefusalReason } from './client-identity.ts';
import { identityUris } from './pki.ts';

export interface ServerTlsIdentity { ca: string; cert: string; key: string }
type CaListener = (update: { caCertificate: Buffer } | null) => void;
type IdentityListener = (update: { certificate: Buffer; privateKey: Buffer } | null) => void;

/** A grpc-js certificate provider fed from memory: set() pushes a new CA and identity to every bound port. */
export class MemoryCertificateProvider {
  private ca: { caCertificate: Buffer } | null = null;
  private identity: { certificate: Buffer; privateKey: Buffer } | null = null;
  private readonly caListeners = new Set<CaListener>();
  private readonly identityListeners = new Set<IdentityListener>();
  private latest: ServerTlsIdentity | undefined;
  private readonly changeListeners = new Set<(s: ServerTlsIdentity) => void>();

  /** The current server identity (the wake port's HTTPS server reads it too). */
  get current(): ServerTlsIdentity | undefined {
    return this.latest;
  }

  onChange(l: (s: ServerTlsIdentity) => void): void {
    this.changeListeners.add(l);
  }

  set(o: ServerTlsIdentity): void {
    this.latest = o;
    for (const l of this.changeListeners) l(o);
    this.ca = { caCertificate: Buffer.from(o.ca) };
    this.identity = { certificate: Buffer.from(o.cert), privateKey: Buffer.from(o.key) };
    for (const l of this.caListeners) l(this.ca);
    for (const l of this.identityListeners) l(this.identity);
  }

  // The first value is handed over in a microtask: grpc-js registers its own watcher only after adding these
  // listeners, and a synchronous update would reach nobody (the port would then drop every connection).
  addCaCertificateListener(l: CaListener): void {
    this.caListeners.add(l);
    queueMicrotask(() => {
      if (this.ca && this.caListeners.has(l)) l(this.ca);
    });
  }

  removeCaCertificateListener(l: CaListener): void {
    this.caListeners.delete(l);
  }

  addIdentityCertificateListener(l: IdentityListener): void {
    this.identityListeners.add(l);
    queueMicrotask(() => {
      if (this.identity && this.identityListeners.has(l)) l(this.identity);
    });
  }

  removeIdentityCertificateListener(l: IdentityListener): void {
    this.identityListeners.delete(l);
  }
}

export type IdentityCheck = { ok: true; identity: ClientIdentity } | { ok: false; reason: RefusalReason; message: string };

export interface XdsTls {
  provider: MemoryCertificateProvider;
  credentials: grpc.ServerCredentials;
  /**
   * For a Node TLS server that requests a certificate without rejecting (rejectUnauthorized false): an
   * unverified connection is refused (logged, counted, destroyed). True when the socket may go on.
   */
  admitSocket(socket: TLSSocket, port: string): boolean;
  /** The identity of a verified socket's client certificate, or why there is none. */
  identityOfSocket(socket: TLSSocket): IdentityCheck;
  /** Called for each refusal (connection or call) with its reason. */
  onRefused(listener: (reason: RefusalReason, detail: Record<string, unknown>) => void): void;
  /** Attach to the bound server's TLS listeners (after bindAsync). */
  observe(server: grpc.Server): boolean;
  /** The identity of a call's client certificate, or a refusal. */
  identityOf(call: { getAuthContext(): { transportSecurityType?: string; sslPeerCertificate?: import('node:tls').PeerCertificate }; getPeer(): string }): IdentityCheck;
  refuse(reason: RefusalReason, detail: Record<string, unknown>): void;
}

/**
 * `wholeModelGateway`: in file mode, the gateway (`<namespace>/<name>`) the file describes: its Envoys are served
 * the default group (the whole file), the snapshot they had before certificates existed.
 */
export function createXdsTls(provider: MemoryCertificateProvider, log: Logger, options: { wholeModelGateway?: string } = {}): XdsTls {
  const credentials = grpc.experimental.createCertificateProviderServerCredentials(provider, provider, false);
  const listeners: ((reason: RefusalReason, detail: Record<string, unknown>) => void)[] = [];
  const refuse = (reason: RefusalReason, detail: Record<string, unknown>): void => {
    log.warn('refused an xDS client', { reason, ...detail });
    for (const l of listeners) l(reason, detail);
  };
  const admitSocket = (socket: TLSSocket, port: string): boolean => {
    if (socket.authorized) {
      retireNearExpiry(socket, port, log);
      return true;
    }
    refuse(classify(socket), { port, peer: `${socket.remoteAddress}:${socket.remotePort}`, error: String(socket.authorizationError ?? 'no certificate') });
    socket.destroy();
    return false;
  };
  const identityOfCertificate = (cert: import('node:tls').PeerCertificate | undefined): IdentityCheck => {
    if (!cert?.raw) return { ok: false, reason: 'no_certificate', message: "this port requires a client certificate issued by the control plane's CA" };
    const x509 = new X509Certificate(cert.raw);
    const uris = identityUris(x509.toString());
    const found = clientIdentityOf(uris);
    if (!found) return { ok: false, reason: 'no_identity', message: `the client certificate names no gateway (URI SANs: ${uris.join(', ') || 'none'})` };
    const wholeModel = found.kind === 'gateway' && found.gateway === options.wholeModelGateway;
    return { ok: true, identity: { ...found, serial: x509.serialNumber, ...(wholeModel ? { wholeModel } : {}) } };
  };
  return {
    provider,
    credentials,
    admitSocket,
    identityOfSocket: (socket) => (socket.authorized ? identityOfCertificate(socket.getPeerCertificate()) : { ok: false, reason: 'no_certificate', message: 'the TLS connection is not verified' }),
    onRefused: (l) => void listeners.push(l),
    refuse,
    observe(server) {
      const servers = nodeServersOf(server);
      if (servers === undefined) {
        log.warn('cannot observe TLS connections on the xDS port (grpc-js internals changed): refusals are counted per call only');
        return false;
      }
      for (const s of servers) {
        const tlsServer = s as import('node:tls').Server;
        if (typeof tlsServer.prependListener !== 'function') continue;
        tlsServer.prependListener('secureConnection', (socket: TLSSocket) => void admitSocket(socket, 'xds'));
        tlsServer.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
          refuse('handshake_failed', { port: 'xds', peer: `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`, error: err.code ?? err.message });
        });
      }
      return true;
    },
    identityOf(call) {
      const auth = call.getAuthContext();
      return auth.transportSecurityType === 'ssl' ? identityOfCertificate(auth.sslPeerCertificate) : identityOfCertificate(undefined);
    },
  };
}

/**
 * When a verified connection is closed so that its client reconnects with its renewed certificate: with a
 * quarter of the certificate's life left, less a random part of a twenty-fourth so a fleet does not reconnect
 * at once (renewal comes earlier, with a third left: file mode, and the Kubernetes Secrets). A connection
 * made later than that (its client has no newer certificate) is closed when its certificate expires, so an
 * expired or no longer renewed certificate keeps no connection open. TLS checks a certificate only at the
 * handshake; this is what makes a renewal reach long-lived ADS and LRS connections, and what ends them.
 */
export function retireAt(validFromMs: number, validToMs: number, nowMs: number, random: () => number = Math.random): number {
  const life = Math.max(0, validToMs - validFromMs);
  const at = validToMs - life / 4 - random() * (life / 24);
  return at > nowMs ? at : validToMs;
}

// setTimeout takes at most 2^31-1 ms (24.8 days); longer waits re-arm.
const MAX_TIMER_MS = 2 ** 31 - 1;

function retireNearExpiry(socket: TLSSocket, port: string, log: Logger): void {
  const cert = socket.getPeerCertificate();
  const from = Date.parse(cert?.valid_from ?? '');
  const to = Date.parse(cert?.valid_to ?? '');
  if (!Number.isFinite(from) || !Number.isFinite(to)) return;
  const at = retireAt(from, to, Date.now());
  let timer: NodeJS.Timeout | undefined;
  const arm = (): void => {
    const delay = Math.max(0, at - Date.now());
    timer = setTimeout(() => {
      if (delay > MAX_TIMER_MS) return arm();
      if (socket.destroyed) return;
      log.info('closing a connection whose client certificate is near its end: the client reconnects with its renewed one', {
        port,
        peer: `${socket.remoteAddress}:${socket.remotePort}`,
        serial: cert.serialNumber,
        validTo: cert.valid_to,
      });
      socket.destroy();
    }, Math.min(delay, MAX_TIMER_MS));
    timer.unref();
  };
  arm();
  socket.once('close', () => clearTimeout(timer));
}

function classify(socket: TLSSocket): RefusalReason {
  const peer = socket.getPeerCertificate();
  if (!peer || Object.keys(peer).length === 0) return 'no_certificate';
  const code = String(socket.authorizationError ?? '');
  if (code === 'CERT_HAS_EXPIRED') return 'expired';
  if (code === 'CERT_NOT_YET_VALID') return 'not_yet_valid';
  if (['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'CERT_SIGNATURE_FAILURE'].includes(code)) return 'unknown_ca';
  return 'invalid_certificate';
}
