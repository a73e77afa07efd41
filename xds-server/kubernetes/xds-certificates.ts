// The xDS mTLS certificates in Kubernetes mode, with the control plane as the certificate authority:
//  - The CA lives in one Secret in the control plane's namespace, created once: the first replica to find it
//    missing generates it and creates the Secret; a replica that loses that race (409 AlreadyExists) reads
//    the winner's. Every replica then holds the CA in memory.
//  - Each replica issues its own server certificate from it, in memory (CONTROL_PLANE_IDENTITY plus the DNS
//    names the Envoys dial), and issues a new one before the old expires.
//  - The leader writes one client certificate per Gateway of our class into a Secret in the same namespace
//    (kubernetes.io/tls: tls.crt, tls.key, ca.crt), named for the Gateway, and writes a new one before the old
//    expires. The gateway's Envoy Deployment mounts that Secret; the kubelet updates the mounted files in
//    place (an atomic directory swap), and Envoy reads them through SDS with a watched directory, so a new
//    certificate is used without restarting Envoy, on new connections.
// Why not cert-manager: it is one more operator to install and trust for a two-party channel we own on both
// ends, and its Certificate would still need our identity URI; a cert-manager user can instead write the same
// Secrets (same names and keys, an Issuer of their own whose CA is the CA Secret's ca.crt) and leave the CA
// Secret in place: the control plane only writes a Gateway's Secret when it is missing, about to expire or
// not issued by the CA (README "xDS certificates in Kubernetes mode").
import { createHash } from 'node:crypto';
import type { Clock } from '../clock.ts';
import type { Logger } from '../log.ts';
import { certificateExpiry, CONTROL_PLANE_IDENTITY, createCertificateAuthority, gatewayIdentity, identityUris, issueCertificate, type PemPair } from '../security/pki.ts';
import { KubeApiError, type KubeClient, type KubeObject } from './rest.ts';

export const CA_SECRET_NAME = 'envoy-scale-to-zero-xds-ca';
/**
 * Where a gateway's Envoy finds the SDS files that read its mounted certificate Secret (deploy/gateway.yaml's
 * ConfigMap mount): the wake calls' cluster in the snapshot names them, as the bootstrap's xDS cluster does.
 */
export const DEFAULT_ENVOY_SDS_DIR = '/etc/envoy-bootstrap';
export const ENVOY_SDS_FILE_NAMES = { certificate: 'sds-certificate.yaml', ca: 'sds-ca.yaml' } as const;
/** The mTLS wake port in Kubernetes mode (a Service exposes it, so it is fixed). */
export const DEFAULT_KUBERNETES_WAKE_PORT = 9903;
/** Labels on every gateway certificate Secret: whose it is. */
export const GATEWAY_NAMESPACE_LABEL = 'scaletozero.dev/gateway-namespace';
export const GATEWAY_NAME_LABEL = 'scaletozero.dev/gateway-name';
/** What the control plane does with Secrets in its own namespace (deploy/rbac.yaml; the deploy test checks it). */
export const CERTIFICATE_SECRET_VERBS = ['create', 'update'] as const;

export interface XdsCertificateTiming {
  /** Validity of the CA (default 10 years): rotating it is a manual step (README). */
  caValidForMs: number;
  /** Validity of server and client certificates (default 72 h). */
  certValidForMs: number;
  /** A certificate with less than this left is replaced (default 24 h: a day of slack if the leader is away). */
  renewBeforeMs: number;
  /** How often the leader checks the Gateways' Secrets, and each replica its server certificate (default 60 s). */
  checkIntervalMs: number;
}

export const DEFAULT_XDS_CERTIFICATE_TIMING: XdsCertificateTiming = {
  caValidForMs: 10 * 365 * 24 * 3600_000,
  certValidForMs: 72 * 3600_000,
  renewBeforeMs: 24 * 3600_000,
  checkIntervalMs: 60_000,
};

export interface GatewayName {
  namespace: string;
  name: string;
}

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/**
 * The Secret that holds a Gateway's client certificate: `xds-client-<ns>.<name>` (a namespace has no dot, so
 * no two Gateways share it), hashed when longer than a Secret name may be.
 */
export function gatewaySecretName(gw: GatewayName): string {
  const plain = `xds-client-${gw.namespace}.${gw.name}`;
  if (plain.length <= 253 && DNS_SUBDOMAIN.test(plain)) return plain;
  const hash = createHash('sha256').update(`${gw.namespace}/${gw.name}`).digest('hex').slice(0, 16);
  return `${plain.slice(0, 253 - 17).replace(/[-.]+$/, '')}-${hash}`;
}

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
const unb64 = (s: unknown): string | undefined => (typeof s === 'string' ? Buffer.from(s, 'base64').toString('utf8') : undefined);

function secretPath(namespace: string, name?: string): string {
  return `/api/v1/namespaces/${namespace}/secrets${name !== undefined ? `/${name}` : ''}`;
}

