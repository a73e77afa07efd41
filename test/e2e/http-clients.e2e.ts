// Issue 10: clients that are not plain HTTP/1.1 or HTTP/2: HTTP/1.0 (with and without a Host header) and
// `Expect: 100-continue`, to a ready host and to a cold one, through the real Envoy.
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { expect } from 'chai';
import { MISSING_HOST_MESSAGE } from '../../snapshots/listeners.ts';
import { eventually } from '../support/eventually.ts';
import { startStack, type Stack } from '../support/stack.ts';

const HELD = 'wasmcustom.scale_to_zero.held';
const PAUSED = 'http.gateway.downstream_flow_control_paused_reading_total';

interface RawReply {
  statusLine: string;
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Writes a request as given on a fresh connection and reads until the server closes it (as HTTP/1.0 does). */
function rawRequest(port: number, request: string, timeoutMs = 60_000): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`no close within ${timeoutMs} ms`)));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('end', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const split = text.indexOf('\r\n\r\n');
      const [statusLine = '', ...lines] = text.slice(0, split < 0 ? text.length : split).split('\r\n');
      const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
      resolve({ statusLine, status: Number(statusLine.split(' ')[1]), headers, body: split < 0 ? '' : text.slice(split + 4) });
      socket.destroy();
    });
    socket.write(request);
  });
}

const http10 = (path: string, host?: string): string => `GET ${path} HTTP/1.0\r\n${host ? `Host: ${host}\r\n` : ''}User-Agent: old-checker/1.0\r\n\r\n`;

async function heldCount(stack: Stack): Promise<number> {
  return (await stack.envoy.stats('scale_to_zero')).get(HELD) ?? 0;
}

async function waitHeld(stack: Stack, n: number): Promise<void> {
  await eventually(async () => {
    const h = await heldCount(stack);
    if (h !== n) throw new Error(`held gauge is ${h}, want ${n}`);
  }, { timeoutMs: 20_000, what: `${n} held requests` });
}

async function admin(stack: Stack, path: string): Promise<void> {
  const res = await stack.adminFetch(path, { method: 'POST' });
  expect(res.status, `${path} answered ${res.status}`).to.equal(200);
}

