// The xDS certificates in Kubernetes mode against an in-memory Secret store with the API server's rules
// (404 for a missing Secret, 409 for a create of an existing one or an update with a stale resourceVersion):
// one CA however many replicas race to create it, one client certificate per Gateway renewed before expiry by
// the leader only, server certificates re-issued in memory.
import { X509Certificate } from 'node:crypto';
import { expect } from 'chai';
import { KubeApiError, type KubeClient, type KubeObject } from '../../../xds-server/kubernetes/rest.ts';
import {
  CA_SECRET_NAME,
  GatewayCertificates,
  gatewaySecretName,
  loadOrCreateCa,
  renewalReason,
  ServerCertificate,
  type GatewayName,
} from '../../../xds-server/kubernetes/xds-certificates.ts';
import { silentLogger } from '../../../xds-server/log.ts';
import { CONTROL_PLANE_IDENTITY, createCertificateAuthority, gatewayIdentity, identityUris } from '../../../xds-server/security/pki.ts';
import { FakeClock } from '../../support/fake-clock.ts';

const NS = 'scale-to-zero-system';
const HOUR = 3600_000;

class FakeSecrets implements KubeClient {
  readonly store = new Map<string, KubeObject>();
  writes: string[] = [];
  private version = 1;
  /** Runs before a write is applied (to let another writer in first). */
  beforeWrite: (() => Promise<void>) | undefined;

  async get(path: string): Promise<KubeObject> {
    const s = this.store.get(path);
    if (!s) throw new KubeApiError(404, 'NotFound', 'not found', `GET ${path}`);
    return structuredClone(s);
  }
  list(): never {
    throw new Error('not used');
  }
  watch(): never {
    throw new Error('not used');
  }
  async request(method: 'POST' | 'PUT' | 'PATCH' | 'DELETE', path: string, body: unknown): Promise<KubeObject> {
    const obj = structuredClone(body) as KubeObject;
    await this.beforeWrite?.();
    const key = method === 'POST' ? `${path}/${obj.metadata.name}` : path;
    const existing = this.store.get(key);
    if (method === 'POST' && existing) throw new KubeApiError(409, 'AlreadyExists', 'exists', `POST ${path}`);
    if (method === 'PUT' && (!existing || existing.metadata.resourceVersion !== obj.metadata.resourceVersion)) throw new KubeApiError(409, 'Conflict', 'the object has been modified', `PUT ${path}`);
    obj.metadata.resourceVersion = String(++this.version);
    this.store.set(key, obj);
    this.writes.push(`${method} ${key}`);
    return structuredClone(obj);
  }
  secret(name: string): KubeObject | undefined {
    return this.store.get(`/api/v1/namespaces/${NS}/secrets/${name}`);
  }
}

const pem = (s: KubeObject, key: string): string => Buffer.from((s.data as Record<string, string>)[key]!, 'base64').toString('utf8');