function pairOf(secret: KubeObject): PemPair | undefined {
  const data = (secret.data ?? {}) as Record<string, string>;
  const certPem = unb64(data['tls.crt']);
  const keyPem = unb64(data['tls.key']);
  return certPem && keyPem ? { certPem, keyPem } : undefined;
}

const isStatus = (err: unknown, status: number): boolean => err instanceof KubeApiError && err.status === status;

/**
 * The CA from its Secret, creating both when there is none. Of replicas racing to create it the API server
 * accepts one; the others get 409 and read what it wrote.
 */
export async function loadOrCreateCa(client: KubeClient, namespace: string, clock: Pick<Clock, 'now'>, log: Logger, timing: Pick<XdsCertificateTiming, 'caValidForMs'> = DEFAULT_XDS_CERTIFICATE_TIMING): Promise<PemPair> {
  const read = async (): Promise<PemPair | undefined> => {
    try {
      const secret = await client.get(secretPath(namespace, CA_SECRET_NAME));
      const pair = pairOf(secret);
      if (!pair) throw new Error(`Secret ${namespace}/${CA_SECRET_NAME} has no tls.crt and tls.key: delete it to have a new CA generated`);
      return pair;
    } catch (err) {
      if (isStatus(err, 404)) return undefined;
      throw err;
    }
  };
  const existing = await read();
  if (existing) return existing;
  const ca = await createCertificateAuthority({ commonName: 'envoy-scale-to-zero xDS CA', validForMs: timing.caValidForMs, now: new Date(clock.now()) });
  try {
    await client.request('POST', secretPath(namespace), {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: CA_SECRET_NAME, namespace, labels: { 'app.kubernetes.io/name': 'envoy-scale-to-zero', 'app.kubernetes.io/component': 'xds-ca' } },
      type: 'kubernetes.io/tls',
      data: { 'tls.crt': b64(ca.certPem), 'tls.key': b64(ca.keyPem), 'ca.crt': b64(ca.certPem) },
    });
    log.info('created the xDS certificate authority', { secret: `${namespace}/${CA_SECRET_NAME}`, expires: certificateExpiry(ca.certPem).toISOString() });
    return ca;
  } catch (err) {
    if (!isStatus(err, 409)) throw err;
    const winner = await read();
    if (!winner) throw new Error(`Secret ${namespace}/${CA_SECRET_NAME} was created by another replica but cannot be read`);
    log.info('using the xDS certificate authority another replica created', { secret: `${namespace}/${CA_SECRET_NAME}` });
    return winner;
  }
}

/** A server certificate for this replica: the control plane's identity and the names Envoys dial it by. */
export function issueServerCertificate(ca: PemPair, names: { dnsNames: string[]; ipAddresses?: string[] }, clock: Pick<Clock, 'now'>, timing: Pick<XdsCertificateTiming, 'certValidForMs'> = DEFAULT_XDS_CERTIFICATE_TIMING): Promise<PemPair> {
  return issueCertificate(ca, {
    commonName: 'envoy-scale-to-zero control plane',
    role: 'server',
    uris: [CONTROL_PLANE_IDENTITY],
    dnsNames: names.dnsNames,
    ...(names.ipAddresses ? { ipAddresses: names.ipAddresses } : {}),
    validForMs: timing.certValidForMs,
    now: new Date(clock.now()),
  });
}

/** Why a Gateway's Secret needs a new certificate, or undefined when it is good. */
export function renewalReason(secret: KubeObject | undefined, gw: GatewayName, caCertPem: string, now: number, renewBeforeMs: number): string | undefined {
  if (!secret) return 'no Secret yet';
  const pair = pairOf(secret);
  if (!pair) return 'the Secret has no tls.crt / tls.key';
  if (unb64((secret.data as Record<string, string> | undefined)?.['ca.crt'])?.trim() !== caCertPem.trim()) return 'its ca.crt is not the current CA';
  let expiry: Date;
  let uris: string[];
  try {
    expiry = certificateExpiry(pair.certPem);
    uris = identityUris(pair.certPem);
  } catch (err) {
    return `its certificate cannot be read: ${(err as Error).message}`;
  }
  if (!uris.includes(gatewayIdentity(gw.namespace, gw.name))) return `its certificate names ${uris.join(', ') || 'no identity'}, not the Gateway`;
  if (expiry.getTime() - now < renewBeforeMs) return `it expires at ${expiry.toISOString()}`;
  return undefined;
}

export interface GatewayCertificatesOptions {
  client: KubeClient;
  /** The control plane's namespace: the Secrets go there (where the gateway's Envoy Deployment runs). */
  namespace: string;
  ca: PemPair;
  clock: Clock;
  log: Logger;
  /** The Gateways of our class now. */
  gateways: () => GatewayName[];
  /** A Secret as last seen (the Secrets informer), or undefined. */
  secret: (namespace: string, name: string) => KubeObject | undefined;
  /** Only the leader writes. */
  isLeader: () => boolean;
  timing?: Partial<XdsCertificateTiming>;
}

