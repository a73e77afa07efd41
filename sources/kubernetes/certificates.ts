// HTTPS Listeners: tls.certificateRefs -> the PEM certificates Envoy terminates TLS with. A reference must
// name a core Secret (group "", kind Secret) holding `tls.crt` and `tls.key` (kubernetes.io/tls); one in
// another namespace needs a ReferenceGrant from the Gateway's namespace to Secrets. Every certificate is
// parsed and checked against its key here, because Envoy NACKs a listener whose certificate it cannot load
// (and one bad Listener would otherwise stop every listener update). Messages name Secrets, never their
// content; crypto errors are not passed on (they could quote the input).
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import type { TlsCertificateModel } from '../../model/gateway-model.ts';
import { CORE_GROUP, GATEWAY_GROUP, REASON, SECRET_KIND } from './api.ts';
import { referenceAllowed } from './reference-grants.ts';
import type { GatewayTLSConfig, ReferenceGrant, Secret } from './types.ts';

export type TlsResolution = { ok: true; certificates: TlsCertificateModel[] } | { ok: false; reason: string; message: string };

export type SecretIndex = ReadonlyMap<string, Secret>;

export function secretIndex(secrets: readonly Secret[]): SecretIndex {
  return new Map(secrets.map((s) => [`${s.metadata.namespace ?? ''}/${s.metadata.name}`, s]));
}

/** Curves Envoy (BoringSSL) accepts for server certificates. */
const EC_CURVES = new Set(['prime256v1', 'secp384r1', 'secp521r1']);
const MIN_RSA_BITS = 2048;

export function resolveCertificateRefs(tls: GatewayTLSConfig, gatewayNamespace: string, secrets: SecretIndex, grants: readonly ReferenceGrant[]): TlsResolution {
  const refs = tls.certificateRefs ?? [];
  if (refs.length === 0) return { ok: false, reason: REASON.InvalidCertificateRef, message: 'tls.certificateRefs is empty: an HTTPS listener needs a certificate' };
  const certificates: TlsCertificateModel[] = [];
  const keyTypes = new Map<string, string>();
  for (const ref of refs) {
    const namespace = ref.namespace ?? gatewayNamespace;
    const where = `Secret ${namespace}/${ref.name}`;
    if ((ref.group ?? CORE_GROUP) !== CORE_GROUP || (ref.kind ?? SECRET_KIND) !== SECRET_KIND) {
      return { ok: false, reason: REASON.InvalidCertificateRef, message: `certificateRef ${ref.group ? `${ref.group}/` : ''}${ref.kind ?? SECRET_KIND} ${ref.name}: only core Secrets are supported` };
    }
    const allowed = referenceAllowed(
      grants,
      { group: GATEWAY_GROUP, kind: 'Gateway', namespace: gatewayNamespace },
      { group: CORE_GROUP, kind: SECRET_KIND, namespace, name: ref.name },
    );
    if (!allowed) return { ok: false, reason: REASON.RefNotPermitted, message: `${where} is in another namespace and no ReferenceGrant there allows it` };
    const secret = secrets.get(`${namespace}/${ref.name}`);
    if (!secret) return { ok: false, reason: REASON.InvalidCertificateRef, message: `${where} does not exist` };
    const verdict = checkSecret(secret);
    if (!verdict.ok) return { ok: false, reason: REASON.InvalidCertificateRef, message: `${where}: ${verdict.problem}` };
    const other = keyTypes.get(verdict.keyType);
    if (other !== undefined) return { ok: false, reason: REASON.InvalidCertificateRef, message: `${where} and ${other} both hold a ${verdict.keyType} certificate: at most one per key type` };
    keyTypes.set(verdict.keyType, where);
    certificates.push(verdict.certificate);
  }
  return { ok: true, certificates };
}

type SecretVerdict = { ok: true; keyType: string; certificate: TlsCertificateModel } | { ok: false; problem: string };

// Informers hand out the same object until the Secret changes: parse each version once.
const verdicts = new WeakMap<Secret, SecretVerdict>();

function checkSecret(secret: Secret): SecretVerdict {
  let verdict = verdicts.get(secret);
  if (!verdict) {
    verdict = parseSecret(secret);
    verdicts.set(secret, verdict);
  }
  return verdict;
}

function parseSecret(secret: Secret): SecretVerdict {
  const crtData = secret.data?.['tls.crt'];
  const keyData = secret.data?.['tls.key'];
  if (typeof crtData !== 'string' || crtData === '' || typeof keyData !== 'string' || keyData === '') return { ok: false, problem: 'it has no tls.crt and tls.key' };
  const certificateChain = Buffer.from(crtData, 'base64').toString('utf8');
  const privateKey = Buffer.from(keyData, 'base64').toString('utf8');
  if (!certificateChain.includes('-----BEGIN CERTIFICATE-----')) return { ok: false, problem: 'tls.crt is not a PEM certificate' };
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(privateKey)) return { ok: false, problem: 'tls.key is not a PEM private key' };
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certificateChain);
  } catch {
    return { ok: false, problem: 'tls.crt does not parse as an X.509 certificate' };
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(privateKey);
  } catch {
    return { ok: false, problem: 'tls.key does not parse as an unencrypted private key' };
  }
  if (!cert.checkPrivateKey(key)) return { ok: false, problem: 'tls.key does not belong to the certificate in tls.crt' };
  const keyType = key.asymmetricKeyType ?? 'unknown';
  const details = key.asymmetricKeyDetails ?? {};
  if (keyType === 'rsa') {
    if ((details.modulusLength ?? 0) < MIN_RSA_BITS) return { ok: false, problem: `the RSA key has ${details.modulusLength} bits; at least ${MIN_RSA_BITS} are needed` };
  } else if (keyType === 'ec') {
    if (!EC_CURVES.has(details.namedCurve ?? '')) return { ok: false, problem: `ECDSA curve ${details.namedCurve} is not supported (P-256, P-384, P-521 are)` };
  } else {
    return { ok: false, problem: `key type ${keyType} is not supported (RSA and ECDSA are)` };
  }
  return { ok: true, keyType, certificate: { certificateChain, privateKey } };
}