describe('xDS certificates in Kubernetes mode', function () {
  this.timeout(20_000);
  let api: FakeSecrets;
  let clock: FakeClock;

  beforeEach(() => {
    api = new FakeSecrets();
    clock = new FakeClock();
  });

  it('the CA is created once; a replica that loses the create race (409) uses the winner\'s', async () => {
    // Both replicas read "no Secret", generate a CA, and try to create it; the second write meets the first.
    let release!: () => void;
    const bothGenerated = new Promise<void>((r) => (release = r));
    let waiting = 0;
    api.beforeWrite = async () => {
      if (++waiting === 2) release();
      await bothGenerated;
    };
    const [a, b] = await Promise.all([loadOrCreateCa(api, NS, clock, silentLogger), loadOrCreateCa(api, NS, clock, silentLogger)]);
    expect(a.certPem).to.equal(b.certPem);
    expect(api.writes).to.deep.equal([`POST /api/v1/namespaces/${NS}/secrets/${CA_SECRET_NAME}`]);
    api.beforeWrite = undefined;
    // A restart reads it.
    const c = await loadOrCreateCa(api, NS, clock, silentLogger);
    expect(c.certPem).to.equal(a.certPem);
    expect(new X509Certificate(a.certPem).ca).to.equal(true);
  });

  it('a server certificate carries the control plane identity and the names it is dialled by, and is re-issued in memory before it expires', async () => {
    const ca = await loadOrCreateCa(api, NS, clock, silentLogger);
    const renewed: string[] = [];
    const server = new ServerCertificate(ca, { dnsNames: ['control-plane-xds.scale-to-zero-system.svc'], ipAddresses: ['127.0.0.1'] }, clock, silentLogger, { certValidForMs: 3 * HOUR, renewBeforeMs: HOUR, checkIntervalMs: 1_000_000 }, (p) => renewed.push(p.certPem));
    const first = await server.init();
    server.close();
    const x = new X509Certificate(first.certPem);
    expect(identityUris(first.certPem)).to.deep.equal([CONTROL_PLANE_IDENTITY]);
    expect(x.subjectAltName).to.include('DNS:control-plane-xds.scale-to-zero-system.svc');
    expect(x.verify(new X509Certificate(ca.certPem).publicKey)).to.equal(true);
    await clock.advance(HOUR, HOUR);
    expect(await server.renewIfDue()).to.equal(false);
    await clock.advance(HOUR + 1000, HOUR);
    expect(await server.renewIfDue()).to.equal(true);
    expect(renewed).to.have.length(1);
    expect(server.current().certPem).to.not.equal(first.certPem);
  });

  describe('gateway client certificates', () => {
    const gwA: GatewayName = { namespace: 'team-a', name: 'edge' };
    const gwB: GatewayName = { namespace: 'team-b', name: 'edge' };
    let leader: boolean;
    let certs: GatewayCertificates;
    let gateways: GatewayName[];

    beforeEach(async () => {
      leader = true;
      gateways = [gwA, gwB];
      const ca = await loadOrCreateCa(api, NS, clock, silentLogger);
      api.writes = [];
      certs = new GatewayCertificates({
        client: api,
        namespace: NS,
        ca,
        clock,
        log: silentLogger,
        gateways: () => gateways,
        secret: (ns, name) => api.store.get(`/api/v1/namespaces/${ns}/secrets/${name}`),
        isLeader: () => leader,
        timing: { certValidForMs: 3 * HOUR, renewBeforeMs: HOUR },
      });
    });

    it('one Secret per Gateway (kubernetes.io/tls: tls.crt, tls.key, ca.crt), the certificate naming that Gateway only', async () => {
      await certs.reconcile();
      expect(api.writes.sort()).to.deep.equal([`POST /api/v1/namespaces/${NS}/secrets/xds-client-team-a.edge`, `POST /api/v1/namespaces/${NS}/secrets/xds-client-team-b.edge`]);
      const ca = api.secret(CA_SECRET_NAME)!;
      for (const gw of [gwA, gwB]) {
        const s = api.secret(gatewaySecretName(gw))!;
        expect(s.type).to.equal('kubernetes.io/tls');
        expect(identityUris(pem(s, 'tls.crt'))).to.deep.equal([gatewayIdentity(gw.namespace, gw.name)]);
        expect(pem(s, 'ca.crt')).to.equal(pem(ca, 'tls.crt'));
        expect(new X509Certificate(pem(s, 'tls.crt')).verify(new X509Certificate(pem(ca, 'tls.crt')).publicKey)).to.equal(true);
        expect(s.metadata.labels).to.include({ 'scaletozero.dev/gateway-namespace': gw.namespace, 'scaletozero.dev/gateway-name': gw.name });
      }
      // Nothing to do while they are fresh.
      await certs.reconcile();
      expect(api.writes).to.have.length(2);
    });

    it('renewed (an update on the read resourceVersion) once less than renewBefore is left; not by a follower', async () => {
      await certs.reconcile();
      const before = pem(api.secret(gatewaySecretName(gwA))!, 'tls.crt');
      await clock.advance(2 * HOUR + 1000, HOUR);
      leader = false;
      await certs.reconcile();
      expect(api.writes).to.have.length(2);
      leader = true;
      await certs.reconcile();
      expect(api.writes.slice(2).sort()).to.deep.equal([`PUT /api/v1/namespaces/${NS}/secrets/xds-client-team-a.edge`, `PUT /api/v1/namespaces/${NS}/secrets/xds-client-team-b.edge`]);
      const after = pem(api.secret(gatewaySecretName(gwA))!, 'tls.crt');
      expect(after).to.not.equal(before);
      expect(new Date(new X509Certificate(after).validTo).getTime()).to.be.greaterThan(clock.now() + 2 * HOUR);
    });

    it('a Secret someone else changed in between (409) is left to the next pass; one written by hand with another identity or CA is replaced', async () => {
      await certs.reconcile();
      const path = `/api/v1/namespaces/${NS}/secrets/${gatewaySecretName(gwA)}`;
      // B's certificate in A's Secret: wrong identity.
      const b = api.secret(gatewaySecretName(gwB))!;
      api.store.set(path, { ...structuredClone(b), metadata: { ...api.secret(gatewaySecretName(gwA))!.metadata } });
      expect(renewalReason(api.store.get(path), gwA, pem(api.secret(CA_SECRET_NAME)!, 'tls.crt'), clock.now(), HOUR)).to.match(/names .*team-b.*not the Gateway/);
      // From another CA.
      const other = await createCertificateAuthority({ commonName: 'other', validForMs: 10 * HOUR });
      const foreign = structuredClone(api.store.get(path)!);
      (foreign.data as Record<string, string>)['ca.crt'] = Buffer.from(other.certPem).toString('base64');
      expect(renewalReason(foreign, gwA, pem(api.secret(CA_SECRET_NAME)!, 'tls.crt'), clock.now(), HOUR)).to.equal('its ca.crt is not the current CA');
      // A concurrent writer bumps the version between our read and our update: 409, counted, retried next pass.
      api.beforeWrite = async () => {
        api.beforeWrite = undefined;
        const s = api.store.get(path)!;
        api.store.set(path, { ...s, metadata: { ...s.metadata, resourceVersion: `${s.metadata.resourceVersion}-other` } });
      };
      await certs.reconcile();
      expect(certs.stats.conflicts).to.equal(1);
      await certs.reconcile();
      expect(identityUris(pem(api.store.get(path)!, 'tls.crt'))).to.deep.equal([gatewayIdentity(gwA.namespace, gwA.name)]);
    });

    it('Secret names are valid and distinct, hashed when the Gateway name is too long', () => {
      const long = { namespace: 'n'.repeat(63), name: 'g'.repeat(253) };
      const name = gatewaySecretName(long);
      expect(name.length).to.be.at.most(253);
      expect(name).to.match(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/);
      expect(gatewaySecretName({ ...long, name: `${'g'.repeat(252)}h` })).to.not.equal(name);
      expect(gatewaySecretName({ namespace: 'a-b', name: 'c' })).to.equal('xds-client-a-b.c');
      expect(gatewaySecretName({ namespace: 'a', name: 'b-c' })).to.equal('xds-client-a.b-c');
    });
  });
});