describe('HTTP/1.0 and Expect: 100-continue on a real Envoy', function () {
  this.timeout(120_000);
  let stack: Stack;

  before(async () => {
    stack = await startStack({
      config: (u) => {
        const host = (name: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
          name,
          domains: [`${name}.test`],
          endpoints: [{ address: '127.0.0.1', port: u.httpPort }],
          buffer: { holdTimeoutMs: 30_000, maxHeld: 100, retryAfterSeconds: 1 },
          ...extra,
        });
        return {
          listener: { address: '127.0.0.1', port: 0, http10DefaultHost: 'web.test' },
          hosts: [host('web'), host('cold', { initialState: 'scaled_to_zero' })],
        };
      },
    });
  });
  after(async () => {
    await stack?.close();
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed') console.error(`Envoy log tail:\n${stack.envoy.logTail(40)}`);
    await stack.adminFetch('/v1/hosts/web/wake', { method: 'POST' });
  });

  it('serves HTTP/1.0 with a Host header to a ready host', async () => {
    const reply = await rawRequest(stack.port, http10('/old?with=host', 'web.test'));
    expect(reply.statusLine).to.match(/^HTTP\/1\.[01] 200 /);
    expect(JSON.parse(reply.body)).to.include({ path: '/old?with=host', authority: 'web.test' });
  });

  it('routes HTTP/1.0 without a Host header by listener.http10DefaultHost', async () => {
    const reply = await rawRequest(stack.port, http10('/old?no=host'));
    expect(reply.status).to.equal(200);
    expect(JSON.parse(reply.body)).to.include({ path: '/old?no=host', authority: 'web.test' });
  });

  it('holds HTTP/1.0 requests to a cold host, with and without Host, and answers both after the wake', async () => {
    await admin(stack, '/v1/hosts/cold/scale-to-zero');
    await admin(stack, '/v1/hosts/web/scale-to-zero');
    stack.upstream.clearReceived();
    const withHost = rawRequest(stack.port, http10('/cold?with=host', 'cold.test'));
    // The default host is web.test, now cold too.
    const withoutHost = rawRequest(stack.port, http10('/cold?no=host'));
    await waitHeld(stack, 2);
    expect(stack.upstream.received).to.have.length(0);
    await admin(stack, '/v1/hosts/cold/wake');
    await admin(stack, '/v1/hosts/web/wake');
    const [a, b] = await Promise.all([withHost, withoutHost]);
    expect(a.status, a.body).to.equal(200);
    expect(JSON.parse(a.body)).to.include({ path: '/cold?with=host', authority: 'cold.test' });
    expect(b.status, b.body).to.equal(200);
    expect(JSON.parse(b.body)).to.include({ path: '/cold?no=host', authority: 'web.test' });
  });

  it('answers 100 Continue at once for a request held for a cold host; the body is uploaded into Envoy and delivered after the wake', async () => {
    await admin(stack, '/v1/hosts/cold/scale-to-zero');
    stack.upstream.clearReceived();
    const body = randomBytes(256 * 1024);
    let continuedWhileCold = false;
    let uploaded = false;
    const reply = new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request({
        host: '127.0.0.1',
        port: stack.port,
        method: 'POST',
        path: '/upload',
        headers: { host: 'cold.test', expect: '100-continue', 'content-length': String(body.length) },
        agent: false,
      });
      req.on('continue', () => {
        continuedWhileCold = stack.upstream.received.length === 0;
        req.end(body, () => (uploaded = true));
      });
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      });
      req.on('error', reject);
      req.setTimeout(60_000, () => req.destroy(new Error('no answer')));
    });
    await waitHeld(stack, 1);
    await eventually(async () => {
      if (!uploaded) throw new Error('body not yet written');
    }, { timeoutMs: 10_000, what: 'the whole body written while the host is cold' });
    expect(continuedWhileCold).to.equal(true);
    expect(await heldCount(stack)).to.equal(1);
    expect(stack.upstream.received).to.have.length(0);
    await admin(stack, '/v1/hosts/cold/wake');
    const answer = await reply;
    expect(answer.status).to.equal(200);
    expect(JSON.parse(answer.body)).to.include({ path: '/upload', bodyBytes: body.length, bodySha256: createHash('sha256').update(body).digest('hex') });
  });

  // Envoy keeps a held body up to the connection buffer limit (1 MiB) and then stops reading from the client:
  // a bigger upload waits in the client (HTTP/1.1: in socket buffers; HTTP/2: for flow-control window).
  for (const protocol of ['HTTP/1.1', 'HTTP/2'] as const) {
    it(`stops reading a held ${protocol} body at the buffer limit, and delivers all 4 MiB after the wake`, async () => {
      await admin(stack, '/v1/hosts/cold/scale-to-zero');
      stack.upstream.clearReceived();
      const pausedBefore = (await stack.envoy.stats('flow_control')).get(PAUSED) ?? 0;
      const body = randomBytes(4 * 1024 * 1024);
      let session: http2.ClientHttp2Session | undefined;
      const reply = new Promise<{ status: number; body: string }>((resolve, reject) => {
        const collect = (res: NodeJS.ReadableStream, status: () => number): void => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: status(), body: Buffer.concat(chunks).toString('utf8') }));
        };
        if (protocol === 'HTTP/1.1') {
          const req = http.request({ host: '127.0.0.1', port: stack.port, method: 'POST', path: '/big', headers: { host: 'cold.test', 'content-length': String(body.length) }, agent: false });
          req.on('response', (res) => collect(res, () => res.statusCode ?? 0));
          req.on('error', reject);
          req.end(body);
        } else {
          session = http2.connect(`http://127.0.0.1:${stack.port}`);
          session.on('error', reject);
          const stream = session.request({ ':method': 'POST', ':path': '/big', ':authority': 'cold.test', 'content-length': String(body.length) });
          let status = 0;
          stream.on('response', (h) => (status = Number(h[':status'])));
          stream.on('error', reject);
          collect(stream, () => status);
          stream.end(body);
        }
      });
      try {
        await waitHeld(stack, 1);
        await eventually(async () => {
          const paused = (await stack.envoy.stats('flow_control')).get(PAUSED) ?? 0;
          if (paused <= pausedBefore) throw new Error(`${PAUSED} is ${paused}`);
        }, { timeoutMs: 10_000, what: 'Envoy to stop reading the held body' });
        expect(stack.upstream.received).to.have.length(0);
        await admin(stack, '/v1/hosts/cold/wake');
        const answer = await reply;
        expect(answer.status).to.equal(200);
        expect(JSON.parse(answer.body)).to.include({ path: '/big', bodyBytes: body.length, bodySha256: createHash('sha256').update(body).digest('hex') });
      } finally {
        session?.close();
      }
    });
  }

  describe('without listener.http10DefaultHost', () => {
    let bare: Stack;
    before(async () => {
      bare = await startStack({ config: (u) => ({ hosts: [{ name: 'web', domains: ['web.test'], endpoints: [{ address: '127.0.0.1', port: u.httpPort }] }] }) });
    });
    after(async () => {
      await bare?.close();
    });

    it('answers HTTP/1.0 without Host 400 with a body that says why, and serves HTTP/1.0 with Host', async () => {
      const missing = await rawRequest(bare.port, http10('/no-host'));
      expect(missing.status).to.equal(400);
      expect(missing.body).to.equal(MISSING_HOST_MESSAGE);
      const withHost = await rawRequest(bare.port, http10('/host', 'web.test'));
      expect(withHost.status).to.equal(200);
    });
  });
});