/** The leader's loop that keeps one fresh client certificate per Gateway in a Secret. */
export class GatewayCertificates {
  readonly timing: XdsCertificateTiming;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  readonly stats = { issued: 0, conflicts: 0, failures: 0 };

  constructor(private readonly options: GatewayCertificatesOptions) {
    this.timing = { ...DEFAULT_XDS_CERTIFICATE_TIMING, ...options.timing };
  }

  start(): void {
    this.kick();
    this.timer = setInterval(() => this.kick(), this.timing.checkIntervalMs);
    this.timer.unref();
  }

  /** Checks now (a Gateway appeared, leadership changed); overlapping calls share one pass. */
  kick(): Promise<void> {
    this.running ??= this.reconcile().finally(() => (this.running = undefined));
    return this.running;
  }

  close(): Promise<void> {
    clearInterval(this.timer);
    return this.running ?? Promise.resolve();
  }

  /** One pass: every Gateway's Secret that is missing, stale or about to expire gets a new certificate. */
  async reconcile(): Promise<void> {
    if (!this.options.isLeader()) return;
    const { client, namespace, ca, clock, log } = this.options;
    for (const gw of this.options.gateways()) {
      const name = gatewaySecretName(gw);
      const current = this.options.secret(namespace, name);
      const why = renewalReason(current, gw, ca.certPem, clock.now(), this.timing.renewBeforeMs);
      if (why === undefined) continue;
      if (!this.options.isLeader()) return;
      try {
        const cert = await issueCertificate(ca, {
          commonName: `${gw.namespace}/${gw.name}`,
          role: 'client',
          uris: [gatewayIdentity(gw.namespace, gw.name)],
          validForMs: this.timing.certValidForMs,
          now: new Date(clock.now()),
        });
        const body: KubeObject = {
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: {
            name,
            namespace,
            labels: { 'app.kubernetes.io/name': 'envoy-scale-to-zero', 'app.kubernetes.io/component': 'xds-client-certificate', [GATEWAY_NAMESPACE_LABEL]: gw.namespace, [GATEWAY_NAME_LABEL]: gw.name },
            ...(current?.metadata.resourceVersion ? { resourceVersion: current.metadata.resourceVersion } : {}),
          },
          type: 'kubernetes.io/tls',
          data: { 'tls.crt': b64(cert.certPem), 'tls.key': b64(cert.keyPem), 'ca.crt': b64(ca.certPem) },
        };
        if (current) await client.request('PUT', secretPath(namespace, name), body);
        else await client.request('POST', secretPath(namespace), body);
        this.stats.issued++;
        log.info('wrote a gateway xDS client certificate', { gateway: `${gw.namespace}/${gw.name}`, secret: `${namespace}/${name}`, why, expires: certificateExpiry(cert.certPem).toISOString() });
      } catch (err) {
        // Another writer was first (or our view of the Secret is behind): the next pass sees its result.
        if (isStatus(err, 409)) {
          this.stats.conflicts++;
          continue;
        }
        this.stats.failures++;
        log.error('could not write a gateway xDS client certificate', { gateway: `${gw.namespace}/${gw.name}`, secret: `${namespace}/${name}`, error: (err as Error).message });
      }
    }
  }
}

/**
 * This replica's server certificate, re-issued in memory before it expires; `onRenewed` hands the new one
 * to the xDS server (new connections use it; open ones keep theirs).
 */
export class ServerCertificate {
  private pair: PemPair | undefined;
  private timer: NodeJS.Timeout | undefined;
  readonly timing: XdsCertificateTiming;

  constructor(
    private readonly ca: PemPair,
    private readonly names: { dnsNames: string[]; ipAddresses?: string[] },
    private readonly clock: Clock,
    private readonly log: Logger,
    timing: Partial<XdsCertificateTiming> = {},
    private readonly onRenewed: (pair: PemPair) => void = () => {},
  ) {
    this.timing = { ...DEFAULT_XDS_CERTIFICATE_TIMING, ...timing };
  }

  async init(): Promise<PemPair> {
    this.pair = await issueServerCertificate(this.ca, this.names, this.clock, this.timing);
    this.timer = setInterval(() => void this.renewIfDue(), this.timing.checkIntervalMs);
    this.timer.unref();
    return this.pair;
  }

  current(): PemPair {
    if (!this.pair) throw new Error('the server certificate is not issued yet (init)');
    return this.pair;
  }

  async renewIfDue(): Promise<boolean> {
    if (!this.pair || certificateExpiry(this.pair.certPem).getTime() - this.clock.now() >= this.timing.renewBeforeMs) return false;
    try {
      this.pair = await issueServerCertificate(this.ca, this.names, this.clock, this.timing);
      this.log.info('renewed the xDS server certificate', { expires: certificateExpiry(this.pair.certPem).toISOString() });
      this.onRenewed(this.pair);
      return true;
    } catch (err) {
      this.log.error('could not renew the xDS server certificate', { error: (err as Error).message });
      return false;
    }
  }

  close(): void {
    clearInterval(this.timer);
  }
}
