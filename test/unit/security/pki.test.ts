// The PKI helpers produce certificates that a TLS stack (node:crypto / OpenSSL) reads the way we mean:
// the right issuer, SANs, validity, key usages, a chain that verifies against its CA and not another.
import { expect } from 'chai';
import { once } from 'node:events';
import * as tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { X509Certificate, createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import {
  CONTROL_PLANE_IDENTITY, certificateExpiry, createCertificateAuthority, gatewayIdentity, identityUris, issueCertificate,
  parseGatewayIdentity,
} from '../../../xds-server/security/pki.ts';

const DAY = 24 * 3600 * 1000;
const now = new Date('2026-06-01T12:00:00Z');

describe('security/pki', function () {
  this.timeout(20_000);

  it('creates a self-signed CA that may sign certificates', async () => {
    const ca = await createCertificateAuthority({ commonName: 'scale-to-zero test CA', validForMs: 365 * DAY, now });
    const cert = new X509Certificate(ca.certPem);
    expect(cert.ca).to.equal(true);
    expect(cert.subject).to.equal('CN=scale-to-zero test CA');
    expect(cert.issuer).to.equal(cert.subject);
    expect(cert.verify(cert.publicKey)).to.equal(true);
    expect(new Date(cert.validTo).getTime()).to.equal(Math.floor((now.getTime() + 365 * DAY) / 1000) * 1000);
    expect(cert.keyUsage ?? []).to.be.an('array');
    expect(createPrivateKey(ca.keyPem).asymmetricKeyType).to.equal('ec');
    expect(ca.keyPem).to.match(/^-----BEGIN PRIVATE KEY-----/);
  });

  it('issues a server certificate with its SANs, usages and validity, signed by the CA', async () => {
    const ca = await createCertificateAuthority({ commonName: 'ca', validForMs: 365 * DAY, now });
    const leaf = await issueCertificate(ca, {
      commonName: 'control-plane', role: 'server', uris: [CONTROL_PLANE_IDENTITY],
      dnsNames: ['localhost', 'xds.example.svc'], ipAddresses: ['127.0.0.1', '::1'], validForMs: 30 * DAY, now,
    });
    const cert = new X509Certificate(leaf.certPem);
    const caCert = new X509Certificate(ca.certPem);
    expect(cert.ca).to.equal(false);
    expect(cert.subject).to.equal('CN=control-plane');
    expect(cert.issuer).to.equal('CN=ca');
    expect(cert.checkIssued(caCert)).to.equal(true);
    expect(cert.verify(caCert.publicKey)).to.equal(true);
    expect(cert.subjectAltName).to.include(`URI:${CONTROL_PLANE_IDENTITY}`);
    expect(cert.subjectAltName).to.include('DNS:localhost');
    expect(cert.subjectAltName).to.include('DNS:xds.example.svc');
    expect(cert.subjectAltName).to.include('IP Address:127.0.0.1');
    expect(cert.checkHost('localhost')).to.equal('localhost');
    expect(cert.checkIP('127.0.0.1')).to.equal('127.0.0.1');
    expect(cert.keyUsage).to.deep.equal(['1.3.6.1.5.5.7.3.1']);
    // notBefore allows 5 minutes of clock skew; notAfter is now + validFor.
    expect(new Date(cert.validFrom).getTime()).to.equal(now.getTime() - 5 * 60 * 1000);
    expect(certificateExpiry(leaf.certPem).getTime()).to.equal(now.getTime() + 30 * DAY);
    expect(identityUris(leaf.certPem)).to.deep.equal([CONTROL_PLANE_IDENTITY]);
    // The key pair matches the certificate.
    const sig = sign('sha256', Buffer.from('x'), createPrivateKey(leaf.keyPem));
    expect(verify('sha256', Buffer.from('x'), createPublicKey(leaf.certPem), sig)).to.equal(true);
  });

  it('gives client and both-role certificates the matching extended key usages', async () => {
    const ca = await createCertificateAuthority({ commonName: 'ca', validForMs: DAY, now });
    const client = new X509Certificate((await issueCertificate(ca, { commonName: 'envoy', role: 'client', uris: [gatewayIdentity('default', 'gw')], validForMs: DAY, now })).certPem);
    expect(client.keyUsage).to.deep.equal(['1.3.6.1.5.5.7.3.2']);
    const both = new X509Certificate((await issueCertificate(ca, { commonName: 'x', role: 'both', validForMs: DAY, now })).certPem);
    expect([...both.keyUsage].sort()).to.deep.equal(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    expect(both.subjectAltName).to.equal(undefined);
  });

  it('a certificate from another CA does not verify against ours', async () => {
    const ours = await createCertificateAuthority({ commonName: 'ca', validForMs: DAY, now });
    const theirs = await createCertificateAuthority({ commonName: 'ca', validForMs: DAY, now });
    const leaf = new X509Certificate((await issueCertificate(theirs, { commonName: 'envoy', role: 'client', validForMs: DAY, now })).certPem);
    expect(leaf.verify(new X509Certificate(ours.certPem).publicKey)).to.equal(false);
    expect(leaf.verify(new X509Certificate(theirs.certPem).publicKey)).to.equal(true);
  });

  it('never lets a leaf outlive its CA, and gives each certificate its own serial', async () => {
    const ca = await createCertificateAuthority({ commonName: 'ca', validForMs: DAY, now });
    const a = await issueCertificate(ca, { commonName: 'a', role: 'client', validForMs: 10 * DAY, now });
    const b = await issueCertificate(ca, { commonName: 'a', role: 'client', validForMs: 10 * DAY, now });
    expect(certificateExpiry(a.certPem).getTime()).to.equal(certificateExpiry(ca.certPem).getTime());
    expect(new X509Certificate(a.certPem).serialNumber).not.to.equal(new X509Certificate(b.certPem).serialNumber);
  });

  it('escapes a common name so it cannot add attributes to the subject', async () => {
    const ca = await createCertificateAuthority({ commonName: 'ca', validForMs: DAY, now });
    const cert = new X509Certificate((await issueCertificate(ca, { commonName: 'a,O=evil', role: 'client', validForMs: DAY, now })).certPem);
    // One CN attribute whose value contains the comma (node:crypto shows it escaped), no O attribute.
    expect(cert.subject).to.equal('CN=a\\,O=evil');
    expect(cert.subject.split('\n')).to.have.length(1);
  });

  it('refuses a validity that is not a positive duration', async () => {
    let err: unknown;
    try { await createCertificateAuthority({ commonName: 'ca', validForMs: 0 }); } catch (e) { err = e; }
    expect(err).to.be.instanceOf(RangeError);
  });

  it('round-trips gateway identities and rejects anything else', () => {
    const id = gatewayIdentity('team-a', 'edge');
    expect(id).to.equal('spiffe://scaletozero.dev/ns/team-a/gateway/edge');
    expect(parseGatewayIdentity(id)).to.deep.equal({ namespace: 'team-a', name: 'edge' });
    expect(parseGatewayIdentity(CONTROL_PLANE_IDENTITY)).to.equal(undefined);
    expect(parseGatewayIdentity('spiffe://other.dev/ns/a/gateway/b')).to.equal(undefined);
    expect(parseGatewayIdentity('spiffe://scaletozero.dev/ns/a/gateway/b/extra')).to.equal(undefined);
    expect(parseGatewayIdentity('spiffe://scaletozero.dev/ns//gateway/b')).to.equal(undefined);
  });

  it('lists several URI SANs in order, ignoring other kinds', async () => {
    const ca = await createCertificateAuthority({ commonName: 'ca', validForMs: DAY, now });
    const uris = [gatewayIdentity('a', 'b'), 'spiffe://scaletozero.dev/x,y'];
    const leaf = await issueCertificate(ca, { commonName: 'c', role: 'client', uris, dnsNames: ['d.test'], validForMs: DAY, now });
    expect(identityUris(leaf.certPem)).to.deep.equal(uris);
  });

  it('the issued pair completes a mutual TLS handshake over loopback, each side verifying the other', async () => {
    const ca = await createCertificateAuthority({ commonName: 'ca', validForMs: DAY });
    const server = await issueCertificate(ca, { commonName: 'cp', role: 'server', uris: [CONTROL_PLANE_IDENTITY], dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], validForMs: DAY });
    const client = await issueCertificate(ca, { commonName: 'envoy', role: 'client', uris: [gatewayIdentity('default', 'gw')], validForMs: DAY });
    const seen: string[] = [];
    const srv = tls.createServer({ cert: server.certPem, key: server.keyPem, ca: ca.certPem, requestCert: true, rejectUnauthorized: true }, s => {
      seen.push(...identityUris(s.getPeerX509Certificate()!.toString()));
      s.end('ok');
    });
    srv.listen(0, '127.0.0.1');
    await once(srv, 'listening');
    try {
      const sock = tls.connect({ host: '127.0.0.1', port: (srv.address() as AddressInfo).port, ca: ca.certPem, cert: client.certPem, key: client.keyPem, servername: 'localhost' });
      await once(sock, 'secureConnect');
      expect(sock.authorized).to.equal(true);
      expect(identityUris(sock.getPeerX509Certificate()!.toString())).to.deep.equal([CONTROL_PLANE_IDENTITY]);
      const [reply] = await once(sock, 'data') as [Buffer];
      expect(reply.toString()).to.equal('ok');
      sock.destroy();
      expect(seen).to.deep.equal([gatewayIdentity('default', 'gw')]);
    } finally {
      srv.close();
    }
  });
});
