// File mode's certificates on disk: created on first start with private keys, reused on the next, re-issued
// when a third of their lifetime is left (a fake clock), replaced when they come from another CA; the Envoy's
// directory is swapped by one symlink rename and the SDS files point under it.
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { silentLogger } from '../../../xds-server/log.ts';
import { FILE_GATEWAY_IDENTITY, FilePki } from '../../../xds-server/security/file-pki.ts';
import { CONTROL_PLANE_IDENTITY, createCertificateAuthority, identityUris, issueCertificate } from '../../../xds-server/security/pki.ts';

const DAY = 24 * 3600_000;

describe('security/file-pki', function () {
  this.timeout(20_000);
  let dir: string;
  let now: Date;
  const open = (): Promise<FilePki> => FilePki.open({ stateDir: dir, log: silentLogger, now: () => now });
  const serial = (pem: string): string => new X509Certificate(pem).serialNumber;
  const envoyCert = async (): Promise<string> => readFile(path.join(dir, 'pki', 'envoy', 'current', 'tls.crt'), 'utf8');

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'stz-pki-'));
    now = new Date();
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('creates a CA, a server and an Envoy certificate on first start, keys 0600, SDS files naming the current directory', async () => {
    const pki = await open();
    for (const f of ['pki/ca.key', 'pki/control-plane.key', 'pki/envoy/current/tls.key']) expect((await stat(path.join(dir, f))).mode & 0o777, f).to.equal(0o600);
    expect((await stat(path.join(dir, 'pki'))).mode & 0o777).to.equal(0o700);
    expect(identityUris(pki.serverIdentity.cert)).to.deep.equal([CONTROL_PLANE_IDENTITY]);
    expect(identityUris(await envoyCert())).to.deep.equal([FILE_GATEWAY_IDENTITY]);
    expect(new X509Certificate(await envoyCert()).verify(new X509Certificate(pki.caPair.certPem).publicKey)).to.equal(true);
    const sds = JSON.parse(await readFile(pki.envoyFiles.certificateSds, 'utf8')) as { resources: { tls_certificate: { certificate_chain: { filename: string }; watched_directory: { path: string } } }[] };
    expect(sds.resources[0]!.tls_certificate.certificate_chain.filename).to.equal(path.join(dir, 'pki', 'envoy', 'current', 'tls.crt'));
    expect(sds.resources[0]!.tls_certificate.watched_directory.path).to.equal(path.join(dir, 'pki', 'envoy'));
    // 30 days.
    expect(new Date(new X509Certificate(await envoyCert()).validTo).getTime()).to.be.closeTo(now.getTime() + 30 * DAY, 1000);
  });

  it('reuses everything on the next start', async () => {
    const first = await open();
    const before = { ca: first.caPair.certPem, server: first.serverIdentity.cert, envoy: await envoyCert() };
    const second = await open();
    expect({ ca: second.caPair.certPem, server: second.serverIdentity.cert, envoy: await envoyCert() }).to.deep.equal(before);
  });

  it('re-issues both leaf certificates once a third of their lifetime is left, keeping the CA, and tells the server', async () => {
    const pki = await open();
    const ca = pki.caPair.certPem;
    const server = serial(pki.serverIdentity.cert);
    const envoy = serial(await envoyCert());
    const firstDir = await readlink(path.join(dir, 'pki', 'envoy', 'current'));
    const told: string[] = [];
    pki.onServerIdentity((s) => told.push(serial(s.cert)));
    now = new Date(now.getTime() + 19 * DAY);
    await pki.renewDue();
    expect(told).to.deep.equal([]);
    now = new Date(now.getTime() + 1 * DAY + 1000);
    await pki.renewDue();
    expect(pki.caPair.certPem).to.equal(ca);
    expect(serial(pki.serverIdentity.cert)).not.to.equal(server);
    expect(told).to.deep.equal([serial(pki.serverIdentity.cert)]);
    expect(serial(await envoyCert())).not.to.equal(envoy);
    expect(await readlink(path.join(dir, 'pki', 'envoy', 'current'))).not.to.equal(firstDir);
    // A due certificate found at start is re-issued too.
    now = new Date(now.getTime() + 25 * DAY);
    const reopened = await open();
    expect(new Date(new X509Certificate(reopened.serverIdentity.cert).validTo).getTime()).to.be.closeTo(now.getTime() + 30 * DAY, 1000);
  });

  it('replaces a leaf certificate that the CA did not sign', async () => {
    const pki = await open();
    const other = await createCertificateAuthority({ commonName: 'other', validForMs: DAY });
    const foreign = await issueCertificate(other, { commonName: 'x', role: 'server', validForMs: DAY });
    await writeFile(path.join(dir, 'pki', 'control-plane.crt'), foreign.certPem);
    await writeFile(path.join(dir, 'pki', 'control-plane.key'), foreign.keyPem);
    const reopened = await open();
    expect(reopened.caPair.certPem).to.equal(pki.caPair.certPem);
    expect(new X509Certificate(reopened.serverIdentity.cert).verify(new X509Certificate(pki.caPair.certPem).publicKey)).to.equal(true);
  });
});
