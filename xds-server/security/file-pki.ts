// File mode's certificates, kept in <state-dir>/pki/: a local CA, the control plane's server certificate and
// the file gateway's Envoy client certificate. Created on first start, reused after, re-issued before they
// expire. Envoy reads its files through SDS (path_config_source): the certificate directory is swapped by a
// symlink rename (as Kubernetes does for mounted Secrets), which Envoy's watched_directory sees, so a
// rotation needs no Envoy restart and Envoy never reads a new certificate with an old key.
import { X509Certificate } from 'node:crypto';
import { chmod, mkdir, readFile, readdir, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../log.ts';
import { SDS_CA_SECRET, SDS_CERTIFICATE_SECRET } from '../../snapshots/control-plane-tls.ts';
import { CONTROL_PLANE_IDENTITY, createCertificateAuthority, gatewayIdentity, issueCertificate, type PemPair } from './pki.ts';

/** The gateway a file-mode config describes, as its Envoys' certificates name it. */
export const FILE_GATEWAY = { namespace: 'file', name: 'gateway' } as const;
export const FILE_GATEWAY_IDENTITY = gatewayIdentity(FILE_GATEWAY.namespace, FILE_GATEWAY.name);

const DAY = 24 * 3600 * 1000;
export const CA_LIFETIME_MS = 10 * 365 * DAY;
/** Leaf certificates (control plane and Envoy) live 30 days and are re-issued when a third of that is left. */
export const LEAF_LIFETIME_MS = 30 * DAY;
export const RENEW_WHEN_REMAINING = 1 / 3;

const SECRET_TYPE = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret';

export interface FilePkiOptions {
  stateDir: string;
  log: Logger;
  /** Leaf lifetime (tests shorten it to rotate under traffic). */
  leafLifetimeMs?: number;
  /** DNS names and IPs the server certificate is valid for (default localhost, 127.0.0.1, ::1). */
  serverNames?: { dnsNames: string[]; ipAddresses: string[] };
  now?: () => Date;
}

export interface EnvoyTlsFiles {
  /** The directory of the SDS files Envoy's bootstrap points at. */
  dir: string;
  certificateSds: string;
  caSds: string;
}

export interface ServerIdentity { ca: string; cert: string; key: string }

/** Where the file gateway's Envoy finds its SDS files (scripts/stack.ts renders the bootstrap from these). */
export function envoyTlsFiles(stateDir: string): EnvoyTlsFiles {
  const dir = path.join(stateDir, 'pki', 'envoy');
  return { dir, certificateSds: path.join(dir, 'sds-certificate.yaml'), caSds: path.join(dir, 'sds-ca.yaml') };
}

export class FilePki {
  readonly dir: string;
  private ca!: PemPair;
  private server!: PemPair;
  private envoy!: PemPair;
  private timer: NodeJS.Timeout | undefined;
  private readonly listeners = new Set<(s: ServerIdentity) => void>();
  private readonly leafLifetimeMs: number;
  private readonly now: () => Date;

  private constructor(private readonly options: FilePkiOptions) {
    this.dir = path.join(options.stateDir, 'pki');
    this.leafLifetimeMs = options.leafLifetimeMs ?? LEAF_LIFETIME_MS;
    this.now = options.now ?? (() => new Date());
  }

  /** Loads the state directory's PKI, creating or re-issuing what is missing or due. */
  static async open(options: FilePkiOptions): Promise<FilePki> {
    const pki = new FilePki(options);
    await pki.load();
    return pki;
  }

  get envoyFiles(): EnvoyTlsFiles {
    return envoyTlsFiles(this.options.stateDir);
  }

  get serverIdentity(): ServerIdentity {
    return { ca: this.ca.certPem, cert: this.server.certPem, key: this.server.keyPem };
  }

  get caPair(): PemPair {
    return this.ca;
  }

  /** Called with the new server identity after a re-issue. */
  onServerIdentity(listener: (s: ServerIdentity) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Checks the leaf certificates periodically (a tenth of their lifetime, 1 s to 1 h) and re-issues when due. */
  startRenewal(): void {
    const every = Math.max(1_000, Math.min(3600_000, this.leafLifetimeMs / 10));
    this.timer = setInterval(() => {
      this.renewDue().catch((err: Error) => this.options.log.error('certificate renewal failed; will retry', { error: err.message }));
    }, every);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Re-issues both leaf certificates now (the rotation test, and an operator who wants it). */
  async rotate(): Promise<void> {
    await this.issueServer('rotation requested');
    await this.issueEnvoy('rotation requested');
  }

  async renewDue(): Promise<void> {
    if (this.due(this.server.certPem)) await this.issueServer('due for renewal');
    if (this.due(this.envoy.certPem)) await this.issueEnvoy('due for renewal');
  }

  /** Due when a third of the configured lifetime is left (notBefore is backdated for clock skew: not used). */
  private due(certPem: string): boolean {
    const to = new Date(new X509Certificate(certPem).validTo).getTime();
    return to - this.now().getTime() <= this.leafLifetimeMs * RENEW_WHEN_REMAINING;
  }

  private async load(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const existing = await readPair(path.join(this.dir, 'ca'));
    if (existing && new Date(new X509Certificate(existing.certPem).validTo).getTime() > this.now().getTime() + this.leafLifetimeMs) {
      this.ca = existing;
    } else {
      this.ca = await createCertificateAuthority({ commonName: 'scale-to-zero local CA', validForMs: CA_LIFETIME_MS, now: this.now() });
      await writePair(path.join(this.dir, 'ca'), this.ca);
      this.options.log.info('created a local certificate authority for mutual TLS on xDS', { dir: this.dir, expires: new X509Certificate(this.ca.certPem).validTo });
    }
    const server = await readPair(path.join(this.dir, 'control-plane'));
    if (server && this.signedByCa(server.certPem) && !this.due(server.certPem)) this.server = server;
    else await this.issueServer(server ? 'due for renewal or from another CA' : 'first start');
    const envoy = await readPair(path.join(this.envoyFiles.dir, 'current', 'tls'));
    if (envoy && this.signedByCa(envoy.certPem) && !this.due(envoy.certPem)) {
      this.envoy = envoy;
      await this.writeSdsFiles();
    } else await this.issueEnvoy(envoy ? 'due for renewal or from another CA' : 'first start');
  }

  private signedByCa(certPem: string): boolean {
    try {
      return new X509Certificate(certPem).verify(new X509Certificate(this.ca.certPem).publicKey);
    } catch {
      return false;
    }
  }

  private async issueServer(why: string): Promise<void> {
    const names = this.options.serverNames ?? { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1', '::1'] };
    this.server = await issueCertificate(this.ca, { commonName: 'scale-to-zero control plane', role: 'server', uris: [CONTROL_PLANE_IDENTITY], ...names, validForMs: this.leafLifetimeMs, now: this.now() });
    await writePair(path.join(this.dir, 'control-plane'), this.server);
    const c = new X509Certificate(this.server.certPem);
    this.options.log.info('issued the control plane\'s xDS server certificate', { why, serial: c.serialNumber, expires: c.validTo });
    for (const l of this.listeners) l(this.serverIdentity);
  }

  private async issueEnvoy(why: string): Promise<void> {
    this.envoy = await issueCertificate(this.ca, { commonName: 'scale-to-zero envoy (file gateway)', role: 'client', uris: [FILE_GATEWAY_IDENTITY], validForMs: this.leafLifetimeMs, now: this.now() });
    const files = this.envoyFiles;
    await mkdir(files.dir, { recursive: true, mode: 0o700 });
    const serial = new X509Certificate(this.envoy.certPem).serialNumber;
    // A new directory per certificate, then one atomic rename of the `current` symlink: Envoy sees the move in
    // the watched directory and reads a consistent certificate, key and CA.
    const version = `v-${Date.now()}-${serial.slice(0, 8).toLowerCase()}`;
    const versionDir = path.join(files.dir, version);
    await mkdir(versionDir, { mode: 0o700 });
    await writePair(path.join(versionDir, 'tls'), this.envoy);
    await writeFile(path.join(versionDir, 'ca.crt'), this.ca.certPem);
    const tmpLink = path.join(files.dir, `.current-${version}`);
    await symlink(version, tmpLink);
    const previous = await readlink(path.join(files.dir, 'current')).catch(() => undefined);
    await rename(tmpLink, path.join(files.dir, 'current'));
    await this.writeSdsFiles();
    // Keep the previous version (a reader may still hold its paths); drop older ones.
    for (const entry of await readdir(files.dir)) {
      if (entry.startsWith('v-') && entry !== version && entry !== previous) await rm(path.join(files.dir, entry), { recursive: true, force: true });
    }
    this.options.log.info('issued the Envoy client certificate', { why, identity: FILE_GATEWAY_IDENTITY, serial, expires: new X509Certificate(this.envoy.certPem).validTo, dir: files.dir });
  }

  /** The SDS files name paths under `current`, so they never change; written only when missing or different. */
  private async writeSdsFiles(): Promise<void> {
    const files = this.envoyFiles;
    const current = path.join(files.dir, 'current');
    const cert = {
      resources: [{
        '@type': SECRET_TYPE,
        name: SDS_CERTIFICATE_SECRET,
        tls_certificate: {
          certificate_chain: { filename: path.join(current, 'tls.crt') },
          private_key: { filename: path.join(current, 'tls.key') },
          watched_directory: { path: files.dir },
        },
      }],
    };
    const ca = {
      resources: [{
        '@type': SECRET_TYPE,
        name: SDS_CA_SECRET,
        validation_context: { trusted_ca: { filename: path.join(current, 'ca.crt') }, watched_directory: { path: files.dir } },
      }],
    };
    await writeIfChanged(files.certificateSds, JSON.stringify(cert, null, 2) + '\n');
    await writeIfChanged(files.caSds, JSON.stringify(ca, null, 2) + '\n');
  }
}

async function writeIfChanged(file: string, text: string): Promise<void> {
  const old = await readFile(file, 'utf8').catch(() => undefined);
  if (old === text) return;
  const tmp = `${file}.tmp`;
  await writeFile(tmp, text);
  await rename(tmp, file);
}

async function readPair(base: string): Promise<PemPair | undefined> {
  try {
    return { certPem: await readFile(`${base}.crt`, 'utf8'), keyPem: await readFile(`${base}.key`, 'utf8') };
  } catch {
    return undefined;
  }
}

/** The key is written 0600 (and chmod-ed: the umask may not allow writeFile's mode to narrow an existing file). */
async function writePair(base: string, pair: PemPair): Promise<void> {
  const keyTmp = `${base}.key.tmp`;
  await writeFile(keyTmp, pair.keyPem, { mode: 0o600 });
  await chmod(keyTmp, 0o600);
  await rename(keyTmp, `${base}.key`);
  const certTmp = `${base}.crt.tmp`;
  await writeFile(certTmp, pair.certPem, { mode: 0o644 });
  await rename(certTmp, `${base}.crt`);
}
