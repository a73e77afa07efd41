// Certificate authority and leaf certificates for mutual TLS between Envoy and the control plane.
// Pure over PEM strings (no file or network IO) so file mode and Kubernetes mode share it and the
// unit tests check it with node:crypto. ECDSA P-256: key generation is fast enough to run at start.
import { webcrypto, X509Certificate as NodeX509 } from 'node:crypto';
import type * as X509 from '@peculiar/x509';

export interface PemPair { certPem: string; keyPem: string }

export type CertificateRole = 'server' | 'client' | 'both';

export interface IssueOptions {
  commonName: string;
  role: CertificateRole;
  uris?: string[];
  dnsNames?: string[];
  ipAddresses?: string[];
  validForMs: number;
  now?: Date;
}

/** The SPIFFE-style trust domain every identity of this project lives in. */
const TRUST_DOMAIN = 'scaletozero.dev';
// Lives with the xDS builders (Envoy checks it); the value is spiffe://scaletozero.dev/control-plane.
export { CONTROL_PLANE_IDENTITY } from '../../snapshots/control-plane-tls.ts';
/** Leaf certificates start this far in the past so a peer whose clock is a little behind accepts them. */
const CLOCK_SKEW_MS = 5 * 60 * 1000;

const subtle = webcrypto.subtle as unknown as SubtleCrypto;
const crypto = webcrypto as unknown as Crypto;
const keyAlgorithm: EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };
const signingAlgorithm: EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };

// @peculiar/x509 (and what it pulls in: ~3 MiB of heap and ~5 MiB of RSS in all) is loaded when a certificate
// is first issued, not at start: a control plane serving plaintext xDS never issues one. Everything else here
// reads certificates with node:crypto.
let x509!: typeof X509;
let x509Loading: Promise<void> | undefined;

function x509Loaded(): Promise<void> {
  return (x509Loading ??= (async () => {
    // @peculiar/x509 (through tsyringe) needs the Reflect metadata API loaded before it.
    await import('reflect-metadata');
    const loaded = await import('@peculiar/x509');
    loaded.cryptoProvider.set(crypto);
    x509 = loaded;
  })());
}

export async function createCertificateAuthority(o: { commonName: string; validForMs: number; now?: Date }): Promise<PemPair> {
  requireValidity(o.validForMs);
  await x509Loaded();
  const now = o.now ?? new Date();
  const keys = await subtle.generateKey(keyAlgorithm, true, ['sign', 'verify']) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: distinguishedName(o.commonName),
    notBefore: new Date(now.getTime() - CLOCK_SKEW_MS),
    notAfter: new Date(now.getTime() + o.validForMs),
    signingAlgorithm,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem') + '\n', keyPem: await privateKeyPem(keys.privateKey) };
}

export async function issueCertificate(ca: PemPair, o: IssueOptions): Promise<PemPair> {
  requireValidity(o.validForMs);
  await x509Loaded();
  const now = o.now ?? new Date();
  const caCert = new x509.X509Certificate(ca.certPem);
  const caKey = await importPrivateKey(ca.keyPem);
  const keys = await subtle.generateKey(keyAlgorithm, true, ['sign', 'verify']) as CryptoKeyPair;
  const names: X509.JsonGeneralNames = [
    ...(o.uris ?? []).map(value => ({ type: 'url' as const, value })),
    ...(o.dnsNames ?? []).map(value => ({ type: 'dns' as const, value })),
    ...(o.ipAddresses ?? []).map(value => ({ type: 'ip' as const, value })),
  ];
  const usages: string[] = [];
  if (o.role === 'server' || o.role === 'both') usages.push(x509.ExtendedKeyUsage.serverAuth);
  if (o.role === 'client' || o.role === 'both') usages.push(x509.ExtendedKeyUsage.clientAuth);
  const extensions: X509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
    new x509.ExtendedKeyUsageExtension(usages, false),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey),
  ];
  if (names.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(names, false));
  const caNotAfter = caCert.notAfter.getTime();
  const notAfter = new Date(Math.min(now.getTime() + o.validForMs, caNotAfter));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: distinguishedName(o.commonName),
    issuer: caCert.subject,
    notBefore: new Date(now.getTime() - CLOCK_SKEW_MS),
    notAfter,
    signingAlgorithm,
    publicKey: keys.publicKey,
    signingKey: caKey,
    extensions,
  });
  return { certPem: cert.toString('pem') + '\n', keyPem: await privateKeyPem(keys.privateKey) };
}

export function gatewayIdentity(namespace: string, name: string): string {
  return `spiffe://${TRUST_DOMAIN}/ns/${encodeURIComponent(namespace)}/gateway/${encodeURIComponent(name)}`;
}

const GATEWAY_IDENTITY = new RegExp(`^spiffe://${TRUST_DOMAIN.replace(/\./g, '\\.')}/ns/([^/]+)/gateway/([^/]+)$`);

export function parseGatewayIdentity(uri: string): { namespace: string; name: string } | undefined {
  const m = GATEWAY_IDENTITY.exec(uri);
  if (m === null) return undefined;
  try {
    const namespace = decodeURIComponent(m[1]!);
    const name = decodeURIComponent(m[2]!);
    if (namespace === '' || name === '') return undefined;
    return { namespace, name };
  } catch {
    return undefined;
  }
}

export function certificateExpiry(certPem: string): Date {
  return new Date(new NodeX509(certPem).validTo);
}

export function identityUris(certPem: string): string[] {
  const san = new NodeX509(certPem).subjectAltName;
  if (san === undefined) return [];
  return parseSubjectAltName(san).filter(n => n.type === 'URI').map(n => n.value);
}

/**
 * node:crypto renders SANs as `URI:a, DNS:b`; values that contain a comma or quote are JSON-quoted
 * (`URI:"a,b"`), so split with that quoting in mind instead of on every comma.
 */
function parseSubjectAltName(san: string): { type: string; value: string }[] {
  const out: { type: string; value: string }[] = [];
  const re = /\s*([A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,]*)(?:,|$)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(san)) !== null && m[0] !== '') {
    const raw = m[2]!;
    out.push({ type: m[1]!.trim(), value: raw.startsWith('"') ? JSON.parse(raw) as string : raw });
  }
  return out;
}

function requireValidity(validForMs: number): void {
  if (!Number.isFinite(validForMs) || validForMs <= 0) throw new RangeError(`validForMs must be a positive number of milliseconds, got ${validForMs}`);
}

function distinguishedName(commonName: string): string {
  // The DN string syntax treats , + = " \ < > ; as special: escape them so a name cannot add attributes.
  return `CN=${commonName.replace(/([,+="\\<>;])/g, '\\$1')}`;
}

function randomSerial(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] = bytes[0]! & 0x7f; // a positive INTEGER
  if (bytes[0] === 0) bytes[0] = 1;
  return Buffer.from(bytes).toString('hex');
}

async function privateKeyPem(key: CryptoKey): Promise<string> {
  const der = await subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY') + '\n';
}

async function importPrivateKey(pem: string): Promise<CryptoKey> {
  const der = x509.PemConverter.decode(pem)[0];
  if (der === undefined) throw new Error('CA private key: no PEM block found');
  return subtle.importKey('pkcs8', der, keyAlgorithm, false, ['sign']);
}
