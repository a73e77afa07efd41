// Mutual TLS between real Envoys and the control plane (issue 14), as `npm start` runs it: the control plane
// generates its CA and certificates in the state directory; Envoy gets its config over mTLS xDS and makes its
// wake calls over mTLS; Envoys without a valid certificate get nothing, and each refusal is logged and counted;
// certificates re-issued with a short lifetime while requests flow fail none, and Envoy uses the new one.
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tls from 'node:tls';
import { expect } from 'chai';
import { startEnvoy, type EnvoyProcess } from '../../envoy-bootstrap/envoy.ts';
import { renderBootstrap } from '../../envoy-bootstrap/render.ts';
import { SDS_CA_SECRET, SDS_CERTIFICATE_SECRET } from '../../snapshots/control-plane-tls.ts';
import { FILE_GATEWAY_IDENTITY } from '../../xds-server/security/file-pki.ts';
import { createCertificateAuthority, issueCertificate, type PemPair } from '../../xds-server/security/pki.ts';
import { eventually } from '../support/eventually.ts';
import { http1Request } from '../support/http-client.ts';
import { freePort } from '../support/ports.ts';
import { processHost, startStack, type Stack } from '../support/stack.ts';

const SECRET_TYPE = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret';

async function metric(stack: Stack, name: string, labels: Record<string, string>): Promise<number> {
  const text = await (await stack.adminFetch('/metrics')).text();
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

/** SDS files for an Envoy that presents `client` and trusts `trust` (as the control plane writes its own). */
async function sdsFiles(dir: string, client: PemPair, trust: string): Promise<{ certificateSds: string; caSds: string }> {
  await writeFile(path.join(dir, 'tls.crt'), client.certPem);
  await writeFile(path.join(dir, 'tls.key'), client.keyPem, { mode: 0o600 });
  await writeFile(path.join(dir, 'ca.crt'), trust);
  const certificateSds = path.join(dir, 'sds-certificate.json');
  const caSds = path.join(dir, 'sds-ca.json');
  await writeFile(certificateSds, JSON.stringify({ resources: [{ '@type': SECRET_TYPE, name: SDS_CERTIFICATE_SECRET, tls_certificate: { certificate_chain: { filename: path.join(dir, 'tls.crt') }, private_key: { filename: path.join(dir, 'tls.key') } } }] }));
  await writeFile(caSds, JSON.stringify({ resources: [{ '@type': SECRET_TYPE, name: SDS_CA_SECRET, validation_context: { trusted_ca: { filename: path.join(dir, 'ca.crt') } } }] }));
  return { certificateSds, caSds };
}

/** The serial of the certificate a port presents to a client with the Envoy's certificate. */
async function serverSerial(stack: Stack, port: number): Promise<string> {
  const current = path.join(stack.cp.pki!.envoyFiles.dir, 'current');
  const [cert, key, ca] = await Promise.all(['tls.crt', 'tls.key', 'ca.crt'].map((f) => readFile(path.join(current, f), 'utf8')));
  const socket = tls.connect({ host: '127.0.0.1', port, cert, key, ca, checkServerIdentity: () => undefined, ALPNProtocols: ['h2', 'http/1.1'] });
  try {
    await once(socket, 'secureConnect');
    return socket.getPeerX509Certificate()!.serialNumber;
  } finally {
    socket.destroy();
  }
}

const envoyCertSerial = async (stack: Stack): Promise<string> =>
  new X509Certificate(await readFile(path.join(stack.cp.pki!.envoyFiles.dir, 'current', 'tls.crt'), 'utf8')).serialNumber;

describe('mutual TLS between Envoy and the control plane (real Envoy, real TLS)', function () {
  this.timeout(120_000);

  describe('an Envoy with the generated certificate', () => {
    let stack: Stack;
    let port: number;
    before(async () => {
      port = await freePort();
      stack = await startStack({ config: () => ({ hosts: [processHost('cold', port)] }) });
    });
    after(async () => {
      await stack?.close();
    });

    it('gets its config over mTLS xDS and serves a cold start whose wake call goes over mTLS', async () => {
      const session = stack.cp.ads.connected[0]!;
      expect(session.identity).to.include({ kind: 'gateway', uri: FILE_GATEWAY_IDENTITY, gateway: 'file/gateway' });
      expect(session.identity!.serial).to.equal(await envoyCertSerial(stack));
      const reply = await http1Request({ port: stack.port, host: 'cold.test', path: '/first', timeoutMs: 30_000 });
      expect(reply.status, reply.body).to.equal(200);
      expect(await metric(stack, 'stz_wake_calls_total', { result: 'accepted' })).to.be.greaterThan(0);
      const stats = await stack.envoy.stats('ssl.handshake');
      // Both of Envoy's connections to the control plane were TLS: the xds cluster and the wake cluster.
      expect(stats.get('cluster.xds_control_plane.ssl.handshake') ?? 0).to.be.greaterThan(0);
      expect(stats.get('cluster.scale_to_zero_control_plane.ssl.handshake') ?? 0).to.be.greaterThan(0);
      expect(await metric(stack, 'stz_xds_tls_refused_total', {})).to.equal(0);
    });

    it('takes no wake call on the plaintext admin port (404 with a JSON body), only on the mTLS wake port', async () => {
      await stack.adminFetch('/v1/hosts/cold/scale-to-zero', { method: 'POST' });
      const res = await stack.adminFetch('/v1/wake/cold', { method: 'POST' });
      expect(res.status).to.equal(404);
      expect(((await res.json()) as { message: string }).message).to.contain('wake port');
      expect(stack.cp.wakePort).to.be.a('number').and.not.equal(stack.cp.adminPort);
      // Nothing woke it (a wake the admin app accepted would start at once).
      await new Promise((r) => setTimeout(r, 300));
      const host = (await (await stack.adminFetch('/v1/hosts/cold')).json()) as { state: string; scaling: { phase: string } | null };
      expect(host.state).to.equal('scaled_to_zero');
      expect(host.scaling?.phase ?? 'scaled_to_zero').to.equal('scaled_to_zero');
    });

    it('keeps the key files private (mode 0600) and reuses the certificates on restart', async () => {
      const { stat } = await import('node:fs/promises');
      const pki = stack.cp.pki!;
      for (const f of [path.join(pki.dir, 'ca.key'), path.join(pki.dir, 'control-plane.key'), path.join(pki.envoyFiles.dir, 'current', 'tls.key')]) {
        expect((await stat(f)).mode & 0o777, f).to.equal(0o600);
      }
      const before = { ca: pki.caPair.certPem, envoy: await envoyCertSerial(stack) };
      await stack.restartControlPlane();
      expect(stack.cp.pki!.caPair.certPem).to.equal(before.ca);
      expect(await envoyCertSerial(stack)).to.equal(before.envoy);
      await eventually(async () => {
        if (stack.cp.ads.connected.length === 0) throw new Error('Envoy not reconnected yet');
      }, { timeoutMs: 15_000, what: 'Envoy reconnecting over mTLS' });
    });

    const refusedEnvoys: [string, (dir: string) => Promise<{ certificateSds: string; caSds: string } | 'no-certificate' | undefined>, string][] = [
      ['speaks plaintext to the mTLS port', async () => undefined, 'handshake_failed'],
      ['speaks TLS without a client certificate', async () => 'no-certificate', 'no_certificate'],
      ["presents another CA's certificate", async (dir) => {
        const other = await createCertificateAuthority({ commonName: 'someone else', validForMs: 3600_000 });
        return sdsFiles(dir, await issueCertificate(other, { commonName: 'envoy', role: 'client', uris: [FILE_GATEWAY_IDENTITY], validForMs: 3600_000 }), stack.cp.pki!.caPair.certPem);
      }, 'unknown_ca'],
      ['presents an expired certificate from our CA', async (dir) => {
        const ca = stack.cp.pki!.caPair;
        const expired = await issueCertificate(ca, { commonName: 'envoy', role: 'client', uris: [FILE_GATEWAY_IDENTITY], validForMs: 3600_000, now: new Date(Date.now() - 2 * 3600_000) });
        return sdsFiles(dir, expired, ca.certPem);
      }, 'expired'],
    ];
    for (const [what, files, reason] of refusedEnvoys) {
      it(`refuses an Envoy that ${what}: it gets no resources; the refusal is logged and counted (${reason})`, async () => {
        const dir = await mkdtemp(path.join(os.tmpdir(), 'stz-bad-envoy-'));
        let envoy: EnvoyProcess | undefined;
        try {
          const before = await metric(stack, 'stz_xds_tls_refused_total', { reason });
          const tls = await files(dir);
          const bootstrap = renderBootstrap({ nodeId: `intruder-${reason}`, xdsAddress: '127.0.0.1', xdsPort: stack.cp.xdsPort, ...(tls ? { xdsTls: tls === 'no-certificate' ? stack.cp.pki!.envoyFiles : tls } : {}) });
          if (tls === 'no-certificate') {
            // The same TLS context as ours (trusting our CA, checking the server's identity) minus the certificate.
            const cluster = (bootstrap.static_resources as { clusters: { transport_socket: { typed_config: { common_tls_context: Record<string, unknown> } } }[] }).clusters[0]!;
            delete cluster.transport_socket.typed_config.common_tls_context.tls_certificate_sds_secret_configs;
          }
          envoy = await startEnvoy({ bootstrap });
          await eventually(async () => {
            const n = await metric(stack, 'stz_xds_tls_refused_total', { reason, port: 'xds' });
            // Twice: Envoy retried after the first refusal and was refused again, so it had time to get something.
            if (n < before + 2) throw new Error(`refusals with reason ${reason}: ${n}`);
          }, { timeoutMs: 20_000, what: `two ${reason} refusals to be counted` });
          const stats = await envoy.stats('');
          expect(stats.get('cluster_manager.cds.update_success') ?? 0, 'CDS updates').to.equal(0);
          expect(stats.get('listener_manager.lds.update_success') ?? 0, 'LDS updates').to.equal(0);
          expect(stats.get('listener_manager.total_listeners_active') ?? 0).to.equal(0);
          expect(stack.cp.ads.connected.map((s) => s.nodeId)).not.to.include(`intruder-${reason}`);
        } finally {
          await envoy?.stop();
          await rm(dir, { recursive: true, force: true });
        }
      });
    }
  });

  describe('certificate rotation under traffic', () => {
    let stack: Stack;
    before(async () => {
      // 24 s certificates: checked every 2.4 s and re-issued with a third (8 s) of their life left.
      stack = await startStack({
        config: (u) => ({ hosts: [{ name: 'web', domains: ['web.test'], endpoints: [{ address: '127.0.0.1', port: u.httpPort }] }] }),
        controlPlane: { certificateLifetimeMs: 24_000 },
      });
    });
    after(async () => {
      await stack?.close();
    });

    it('re-issues the certificates while requests flow, fails none, and Envoy reconnects by itself with the new certificate', async () => {
      const firstSerial = await envoyCertSerial(stack);
      const firstServer = stack.cp.pki!.serverIdentity.cert;
      expect(stack.cp.ads.connected[0]!.identity!.serial).to.equal(firstSerial);
      let sent = 0;
      const failures: string[] = [];
      let rotated = false;
      let reconnected = false;
      // Bounded: at most 60 s of sequential requests.
      const deadline = Date.now() + 60_000;
      const traffic = (async () => {
        while (Date.now() < deadline && !(rotated && reconnected)) {
          sent += 1;
          try {
            const r = await http1Request({ port: stack.port, host: 'web.test', path: `/r${sent}`, timeoutMs: 10_000 });
            if (r.status !== 200) failures.push(`${r.status} ${r.body}`);
          } catch (err) {
            failures.push((err as Error).message);
          }
        }
      })();
      await eventually(async () => {
        if ((await envoyCertSerial(stack)) === firstSerial) throw new Error('the Envoy certificate is not re-issued yet');
        if (stack.cp.pki!.serverIdentity.cert === firstServer) throw new Error('the server certificate is not re-issued yet');
      }, { timeoutMs: 40_000, intervalMs: 250, what: 'both certificates re-issued' });
      rotated = true;
      const newSerial = await envoyCertSerial(stack);
      // The running control plane already serves the new server certificate to new connections, on both ports.
      const newServerSerial = new X509Certificate(stack.cp.pki!.serverIdentity.cert).serialNumber;
      expect(newServerSerial).not.to.equal(new X509Certificate(firstServer).serialNumber);
      for (const p of [stack.cp.xdsPort, stack.cp.wakePort!]) expect(await serverSerial(stack, p), `port ${p}`).to.equal(newServerSerial);
      // TLS checks certificates only at the handshake: the control plane closes the connection near the end of
      // its certificate's life (here, at its expiry: these certificates' life starts 5 min back, for clock
      // skew), and Envoy reconnects by itself, presenting the new certificate. No restart.
      const session = await eventually(async () => {
        const s = stack.cp.ads.connected.find((c) => c.clientKind === 'envoy');
        if (s?.identity?.serial !== newSerial) throw new Error(`Envoy still on certificate ${s?.identity?.serial ?? '(not connected)'}`);
        return s;
      }, { timeoutMs: 30_000, intervalMs: 250, what: 'Envoy reconnecting with the new certificate by itself' });
      reconnected = true;
      await traffic;
      expect(session.identity!.serial, 'the certificate Envoy presented on reconnecting').to.equal(newSerial);
      expect(failures, `${failures.length} of ${sent} requests failed`).to.deep.equal([]);
      expect(sent).to.be.greaterThan(20);
    });
  });
});
