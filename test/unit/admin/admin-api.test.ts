// The admin API over HTTP on loopback: every bad input is a 4xx JSON body that says what is wrong.
import { expect } from 'chai';
import { simpleHosts, startTestControlPlane, type TestControlPlane } from '../../support/control-plane.ts';
import { startControlPlane } from '../../../xds-server/control-plane.ts';
import { silentLogger } from '../../../xds-server/log.ts';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';

interface Operation {
  security?: unknown[];
  responses: Record<string, { content: Record<string, { schema: unknown }> }>;
}
interface OpenApiDoc {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, { required: string[]; properties: Record<string, unknown> }>; securitySchemes?: unknown };
}
const operations = (doc: OpenApiDoc): [string, Operation][] => Object.entries(doc.paths).flatMap(([p, ops]) => Object.entries(ops).map(([m, op]): [string, Operation] => [`${m} ${p}`, op]));

interface ErrorBody {
  error: string;
  message: string;
  details?: { path: string; message: string }[];
}

describe('admin API', () => {
  let t: TestControlPlane;
  const call = async (p: string, init?: RequestInit): Promise<{ status: number; body: unknown; headers: Headers }> => {
    const res = await fetch(t.cp.adminUrl + p, init);
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text };
  };

  beforeEach(async () => {
    t = await startTestControlPlane(simpleHosts(['alpha', 'beta']));
  });
  afterEach(async () => t.close());

  it('lists hosts with their state', async () => {
    const { status, body } = await call('/v1/hosts');
    expect(status).to.equal(200);
    const hosts = (body as { hosts: { name: string; state: string }[] }).hosts;
    expect(hosts.map((h) => [h.name, h.state])).to.deep.equal([['alpha', 'ready'], ['beta', 'ready']]);
  });

  it('marks a host scaled to zero and back, and publishes each change', async () => {
    const before = t.cp.cache.getSnapshot('default')!.versions.extensionConfig;
    const marked = await call('/v1/hosts/alpha/scale-to-zero', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ reason: 'night' }) });
    expect(marked.status).to.equal(200);
    expect(marked.body).to.deep.include({ changed: true });
    expect((marked.body as { host: { state: string; reason: string } }).host).to.include({ state: 'scaled_to_zero', reason: 'night' });
    const after = t.cp.cache.getSnapshot('default')!.versions.extensionConfig;
    expect(after).to.not.equal(before);
    const again = await call('/v1/hosts/alpha/scale-to-zero', { method: 'POST' });
    expect(again.body).to.deep.include({ changed: false });
    const woken = await call('/v1/hosts/alpha/wake', { method: 'POST' });
    expect((woken.body as { host: { state: string } }).host.state).to.equal('ready');
  });

  it('answers 404 with a JSON body for an unknown host', async () => {
    const { status, body } = await call('/v1/hosts/nobody/wake', { method: 'POST' });
    expect(status).to.equal(404);
    expect(body).to.deep.equal({ error: 'not_found', message: 'no host named "nobody" is configured' });
  });

  it('answers 400 naming the problem for an invalid host name', async () => {
    const { status, body } = await call('/v1/hosts/Bad_Name');
    expect(status).to.equal(400);
    expect((body as ErrorBody).error).to.equal('invalid_request');
    expect((body as ErrorBody).details![0]!.path).to.equal('/name');
  });

  it('answers 400 for an unknown body field, 400 for broken JSON, 415 for non-JSON and 413 for a huge body', async () => {
    const json = { 'content-type': 'application/json' };
    const unknownField = await call('/v1/hosts/alpha/wake', { method: 'POST', headers: json, body: JSON.stringify({ replicas: 3 }) });
    expect(unknownField.status).to.equal(400);
    expect((unknownField.body as ErrorBody).details).to.deep.equal([{ path: '/replicas', message: 'is not a known field' }]);
    const broken = await call('/v1/hosts/alpha/wake', { method: 'POST', headers: json, body: '{"reason":' });
    expect(broken.status).to.equal(400);
    expect((broken.body as ErrorBody).message).to.match(/not valid JSON/);
    const text = await call('/v1/hosts/alpha/wake', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'wake up' });
    expect(text.status).to.equal(415);
    const huge = await call('/v1/hosts/alpha/wake', { method: 'POST', headers: json, body: JSON.stringify({ reason: 'x'.repeat(100_000) }) });
    expect(huge.status).to.equal(413);
    expect((await call('/v1/hosts/alpha')).body).to.deep.include({ state: 'ready' });
  });

  it('answers 404 and 405 as JSON for unknown routes and methods', async () => {
    expect((await call('/v2/things')).status).to.equal(404);
    const wrongMethod = await call('/v1/hosts', { method: 'DELETE' });
    expect(wrongMethod.status).to.equal(405);
    expect((wrongMethod.body as ErrorBody).error).to.equal('method_not_allowed');
  });

  it('answers every method it does not serve with JSON: 405 with Allow, 501 for extension methods, 404 for unknown paths', async () => {
    // node:http, not fetch: fetch refuses to send TRACE.
    const call = (p: string, init: { method: string }): Promise<{ status: number; body: unknown; headers: Headers }> =>
      new Promise((resolve, reject) => {
        const req = http.request(t.cp.adminUrl + p, { method: init.method }, (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () => {
            const headers = new Headers(Object.entries(res.headers).map(([k, v]): [string, string] => [k, String(v)]));
            resolve({ status: res.statusCode!, headers, body: headers.get('content-type')?.includes('json') ? JSON.parse(text) : text });
          });
        });
        req.on('error', reject);
        req.end();
      });
    for (const method of ['TRACE', 'PUT', 'PATCH', 'QUERY']) {
      const res = await call('/v1/hosts/alpha/wake', { method });
      expect(res.status, method).to.equal(405);
      expect(res.headers.get('allow'), method).to.equal('POST, OPTIONS');
      expect((res.body as ErrorBody).error, method).to.equal('method_not_allowed');
    }
    const propfind = await call('/v1/hosts', { method: 'PROPFIND' });
    expect(propfind.status).to.equal(501);
    expect(propfind.headers.get('content-type')).to.match(/^application\/json/);
    expect((propfind.body as ErrorBody).error).to.equal('not_implemented');
    const options = await call('/v1/hosts/alpha', { method: 'OPTIONS' });
    expect(options.status).to.equal(204);
    expect(options.headers.get('allow')).to.equal('GET, HEAD, OPTIONS');
    const unknown = await call('/v2/things', { method: 'TRACE' });
    expect(unknown.status).to.equal(404);
    expect((unknown.body as ErrorBody).error).to.equal('not_found');
  });

  it('answers CONNECT, unparsable requests and oversized headers with JSON too', async () => {
    const url = new URL(t.cp.adminUrl);
    const raw = (request: string): Promise<string> =>
      new Promise<string>((resolve, reject) => {
        const socket = net.connect(Number(url.port), url.hostname, () => socket.write(request));
        let data = '';
        socket.on('data', (d) => (data += d.toString()));
        socket.on('end', () => resolve(data));
        socket.on('error', reject);
      });
    const body = (answer: string): unknown => JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4));
    const connect = await raw(`CONNECT example.test:443 HTTP/1.1\r\nhost: example.test:443\r\n\r\n`);
    expect(connect).to.match(/^HTTP\/1.1 405 /);
    expect(body(connect)).to.include({ error: 'method_not_allowed' });
    const garbage = await raw('GARBAGE\r\n\r\n');
    expect(garbage).to.match(/^HTTP\/1.1 400 /);
    expect(body(garbage)).to.include({ error: 'invalid_request' });
    const huge = await raw(`GET /v1/hosts HTTP/1.1\r\nhost: x\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(huge).to.match(/^HTTP\/1.1 431 /);
    expect(body(huge)).to.include({ error: 'headers_too_large' });
  });

  it('answers a failed wake and a failed scale-down with 503, Retry-After and the reason, as documented', async () => {
    // The controller's answers are replaced: what matters here is how the API reports them.
    t.cp.hosts.wake = async () => ({ changed: false, error: 'the process exited (code 3)' });
    t.cp.hosts.scaleToZero = async () => {
      throw new Error('could not stop it');
    };
    const doc = (await call('/openapi.json')).body as OpenApiDoc;
    const wake = await call('/v1/hosts/alpha/wake', { method: 'POST' });
    expect(wake.status).to.equal(503);
    expect(wake.headers.get('retry-after')).to.equal('1');
    expect(wake.body).to.deep.equal({ error: 'wake_failed', message: 'host "alpha" did not become ready: the process exited (code 3)' });
    const down = await call('/v1/hosts/alpha/scale-to-zero', { method: 'POST' });
    expect(down.status).to.equal(503);
    expect(down.body).to.deep.include({ error: 'scale_down_failed' });
    expect((down.body as ErrorBody).message).to.include('could not stop it');
    for (const p of ['/v1/hosts/{name}/wake', '/v1/hosts/{name}/scale-to-zero']) expect(Object.keys(doc.paths[p]!.post!.responses), p).to.include('503');
  });

  it('refuses a JSON null body as not an object', async () => {
    const res = await call('/v1/hosts/alpha/scale-to-zero', { method: 'POST', headers: { 'content-type': 'application/json' }, body: 'null' });
    expect(res.status).to.equal(400);
    expect((await call('/v1/hosts/alpha')).body).to.deep.include({ state: 'ready' });
  });

  it('refuses an invalid config on reload with field errors and keeps the old one', async () => {
    await t.writeConfig({ listener: { port: 10000 }, hosts: [{ name: 'alpha', domains: ['UPPER.test'], endpoints: [] }] });
    const { status, body } = await call('/v1/config/reload', { method: 'POST' });
    expect(status).to.equal(400);
    const paths = (body as ErrorBody).details!.map((d) => d.path);
    expect(paths).to.include.members(['/hosts/0/domains/0', '/hosts/0/endpoints']);
    expect((await call('/v1/hosts')).body).to.have.nested.property('hosts.length', 2);
  });

  it('serves an OpenAPI document that lists every route, without auth when no token is configured', async () => {
    const { status, body } = await call('/openapi.json');
    expect(status).to.equal(200);
    const doc = body as OpenApiDoc;
    expect(Object.keys(doc.paths)).to.include.members(['/v1/hosts', '/v1/hosts/{name}/wake', '/v1/hosts/{name}/scale-to-zero', '/v1/nodes', '/v1/config/reload']);
    expect(doc.components).to.not.have.property('securitySchemes');
    for (const [p, op] of operations(doc)) {
      expect(op, p).to.not.have.property('security');
      expect(op.responses, p).to.not.have.property('401');
    }
    expect(doc.paths['/v1/hosts/{name}/wake']!.post!.responses).to.have.property('503');
    expect(doc.components.schemas.Host!.required).to.include('scaling');
    expect(doc.paths['/v1/hosts/{name}']!.get!.responses['200']!.content['application/json']!.schema).to.deep.equal({ $ref: '#/components/schemas/Host' });
  });

  it('documents every field a host answer carries', async () => {
    await call('/v1/hosts/alpha/scale-to-zero', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ reason: 'night' }) });
    const doc = (await call('/openapi.json')).body as OpenApiDoc;
    const host = (await call('/v1/hosts/alpha')).body as Record<string, unknown>;
    expect(Object.keys(host)).to.have.members(Object.keys(doc.components.schemas.Host!.properties));
  });

  it('keeps marks across a restart, and the filter generation never goes back', async () => {
    await call('/v1/hosts/beta/scale-to-zero', { method: 'POST' });
    const generation = t.cp.store.currentGeneration;
    const { xdsPort, adminPort } = t.cp;
    await t.cp.close();
    t.cp = await startControlPlane({ configPath: path.join(t.dir, 'gateway.yaml'), stateDir: path.join(t.dir, 'state'), filterWasmPath: '/opt/stz/filter.wasm', log: silentLogger, xdsPort, adminPort });
    const hosts = (await call('/v1/hosts')).body as { hosts: { name: string; state: string }[] };
    expect(hosts.hosts.find((h) => h.name === 'beta')!.state).to.equal('scaled_to_zero');
    expect(t.cp.store.currentGeneration).to.be.greaterThan(generation);
  });

  it('the filter wake route accepts known hosts only, and is rate limited', async () => {
    await call('/v1/hosts/alpha/scale-to-zero', { method: 'POST' });
    expect((await call('/v1/wake/nobody', { method: 'POST' })).status).to.equal(404);
    const accepted = await call('/v1/wake/alpha', { method: 'POST' });
    expect(accepted.status).to.equal(202);
    const statuses: number[] = [];
    for (let i = 0; i < 200; i++) statuses.push((await call('/v1/wake/alpha', { method: 'POST' })).status);
    expect(statuses).to.include(429);
  });

  it('the readiness signal route wants a well-formed token of a running start: 400 without one, 403 with another, 404 for an unknown host', async () => {
    const post = (host: string, token?: string): Promise<{ status: number; body: unknown }> =>
      call(`/v1/ready/${host}`, { method: 'POST', ...(token !== undefined ? { headers: { 'x-scale-to-zero-ready-token': token } } : {}) });
    const missing = await post('alpha');
    expect(missing.status).to.equal(400);
    expect(missing.body).to.deep.include({ error: 'invalid_request' });
    expect((await post('alpha', 'not-hex')).status).to.equal(400);
    expect((await post('nobody', 'a'.repeat(32))).status).to.equal(404);
    // alpha is a manual host: no process of ours runs for it, so no token can be good.
    const refused = await post('alpha', 'a'.repeat(32));
    expect(refused.status).to.equal(403);
    expect(refused.body).to.deep.include({ error: 'invalid_ready_token' });
  });
});

describe('status page routes', () => {
  let t: TestControlPlane;
  beforeEach(async () => {
    t = await startTestControlPlane(simpleHosts(['alpha']), { adminToken: 's3cret' });
  });
  afterEach(async () => t.close());
  const auth = { authorization: 'Bearer s3cret' };

  it('serves the page and its files from the repository (no CDN), each with its content type', async () => {
    const page = await fetch(`${t.cp.adminUrl}/status`);
    expect(page.status).to.equal(200);
    expect(page.headers.get('content-type')).to.match(/^text\/html/);
    const html = await page.text();
    expect(html).to.include('<script src="/status/app.js"').and.include('href="/status/style.css"');
    // Nothing from elsewhere: every src/href is a path on this server or a fragment.
    for (const [, ref] of html.matchAll(/(?:src|href)="([^"]+)"/g)) expect(ref, ref).to.match(/^(\/status\/|#)/);
    expect((await fetch(`${t.cp.adminUrl}/status/app.js`)).headers.get('content-type')).to.match(/^text\/javascript/);
    expect((await fetch(`${t.cp.adminUrl}/status/style.css`)).headers.get('content-type')).to.match(/^text\/css/);
  });

  it('answers the status document (checked against its schema) and streams it as server-sent events, both behind the token', async () => {
    expect((await fetch(`${t.cp.adminUrl}/v1/status`)).status).to.equal(401);
    expect((await fetch(`${t.cp.adminUrl}/v1/status/events`)).status).to.equal(401);
    const doc = (await (await fetch(`${t.cp.adminUrl}/v1/status`, { headers: auth })).json()) as { hosts: { name: string; phase: string; held: { total: number } }[] };
    expect(doc.hosts.map((h) => [h.name, h.phase, h.held.total])).to.deep.equal([['alpha', 'ready', 0]]);

    const abort = new AbortController();
    const res = await fetch(`${t.cp.adminUrl}/v1/status/events`, { headers: auth, signal: abort.signal });
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.match(/^text\/event-stream/);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    const until = async (match: RegExp): Promise<void> => {
      while (!match.test(text)) text += decoder.decode((await reader.read()).value, { stream: true });
    };
    await until(/event: status\ndata: .*"phase":"ready".*\n\n/);
    // A change is pushed without asking: the scale-down moves alpha to scaled_to_zero.
    expect((await fetch(`${t.cp.adminUrl}/v1/hosts/alpha/scale-to-zero`, { method: 'POST', headers: auth })).status).to.equal(200);
    await until(/"phase":"scaled_to_zero"/);
    expect(t.cp.status.listenerCount).to.equal(1);
    abort.abort();
    await new Promise((r) => setTimeout(r, 100));
    expect(t.cp.status.listenerCount, 'a closed stream unsubscribes').to.equal(0);
  });

  it('records the held report of a wake call and refuses a malformed one', async () => {
    const ok = await fetch(`${t.cp.adminUrl}/v1/wake/alpha`, { method: 'POST', headers: { 'x-scale-to-zero-held': '4', 'x-scale-to-zero-envoy': 'envoy-a' } });
    expect(ok.status).to.equal(202);
    expect(t.cp.held.total('alpha')).to.equal(4);
    expect(t.cp.metrics.render()).to.include('stz_requests_held{host="alpha"} 4');
    const malformed: Record<string, string>[] = [{ 'x-scale-to-zero-held': '-1', 'x-scale-to-zero-envoy': 'e' }, { 'x-scale-to-zero-held': '' }, { 'x-scale-to-zero-held': '1', 'x-scale-to-zero-envoy': 'has space' }];
    for (const headers of malformed) {
      const res = await fetch(`${t.cp.adminUrl}/v1/wake/alpha`, { method: 'POST', headers });
      expect(res.status, JSON.stringify(headers)).to.equal(400);
    }
  });
});

describe('admin API with a token', () => {
  let t: TestControlPlane;
  beforeEach(async () => {
    t = await startTestControlPlane(simpleHosts(['alpha']), { adminToken: 's3cret' });
  });
  afterEach(async () => t.close());

  it('declares bearer auth and a 401 answer on exactly the routes that need the token', async () => {
    const doc = (await (await fetch(`${t.cp.adminUrl}/openapi.json`)).json()) as OpenApiDoc;
    expect(doc.components.securitySchemes).to.deep.equal({ bearer: { type: 'http', scheme: 'bearer' } });
    // The status page's files hold no data (a browser cannot send a token when it opens a URL); what it shows needs the token.
    const open = ['get /healthz', 'get /openapi.json', 'post /v1/wake/{name}', 'post /v1/ready/{name}', 'get /status', 'get /status/app.js', 'get /status/style.css'];
    for (const [p, op] of operations(doc)) {
      const needsToken = !open.includes(p);
      expect(op.security, p).to.deep.equal(needsToken ? [{ bearer: [] }] : []);
      expect(Object.keys(op.responses).includes('401'), p).to.equal(needsToken);
      const [method, route] = p.split(' ') as [string, string];
      const res = await fetch(t.cp.adminUrl + route.replace('{name}', 'alpha').replace('{id}', 'x'), { method: method.toUpperCase() });
      if (needsToken) expect(res.status, p).to.equal(401);
      else expect(res.status, p).to.not.equal(401);
    }
  });

  it('needs the bearer token except for health, the OpenAPI document and the filter wake route', async () => {
    expect((await fetch(`${t.cp.adminUrl}/v1/hosts`)).status).to.equal(401);
    expect((await fetch(`${t.cp.adminUrl}/v1/hosts`, { headers: { authorization: 'Bearer wrong!' } })).status).to.equal(401);
    expect((await fetch(`${t.cp.adminUrl}/v1/hosts`, { headers: { authorization: 'Bearer s3cret' } })).status).to.equal(200);
    expect((await fetch(`${t.cp.adminUrl}/healthz`)).status).to.equal(200);
    expect((await fetch(`${t.cp.adminUrl}/openapi.json`)).status).to.equal(200);
    expect((await fetch(`${t.cp.adminUrl}/v1/wake/alpha`, { method: 'POST' })).status).to.equal(202);
  });
});

describe('config reload with process hosts', () => {
  let t: TestControlPlane;
  beforeEach(async () => {
    t = await startTestControlPlane(simpleHosts(['alpha']));
  });
  afterEach(async () => t.close());

  it('holds a process host that a reload adds, since its process is not running', async () => {
    await t.writeConfig({
      ...simpleHosts(['alpha']),
      hosts: [...(simpleHosts(['alpha']).hosts as unknown[]), { name: 'proc', domains: ['proc.test'], endpoints: [{ address: '127.0.0.1', port: 1 }], scaler: { kind: 'process', command: ['true'] } }],
    });
    expect((await t.cp.reloadConfig()).ok).to.equal(true);
    const host = (await (await fetch(`${t.cp.adminUrl}/v1/hosts/proc`)).json()) as { state: string; scaling: { phase: string } };
    expect(host.state).to.equal('scaled_to_zero');
    expect(host.scaling.phase).to.equal('scaled_to_zero');
  });
});
