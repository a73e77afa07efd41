// The echo-basic stand-in (test/support/kube/echo-basic.ts) that pod-servers.ts runs for the Gateway API
// conformance suite's backend pods: first its pieces on 127.0.0.1 without a cluster, then pods of Deployments
// shaped like the suite's base manifests (image echo-basic, POD_NAME/NAMESPACE from the downward API, no
// containerPorts; one with GRPC_ECHO_SERVER=1) in a real API server + kwok, answered on their loopback pod IPs.
// Run with `npm run test:kube` (needs `bash scripts/k8s-tools.sh` once).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as k8s from '@kubernetes/client-node';
import { expect } from 'chai';
import protobuf from 'protobufjs';
import { eventually } from '../support/eventually.ts';
import { startKubeCluster, type KubeCluster } from '../support/kube/cluster.ts';
import {
  EchoBasicGrpcServer,
  EchoBasicHttpServer,
  GRPC_ECHO_PACKAGE,
  canonicalHeaderKey,
  cleanPath,
  echoBasicConfig,
  echoHeaders,
  echoSetHeaders,
  grpcEchoClient,
  grpcEchoMethodPath,
  grpcEchoTypes,
  parseGoDuration,
  type EchoAssertions,
  type EchoContext,
} from '../support/kube/echo-basic.ts';
import { isLoopbackIPv4, startPodServers, type EchoLogLine, type PodServerInfo, type PodServers } from '../support/kube/pod-servers.ts';

const IMAGE = 'gcr.io/k8s-staging-gateway-api/echo-basic:v20240412-v1.0.0-394-g40c666fd';

interface HttpResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  text: string;
}

/** An HTTP/1.1 request as the suite's round tripper makes it (no keep-alive); header values may repeat. */
function h1(ip: string, port: number, reqPath: string, options: { host?: string; method?: string; headers?: Record<string, string | string[]> } = {}): Promise<HttpResult> {
  if (!isLoopbackIPv4(ip)) throw new Error(`refusing to dial non-loopback ${ip}`);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: ip, port, path: reqPath, method: options.method ?? 'GET', headers: { ...(options.host ? { host: options.host } : {}), ...options.headers }, agent: false, timeout: 10_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, rawHeaders: res.rawHeaders, text: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** h2c with prior knowledge, as the suite's H2C_PRIOR_KNOWLEDGE transport. */
function h2c(ip: string, port: number, headers: http2.OutgoingHttpHeaders): Promise<{ status: number; headers: http2.IncomingHttpHeaders; text: string }> {
  if (!isLoopbackIPv4(ip)) throw new Error(`refusing to dial non-loopback ${ip}`);
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://${ip}:${port}`);
    session.on('error', reject);
    const req = session.request(headers);
    let status = 0;
    let resHeaders: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    req.on('response', (h) => {
      status = Number(h[':status']);
      resHeaders = h;
    });
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      session.close();
      resolve({ status, headers: resHeaders, text: Buffer.concat(chunks).toString('utf8') });
    });
    req.on('error', reject);
    req.end();
  });
}

/** What the suite's round tripper does with a response: parse it only when Content-Type is exactly application/json. */
function captured(res: { headers: { 'content-type'?: string | undefined }; text: string }): EchoAssertions {
  expect(res.headers['content-type']).to.equal('application/json');
  return JSON.parse(res.text) as EchoAssertions;
}

function connectRefused(ip: string, port: number): Promise<boolean> {
  if (!isLoopbackIPv4(ip)) throw new Error(`refusing to dial non-loopback ${ip}`);
  return new Promise((resolve) => {
    const s = net.connect({ host: ip, port });
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

function pod(spec: Partial<k8s.V1Container> & { env?: k8s.V1EnvVar[] }, image = IMAGE): k8s.V1Pod {
  return {
    metadata: { name: 'infra-backend-v1-7d9c8b6f5-abcde', namespace: 'gateway-conformance-infra', uid: 'u1', labels: { app: 'infra-backend-v1' } },
    spec: { nodeName: 'kwok-node-0', containers: [{ name: 'infra-backend-v1', image, ...spec }] },
    status: { podIP: '127.100.0.7' },
  };
}

const DOWNWARD_ENV: k8s.V1EnvVar[] = [
  { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
  { name: 'NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
];

describe('echo-basic stand-in (on 127.0.0.1, no cluster)', function () {
  this.timeout(30_000);

  it('names headers as Go does and parses X-Echo-Set-Header, Go durations and ServeMux paths', () => {
    expect(canonicalHeaderKey('x-header-add')).to.equal('X-Header-Add');
    expect(canonicalHeaderKey('X-ECHO-set-HEADER')).to.equal('X-Echo-Set-Header');
    expect(canonicalHeaderKey('bad header')).to.equal('bad header');

    expect(echoHeaders(['Host', 'h', 'x-b', '1', 'X-B', '2', 'user-agent', 'ua', 'Transfer-Encoding', 'chunked', 'Content-Length', '5'], false)).to.deep.equal({ 'User-Agent': ['ua'], 'X-B': ['1', '2'] });
    expect(echoHeaders([':path', '/', ':authority', 'a', 'cookie', 'a=1', 'cookie', 'b=2', 'x-b', '1'], true)).to.deep.equal({ Cookie: ['a=1; b=2'], 'X-B': ['1'] });

    // What the suite's MakeRequest sends: "name:value" pairs joined by ",", or "" when a test sets none.
    expect(echoSetHeaders([''])).to.deep.equal([]);
    expect(echoSetHeaders(['X-Header-Set:set-overwrites-values,X-Header-Add:add-appends-values'])).to.deep.equal([
      ['X-Header-Set', 'set-overwrites-values'],
      ['X-Header-Add', 'add-appends-values'],
    ]);
    expect(echoSetHeaders(['A:1, a: 2', 'B', 'bad name:x'])).to.deep.equal([
      ['A', '1,2'],
      ['B', ''],
    ]);

    expect(parseGoDuration('1s')).to.equal(1000);
    expect(parseGoDuration('1.5h')).to.equal(5_400_000);
    expect(parseGoDuration('1m30s')).to.equal(90_000);
    expect(parseGoDuration('300ms')).to.equal(300);
    expect(parseGoDuration('-2s')).to.equal(-2000);
    expect(parseGoDuration('0')).to.equal(0);
    expect(parseGoDuration('10µs')).to.be.closeTo(0.01, 1e-9);
    for (const bad of ['', '5', '1x', 's', '.s', '1s2']) expect(() => parseGoDuration(bad), bad).to.throw(/^time: /);

    expect(cleanPath('/a/./b/../c/')).to.equal('/a/c/');
    expect(cleanPath('/..')).to.equal('/');
    expect(cleanPath('/status/')).to.equal('/status/');
  });

  it('reads what to serve from the pod spec: downward-API env, ports, gRPC mode, and leaves other images alone', () => {
    const plain = echoBasicConfig(pod({ env: [...DOWNWARD_ENV, { name: 'SERVICE_NAME', value: 'svc-$(NAMESPACE)' }, { name: 'INGRESS_NAME', value: 'ing' }] }))!;
    expect(plain.mode).to.equal('http');
    expect(plain.context).to.deep.equal({ namespace: 'gateway-conformance-infra', ingress: 'ing', service: 'svc-gateway-conformance-infra', pod: 'infra-backend-v1-7d9c8b6f5-abcde' });
    expect(plain.listeners).to.deep.equal([
      { kind: 'echo-http', port: 3000 },
      { kind: 'echo-h2c', port: 3001 },
    ]);
    expect(plain.problems).to.deep.equal([]);

    const grpcPod = echoBasicConfig(pod({ env: [...DOWNWARD_ENV, { name: 'GRPC_ECHO_SERVER', value: '1' }] }))!;
    expect(grpcPod.mode).to.equal('grpc');
    expect(grpcPod.listeners).to.deep.equal([{ kind: 'echo-grpc', port: 3000 }]);
    // An empty GRPC_ECHO_SERVER is unset, as os.Getenv(...) != "" reads it.
    expect(echoBasicConfig(pod({ env: [{ name: 'GRPC_ECHO_SERVER', value: '' }] }))!.mode).to.equal('http');

    const ports = echoBasicConfig(pod({ env: [{ name: 'HTTP_PORT', value: '8080' }, { name: 'H2C_PORT', value: 'nope' }], ports: [{ containerPort: 9999 }] }))!;
    expect(ports.listeners).to.deep.equal([{ kind: 'echo-http', port: 8080 }]);
    expect(ports.problems.join()).to.match(/H2C_PORT/);

    const tls = echoBasicConfig(
      pod({
        env: [
          ...DOWNWARD_ENV,
          { name: 'TLS_SERVER_CERT', value: '/etc/secret-volume/crt' },
          { name: 'TLS_SERVER_PRIVKEY', value: '/etc/secret-volume/key' },
          { name: 'FROM_MAP', valueFrom: { configMapKeyRef: { name: 'm', key: 'k' } } },
        ],
      }),
    )!;
    expect(tls.listeners.map((l) => l.port)).to.deep.equal([3000, 3001]);
    expect(tls.problems.join('; ')).to.match(/FROM_MAP not resolved/).and.match(/HTTPS on 8443 is not served/);

    expect(echoBasicConfig(pod({ ports: [{ containerPort: 8080 }] }, 'fake.invalid/echo:1'))).to.equal(undefined);
  });

  describe('servers', () => {
    const ctx: EchoContext = { namespace: 'gateway-conformance-infra', ingress: '', service: 'infra-backend-v1', pod: 'infra-backend-v1-abc-def' };
    let web: EchoBasicHttpServer;
    let h2cServer: EchoBasicHttpServer;
    let grpcServer: EchoBasicGrpcServer;
    const logs: string[] = [];
    let requests = 0;

    before(async () => {
      web = new EchoBasicHttpServer({ host: '127.0.0.1', port: 0, kind: 'echo-http', context: ctx, onRequest: () => requests++, onEchoLog: (l) => logs.push(l) });
      h2cServer = new EchoBasicHttpServer({ host: '127.0.0.1', port: 0, kind: 'echo-h2c', context: ctx });
      grpcServer = new EchoBasicGrpcServer({ host: '127.0.0.1', port: 0, context: { ...ctx, pod: 'grpc-infra-backend-v1-abc-def' } });
      await Promise.all([web.listen(), h2cServer.listen(), grpcServer.listen()]);
    });

    after(async () => {
      await Promise.all([web?.close(), h2cServer?.close(), grpcServer?.close()]);
    });

    it('refuses to bind outside loopback', async () => {
      const s = new EchoBasicHttpServer({ host: '0.0.0.0', port: 0, kind: 'echo-http', context: ctx });
      let error: Error | undefined;
      await s.listen().catch((err: Error) => (error = err));
      expect(error?.message).to.match(/non-loopback/);
      expect(() => grpcEchoClient('10.0.0.1:3000')).to.throw(/non-loopback/);
    });

    it('echoes an HTTP/1.1 request with what the suite compares, and sets the headers X-Echo-Set-Header asks for', async () => {
      const res = await h1('127.0.0.1', web.port, '/add?x=1&y=<2>', {
        host: 'very.specific.com',
        headers: { 'X-Header-Add': ['some-other-value', 'add-appends-values'], 'X-Echo-Set-Header': 'X-Header-Set:set-overwrites-values,X-Header-Add:a,x-header-add:b' },
      });
      expect(res.status).to.equal(200);
      expect(res.headers['x-content-type-options']).to.equal('nosniff');
      expect(res.headers['x-header-set']).to.equal('set-overwrites-values');
      expect(res.headers['x-header-add']).to.equal('a,b');
      const body = captured(res);
      expect(body).to.deep.include({ path: '/add?x=1&y=<2>', host: 'very.specific.com', method: 'GET', proto: 'HTTP/1.1', namespace: ctx.namespace, ingress: '', service: 'infra-backend-v1', pod: ctx.pod });
      expect(Object.keys(body)).to.deep.equal(['path', 'host', 'method', 'proto', 'headers', 'namespace', 'ingress', 'service', 'pod']);
      expect(body.headers['X-Header-Add']).to.deep.equal(['some-other-value', 'add-appends-values']);
      expect(body.headers).to.not.have.property('Host');
      expect(res.text).to.include('"path": "/add?x=1\\u0026y=\\u003c2\\u003e"');
      expect(logs.at(-1)).to.match(/^Echoing back request made to \/add\?x=1&y=<2> to client \(127\.0\.0\.1:\d+\)$/);
      expect(requests).to.be.greaterThan(0);
    });

    it('answers /health, /status/NNN, ?delay= and bad delays as echo-basic does', async () => {
      const health = await h1('127.0.0.1', web.port, '/health');
      expect([health.status, health.text]).to.deep.equal([200, 'OK']);
      expect((await h1('127.0.0.1', web.port, '/status/503')).status).to.equal(503);
      expect((await h1('127.0.0.1', web.port, '/status/503?x')).status).to.equal(400);
      const toSlash = await h1('127.0.0.1', web.port, '/status');
      expect([toSlash.status, toSlash.headers.location]).to.deep.equal([301, '/status/']);
      const unclean = await h1('127.0.0.1', web.port, '/a/./b/../c?q=1');
      expect([unclean.status, unclean.headers.location]).to.deep.equal([301, '/a/c?q=1']);
      expect(captured(await h1('127.0.0.1', web.port, '/a//b')).path).to.equal('/a//b');
      expect((await h1('127.0.0.1', web.port, '/ws')).status).to.equal(400);

      const t0 = Date.now();
      const slow = await h1('127.0.0.1', web.port, '/backend-timeout?delay=300ms');
      expect(Date.now() - t0).to.be.at.least(290);
      expect(captured(slow).path).to.equal('/backend-timeout?delay=300ms');
      const bad = await h1('127.0.0.1', web.port, '/x?delay=soon');
      expect(bad.status).to.equal(500);
      expect(JSON.parse(bad.text)).to.deep.equal({ message: 'time: invalid duration "soon"' });
    });

    it('speaks h2c with prior knowledge on the H2C port and turns plain HTTP/1.1 away there', async () => {
      const res = await h2c('127.0.0.1', h2cServer.port, { ':path': '/h2c?a=b', ':authority': 'h2c.example', 'x-echo-set-header': 'X-From-Backend:yes', 'x-m': ['1', '2'] });
      expect(res.status).to.equal(200);
      expect(res.headers['x-from-backend']).to.equal('yes');
      const body = captured(res);
      expect(body).to.deep.include({ path: '/h2c?a=b', host: 'h2c.example', method: 'GET', proto: 'HTTP/2.0', pod: ctx.pod, namespace: ctx.namespace });
      expect(body.headers['X-M']).to.deep.equal(['1', '2']);
      // The H2C port has no mux: /status/ and /health are echoed too.
      expect(captured(await h2c('127.0.0.1', h2cServer.port, { ':path': '/status/500' })).path).to.equal('/status/500');

      // The HTTP port is HTTP/1.x only, as echo-basic's: a proxy must not speak h2 to it.
      let refused: Error | undefined;
      await h2c('127.0.0.1', web.port, { ':path': '/' }).catch((err: Error) => (refused = err));
      expect(refused, 'h2c to the HTTP port').to.be.instanceOf(Error);

      const plain = await h1('127.0.0.1', h2cServer.port, '/h1');
      expect([plain.status, plain.text]).to.deep.equal([400, 'Expected h2c request']);
      const upgrade = await h1('127.0.0.1', h2cServer.port, '/up', { headers: { Upgrade: 'h2c', Connection: 'Upgrade, HTTP2-Settings', 'HTTP2-Settings': '' } });
      expect(captured(upgrade)).to.deep.include({ path: '/up', proto: 'HTTP/1.1' });
    });

    it('answers GrpcEcho.Echo and EchoTwo with the method, authority, metadata and pod context; EchoThree is UNIMPLEMENTED', async () => {
      const client = grpcEchoClient(`127.0.0.1:${grpcServer.port}`, 'grpc.example.com');
      try {
        const one = await client.call('Echo', { Version: 'one', 'x-jitter': 'j' });
        expect(one.code).to.equal(grpc.status.OK);
        const a = one.response!.assertions!;
        expect(a.fully_qualified_method).to.equal('/gateway_api_conformance.echo_basic.grpcecho.GrpcEcho/Echo');
        expect(a.authority).to.equal('grpc.example.com');
        expect(a.context).to.deep.equal({ namespace: ctx.namespace, ingress: '', service_name: 'infra-backend-v1', pod: 'grpc-infra-backend-v1-abc-def' });
        expect(a.headers).to.deep.include({ key: ':authority', value: 'grpc.example.com' });
        expect(a.headers).to.deep.include({ key: 'version', value: 'one' });
        expect(a.headers).to.deep.include({ key: 'x-jitter', value: 'j' });

        const two = await client.call('EchoTwo');
        expect(two.code).to.equal(grpc.status.OK);
        expect(two.response!.assertions!.fully_qualified_method).to.equal(grpcEchoMethodPath('EchoTwo'));

        const three = await client.call('EchoThree');
        expect(three.code).to.equal(grpc.status.UNIMPLEMENTED);
      } finally {
        client.close();
      }
    });

    it('frees its port on close, so a recycled pod IP can be bound again at once', async () => {
      const first = new EchoBasicGrpcServer({ host: '127.0.0.1', port: 0, context: ctx });
      const port = await first.listen();
      await first.close();
      const again = new EchoBasicGrpcServer({ host: '127.0.0.1', port, context: ctx });
      expect(await again.listen()).to.equal(port);
      await again.close();
      const web2 = new EchoBasicHttpServer({ host: '127.0.0.1', port: 0, kind: 'echo-http', context: ctx });
      const p2 = await web2.listen();
      await web2.close();
      expect(await connectRefused('127.0.0.1', p2)).to.equal(true);
    });

    // Our message shapes are written in code; where the Go module cache holds the suite, check them on the wire
    // against the suite's own proto file (read from the cache at test time, never copied).
    // scripts/k8s-tools.sh (run by npm test) downloads the module for its CRDs, so it is always there.
    it('encodes EchoResponse as the suite proto decodes it', function () {
      const modCache = execFileSync('go', ['env', 'GOMODCACHE'], { encoding: 'utf8' }).trim() || path.join(os.homedir(), 'go', 'pkg', 'mod');
      const protoFile = path.join(modCache, 'sigs.k8s.io', 'gateway-api@v1.4.0', 'conformance', 'echo-basic', 'grpcecho.proto');
      expect(fs.existsSync(protoFile), `${protoFile} is missing: run bash scripts/k8s-tools.sh`).to.equal(true);
      const theirs = protobuf.parse(fs.readFileSync(protoFile, 'utf8'), { keepCase: true }).root;
      const TheirResponse = theirs.lookupType(`${GRPC_ECHO_PACKAGE}.EchoResponse`);
      const { EchoResponse } = grpcEchoTypes();
      const value = {
        assertions: {
          fully_qualified_method: grpcEchoMethodPath('Echo'),
          headers: [{ key: ':authority', value: 'a' }, { key: 'x', value: 'y' }],
          authority: 'a',
          context: { namespace: 'n', ingress: 'i', service_name: 's', pod: 'p' },
          tls_assertions: { version: 'TLSv1.3', negotiated_protocol: 'h2', server_name: 'sni', cipher_suite: 'c', peer_certificates: ['pem1', 'pem2'] },
        },
        request: {},
      };
      const ours = EchoResponse.encode(EchoResponse.fromObject(value)).finish();
      expect(TheirResponse.toObject(TheirResponse.decode(ours))).to.deep.equal(value);
      const back = TheirResponse.encode(TheirResponse.fromObject(value)).finish();
      expect(Buffer.from(back).equals(Buffer.from(ours))).to.equal(true);
      for (const name of ['EchoRequest', 'Header', 'Context', 'TLSAssertions', 'Assertions']) {
        const t = theirs.lookupType(`${GRPC_ECHO_PACKAGE}.${name}`);
        const o = grpcEchoTypes().root.lookupType(`${GRPC_ECHO_PACKAGE}.${name}`);
        expect(o.fieldsArray.map((f) => [f.name, f.id, f.type, f.repeated]), name).to.deep.equal(t.fieldsArray.map((f) => [f.name, f.id, f.type, f.repeated]));
      }
      const service = theirs.lookupService(`${GRPC_ECHO_PACKAGE}.GrpcEcho`);
      expect(service.methodsArray.map((m) => m.name)).to.deep.equal(['Echo', 'EchoTwo', 'EchoThree']);
    });
  });
});

describe('echo-basic pods in a Kubernetes cluster (real API server + kwok + loopback pods)', function () {
  this.timeout(180_000);
  const NS = 'gateway-conformance-infra';
  let cluster: KubeCluster;
  let pods: PodServers;
  let core: k8s.CoreV1Api;
  let apps: k8s.AppsV1Api;
  const echoLogs: EchoLogLine[] = [];
  const logLines: string[] = [];

  const isReady = (p: k8s.V1Pod): boolean =>
    p.status?.phase === 'Running' && (p.status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');

  /** A Deployment as the suite's base manifests write them: echo-basic, downward-API env, no containerPorts. */
  function echoDeployment(name: string, replicas: number, extraEnv: k8s.V1EnvVar[] = []): k8s.V1Deployment {
    return {
      metadata: { name, labels: { app: name } },
      spec: {
        replicas,
        selector: { matchLabels: { app: name } },
        template: {
          metadata: { labels: { app: name } },
          spec: {
            containers: [{ name, image: IMAGE, env: [...DOWNWARD_ENV, ...extraEnv], resources: { requests: { cpu: '10m' } } }],
          },
        },
      },
    };
  }

  async function readyPods(app: string, n: number): Promise<k8s.V1Pod[]> {
    return eventually(
      async () => {
        const list = await core.listNamespacedPod({ namespace: NS, labelSelector: `app=${app}` });
        const ready = list.items.filter(isReady);
        if (ready.length !== n) throw new Error(`${ready.length}/${n} ready of ${list.items.length}`);
        return ready;
      },
      { timeoutMs: 60_000, intervalMs: 200, what: `${n} ready ${app} pods` },
    );
  }

  function serversOf(all: PodServerInfo[], podName: string): PodServerInfo[] {
    return all.filter((s) => s.namespace === NS && s.pod === podName).sort((a, b) => a.port - b.port);
  }

  before(async function () {
    this.timeout(240_000);
    cluster = await startKubeCluster({ nodes: 1, ...(process.env.KUBE_TEST_POD_CIDR ? { podCidr: process.env.KUBE_TEST_POD_CIDR } : {}) });
    const kc = cluster.kubeConfig();
    core = kc.makeApiClient(k8s.CoreV1Api);
    apps = kc.makeApiClient(k8s.AppsV1Api);
    pods = startPodServers({ kubeConfig: kc, namespaces: [NS], log: (l) => logLines.push(l) });
    pods.events.on('echo-log', (l: EchoLogLine) => echoLogs.push(l));
    await pods.synced;
    await core.createNamespace({ body: { metadata: { name: NS } } });
    await eventually(() => core.readNamespacedServiceAccount({ name: 'default', namespace: NS }), { timeoutMs: 30_000, intervalMs: 100, what: 'default ServiceAccount' });
    await apps.createNamespacedDeployment({ namespace: NS, body: echoDeployment('infra-backend-v1', 2, [{ name: 'SERVICE_NAME', value: 'infra-backend-v1' }]) });
    await apps.createNamespacedDeployment({ namespace: NS, body: echoDeployment('grpc-infra-backend-v1', 1, [{ name: 'GRPC_ECHO_SERVER', value: '1' }]) });
    // Not echo-basic: keeps the pod-servers JSON reply on its containerPort.
    await core.createNamespacedPod({
      namespace: NS,
      body: { metadata: { name: 'plain', labels: { app: 'plain' } }, spec: { containers: [{ name: 'plain', image: 'fake.invalid/echo:1', ports: [{ containerPort: 8080 }] }] } },
    });
  });

  after(async function () {
    this.timeout(60_000);
    await pods?.stop();
    await cluster?.stop();
  });

  it('serves each HTTP echo-basic pod on podIP:3000 (HTTP/1.1) and podIP:3001 (h2c) with its own name and namespace', async () => {
    const ready = await readyPods('infra-backend-v1', 2);
    const names = ready.map((p) => p.metadata!.name!);
    const all = await pods.waitFor((s) => names.every((n) => serversOf(s, n).length === 2), 30_000, 'echo-basic HTTP servers');
    for (const p of ready) {
      const name = p.metadata!.name!;
      const ip = p.status!.podIP!;
      expect(isLoopbackIPv4(ip), ip).to.equal(true);
      expect(serversOf(all, name).map((s) => [s.ip, s.port, s.kind])).to.deep.equal([
        [ip, 3000, 'echo-http'],
        [ip, 3001, 'echo-h2c'],
      ]);

      const res = await h1(ip, 3000, '/add?x=1', {
        host: 'very.specific.com',
        method: 'POST',
        headers: { 'X-Header-Add': ['some-other-value', 'add-appends-values'], 'X-Echo-Set-Header': 'X-Header-Set:set-overwrites-values' },
      });
      expect(res.status).to.equal(200);
      expect(res.headers['x-header-set']).to.equal('set-overwrites-values');
      const body = captured(res);
      expect(body).to.deep.include({ path: '/add?x=1', host: 'very.specific.com', method: 'POST', proto: 'HTTP/1.1', namespace: NS, service: 'infra-backend-v1', ingress: '', pod: name });
      expect(body.pod.startsWith('infra-backend-v1')).to.equal(true);
      expect(body.headers['X-Header-Add']).to.deep.equal(['some-other-value', 'add-appends-values']);
      expect(body.headers['X-Echo-Set-Header']).to.deep.equal(['X-Header-Set:set-overwrites-values']);

      const two = await h2c(ip, 3001, { ':path': '/h2c', ':authority': 'h2c.example:8081', 'some-header': 'v' });
      expect(captured(two)).to.deep.include({ path: '/h2c', host: 'h2c.example:8081', method: 'GET', proto: 'HTTP/2.0', namespace: NS, pod: name });
      expect(captured(two).headers['Some-Header']).to.deep.equal(['v']);
      expect((await h1(ip, 3001, '/')).status).to.equal(400);
      expect((await h1(ip, 3000, '/status/404')).status).to.equal(404);
    }
    expect(echoLogs.some((l) => l.namespace === NS && names.includes(l.pod) && /^Echoing back request made to \/add\?x=1 to client/.test(l.line))).to.equal(true);
    const byPod = await pods.waitForListening(NS, names[0]!);
    expect(byPod.requests).to.be.greaterThan(0);
  });

  it('serves the GRPC_ECHO_SERVER pod as the suite\'s GrpcEcho on podIP:3000', async () => {
    const [p] = await readyPods('grpc-infra-backend-v1', 1);
    const name = p!.metadata!.name!;
    const ip = p!.status!.podIP!;
    const all = await pods.waitFor((s) => serversOf(s, name).length === 1, 30_000, 'echo-basic gRPC server');
    expect(serversOf(all, name).map((s) => [s.ip, s.port, s.kind, s.url])).to.deep.equal([[ip, 3000, 'echo-grpc', `grpc://${ip}:3000`]]);
    expect(await connectRefused(ip, 3001)).to.equal(true);

    // As the suite's client: one channel per expectation, the authority override, metadata per call.
    const client = grpcEchoClient(`${ip}:3000`, 'grpc-header-matching.example');
    try {
      const res = await client.call('Echo', { Version: 'two', Color: 'orange' });
      expect(res.code).to.equal(grpc.status.OK);
      const a = res.response!.assertions!;
      expect(a.fully_qualified_method).to.equal(grpcEchoMethodPath('Echo'));
      expect(a.context!.namespace).to.equal(NS);
      expect(a.context!.pod).to.equal(name);
      expect(a.context!.pod.startsWith('grpc-infra-backend-v1')).to.equal(true);
      expect(a.authority).to.equal('grpc-header-matching.example');
      expect(a.headers).to.deep.include.members([
        { key: 'version', value: 'two' },
        { key: 'color', value: 'orange' },
      ]);
      const two = await client.call('EchoTwo');
      expect([two.code, two.response!.assertions!.fully_qualified_method]).to.deep.equal([grpc.status.OK, grpcEchoMethodPath('EchoTwo')]);
      expect((await client.call('EchoThree')).code).to.equal(grpc.status.UNIMPLEMENTED);
    } finally {
      client.close();
    }
  });

  it('keeps the JSON pod reply for pods that are not echo-basic', async () => {
    const [p] = await readyPods('plain', 1);
    const info = await pods.waitForListening(NS, 'plain');
    expect([info.ip, info.port, info.kind]).to.deep.equal([p!.status!.podIP, 8080, 'http']);
    const res = await h1(info.ip, 8080, '/x', { host: 'plain.test' });
    expect(JSON.parse(res.text)).to.include({ pod: 'plain', namespace: NS, path: '/x', protocol: 'HTTP/1.1' });
  });

  it('stops an echo-basic pod\'s servers when the pod goes away', async () => {
    const ready = await readyPods('grpc-infra-backend-v1', 1);
    const ip = ready[0]!.status!.podIP!;
    await apps.deleteNamespacedDeployment({ name: 'grpc-infra-backend-v1', namespace: NS });
    await pods.waitForClosed(NS, ready[0]!.metadata!.name!, 60_000);
    expect(await connectRefused(ip, 3000)).to.equal(true);
  });

  it('kept every control-plane process running and logged no echo-basic problems', () => {
    expect(cluster.exited()).to.deep.equal([]);
    expect(logLines.filter((l) => l.includes('echo-basic pod'))).to.deep.equal([]);
  });
});
