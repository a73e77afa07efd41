import { createHash, randomBytes } from 'node:crypto';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { grpcEcho, grpcEchoChat, grpcEchoStream, grpcHealthCheck, isGrpcError } from '../../../upstream/grpc-client.ts';
import { ECHO_CHAT_METHOD_PATH, ECHO_METHOD_PATH, ECHO_SERVICE_NAME, ECHO_STREAM_METHOD_PATH } from '../../../upstream/protos.ts';
import { HTTP2_PREFACE, startUpstream, type Upstream } from '../../../upstream/server.ts';

const HOST = '127.0.0.1';

interface HttpResult {
  status: number;
  body: Buffer;
  headers: http.IncomingHttpHeaders;
}

function h1Request(
  port: number,
  opts: { method?: string; path?: string; headers?: Record<string, string>; body?: Buffer; agent?: http.Agent },
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: HOST,
        port,
        method: opts.method ?? 'GET',
        path: opts.path ?? '/',
        headers: opts.headers,
        agent: opts.agent,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), headers: res.headers }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

function h2Request(
  session: http2.ClientHttp2Session,
  headers: http2.OutgoingHttpHeaders,
  body?: Buffer,
): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers);
    let status = 0;
    const chunks: Buffer[] = [];
    stream.on('response', (h) => {
      status = Number(h[':status']);
    });
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve({ status, body: Buffer.concat(chunks) }));
    stream.on('error', reject);
    stream.end(body);
  });
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

describe('upstream demo backend', () => {
  let upstream: Upstream;

  before(async () => {
    upstream = await startUpstream({ id: 'unit-upstream' });
  });

  after(async () => {
    await upstream.close();
  });

  beforeEach(() => {
    upstream.clearReceived();
  });

  it('binds both ports on 127.0.0.1 and reports readyAt as epoch ms', () => {
    expect(upstream.httpPort).to.be.greaterThan(0);
    expect(upstream.grpcPort).to.be.greaterThan(0);
    expect(upstream.httpPort).to.not.equal(upstream.grpcPort);
    expect(upstream.readyAt).to.be.within(Date.now() - 60_000, Date.now() + 1_000);
  });

  it('echoes an HTTP/1.1 request and records it', async () => {
    const body = Buffer.from('hello');
    const res = await h1Request(upstream.httpPort, {
      method: 'PUT',
      path: '/some/path?x=1',
      headers: { 'content-type': 'text/plain', 'x-test-id': 't-h1', 'x-request-id': 'r-1', 'x-other': 'ignored' },
      body,
    });
    expect(res.status).to.equal(200);
    const json = JSON.parse(res.body.toString());
    expect(json).to.include({
      upstream: 'unit-upstream',
      method: 'PUT',
      path: '/some/path?x=1',
      protocol: 'HTTP/1.1',
      authority: `${HOST}:${upstream.httpPort}`,
      bodyBytes: 5,
      bodySha256: sha256(body),
    });
    expect(json.headers).to.deep.equal({ 'content-type': 'text/plain', 'x-request-id': 'r-1', 'x-test-id': 't-h1' });
    expect(json.receivedAt).to.be.a('number');
    expect(upstream.received).to.have.length(1);
    expect(upstream.received[0]).to.deep.equal(json);
  });

  it('serves HTTP/2 with prior knowledge on the same port', async () => {
    const session = http2.connect(`http://${HOST}:${upstream.httpPort}`);
    try {
      const res = await h2Request(session, {
        ':method': 'GET',
        ':path': '/h2',
        ':authority': 'vhost.example',
        'x-test-id': 't-h2',
      });
      expect(res.status).to.equal(200);
      const json = JSON.parse(res.body.toString());
      expect(json).to.include({ protocol: 'HTTP/2', method: 'GET', path: '/h2', authority: 'vhost.example' });
      expect(json.headers).to.deep.equal({ 'x-test-id': 't-h2' });
    } finally {
      session.close();
    }
    expect(upstream.received.map((r) => r.protocol)).to.deep.equal(['HTTP/2']);
  });

  it('recognises an HTTP/2 preface that arrives in several segments', async () => {
    const socket = net.connect(upstream.httpPort, HOST);
    socket.setNoDelay(true);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const firstBytes = new Promise<Buffer>((resolve) => socket.once('data', resolve));
    socket.write(HTTP2_PREFACE.subarray(0, 5));
    await new Promise((r) => setTimeout(r, 30));
    socket.write(HTTP2_PREFACE.subarray(5, 17));
    await new Promise((r) => setTimeout(r, 30));
    // The rest of the preface plus an empty SETTINGS frame.
    socket.write(Buffer.concat([HTTP2_PREFACE.subarray(17), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])]));
    const reply = await firstBytes;
    socket.destroy();
    // An HTTP/2 server opens with a SETTINGS frame (type 4 at byte 3); an
    // HTTP/1.1 server would have answered 400 in text.
    expect(reply.length).to.be.at.least(9);
    expect(reply[3]).to.equal(4);
  });

  it('handles an HTTP/1.1 request line split across segments', async () => {
    const socket = net.connect(upstream.httpPort, HOST);
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString()));
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    // "P" is a prefix of the h2 preface as well as of "POST": the router must wait.
    socket.write('P');
    await new Promise((r) => setTimeout(r, 30));
    socket.write('OST /split HTTP/1.1\r\nHost: split.example\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    await closed;
    expect(text).to.match(/^HTTP\/1\.1 200 /);
    expect(upstream.received[0]).to.include({ protocol: 'HTTP/1.1', method: 'POST', authority: 'split.example' });
  });

  it('hashes a 1 MiB POST correctly over HTTP/1.1 and HTTP/2', async () => {
    const body = randomBytes(1024 * 1024);
    const h1 = JSON.parse((await h1Request(upstream.httpPort, { method: 'POST', path: '/upload', body })).body.toString());
    expect(h1.bodyBytes).to.equal(body.length);
    expect(h1.bodySha256).to.equal(sha256(body));

    const session = http2.connect(`http://${HOST}:${upstream.httpPort}`);
    try {
      const res = await h2Request(session, { ':method': 'POST', ':path': '/upload' }, body);
      const h2 = JSON.parse(res.body.toString());
      expect(h2.protocol).to.equal('HTTP/2');
      expect(h2.bodyBytes).to.equal(body.length);
      expect(h2.bodySha256).to.equal(sha256(body));
    } finally {
      session.close();
    }
  });

  it('answers /healthz with "ok" without recording it', async () => {
    const res = await h1Request(upstream.httpPort, { path: '/healthz' });
    expect(res.status).to.equal(200);
    expect(res.body.toString()).to.equal('ok');
    expect(upstream.received).to.have.length(0);
  });

  it('honours /status?code=N and rejects nonsense codes', async () => {
    expect((await h1Request(upstream.httpPort, { path: '/status?code=503' })).status).to.equal(503);
    expect((await h1Request(upstream.httpPort, { path: '/status?code=204' })).status).to.equal(204);
    expect((await h1Request(upstream.httpPort, { path: '/status?code=abc' })).status).to.equal(400);
  });

  it('delays /delay?ms=N answers, recording on arrival', async () => {
    let answered = false;
    const pending = h1Request(upstream.httpPort, { path: '/delay?ms=300' }).then((res) => {
      answered = true;
      return res;
    });
    await new Promise((r) => setTimeout(r, 100));
    expect(answered).to.equal(false);
    expect(upstream.received.map((r) => r.path)).to.deep.equal(['/delay?ms=300']);
    const res = await pending;
    expect(res.status).to.equal(200);
    expect(JSON.parse(res.body.toString()).path).to.equal('/delay?ms=300');
  });

  it('emits a request event for each recorded request', async () => {
    const seen: string[] = [];
    const listener = (r: { path: string }): void => {
      seen.push(r.path);
    };
    upstream.events.on('request', listener);
    try {
      await h1Request(upstream.httpPort, { path: '/evt' });
    } finally {
      upstream.events.off('request', listener);
    }
    expect(seen).to.deep.equal(['/evt']);
  });

  it('reports SERVING over the standard gRPC health service', async () => {
    const target = `${HOST}:${upstream.grpcPort}`;
    expect(await grpcHealthCheck(target, 'vhost.example')).to.deep.equal({ status: 'SERVING' });
    expect(await grpcHealthCheck(target, 'vhost.example', ECHO_SERVICE_NAME)).to.deep.equal({ status: 'SERVING' });
    const unknown = await grpcHealthCheck(target, 'vhost.example', 'no.such.Service');
    expect(unknown).to.have.nested.property('error.code', 5);
    // Health checks are infrastructure noise, not traffic under test.
    expect(upstream.received).to.have.length(0);
  });

  it('echoes over gRPC with the payload hash and the dialled authority', async () => {
    const payload = randomBytes(64 * 1024);
    const reply = await grpcEcho(`${HOST}:${upstream.grpcPort}`, 'grpc.vhost.example', 'ping', payload, 5_000, {
      'x-test-id': 't-grpc',
    });
    if (isGrpcError(reply)) throw new Error(`echo failed: ${reply.error.code} ${reply.error.details}`);
    expect(reply).to.deep.equal({
      message: 'ping',
      upstream: 'unit-upstream',
      payload_bytes: payload.length,
      payload_sha256: sha256(payload),
      authority: 'grpc.vhost.example',
      sequence: 0,
    });
    expect(upstream.received).to.have.length(1);
    expect(upstream.received[0]).to.include({
      protocol: 'gRPC',
      path: ECHO_METHOD_PATH,
      authority: 'grpc.vhost.example',
      bodyBytes: payload.length,
      bodySha256: sha256(payload),
    });
    expect(upstream.received[0]?.headers).to.include({ 'x-test-id': 't-grpc' });
  });

  it('streams EchoStream replies, numbered, and ends the call after the last', async () => {
    const replies = await grpcEchoStream(`${HOST}:${upstream.grpcPort}`, 'stream.example', { message: 'tick', count: 3, intervalMs: 5 });
    if (isGrpcError(replies)) throw new Error(`stream failed: ${replies.error.code} ${replies.error.details}`);
    expect(replies.map((r) => [r.message, r.sequence, r.authority, r.upstream])).to.deep.equal([
      ['tick', 1, 'stream.example', 'unit-upstream'],
      ['tick', 2, 'stream.example', 'unit-upstream'],
      ['tick', 3, 'stream.example', 'unit-upstream'],
    ]);
    expect(upstream.received.map((r) => r.path)).to.deep.equal([ECHO_STREAM_METHOD_PATH]);
  });

  it('sends each EchoStream reply when it is due, not at the end: the first ones arrive long before the last is due', async () => {
    // 1,000 replies 10 ms apart take 10 s; the deadline is 5 s: only a streamed answer gets replies at all.
    const replies = await grpcEchoStream(`${HOST}:${upstream.grpcPort}`, 'stream.example', { message: 'long', count: 1000, intervalMs: 10 }, { deadlineMs: 5_000, cancelAfter: 3 });
    if (isGrpcError(replies)) throw new Error(`stream failed: ${replies.error.code} ${replies.error.details}`);
    expect(replies.map((r) => r.sequence)).to.deep.equal([1, 2, 3]);
  });

  it('refuses an EchoStream asking for more than 1,000 replies with INVALID_ARGUMENT', async () => {
    const res = await grpcEchoStream(`${HOST}:${upstream.grpcPort}`, 'x', { message: 'x', count: 1001 });
    expect(res).to.have.nested.property('error.code', 3);
  });

  it('answers each EchoChat message as it arrives, in a conversation', async () => {
    const replies = await grpcEchoChat(`${HOST}:${upstream.grpcPort}`, 'chat.example', ['one', 'two', 'three']);
    if (isGrpcError(replies)) throw new Error(`chat failed: ${replies.error.code} ${replies.error.details}`);
    expect(replies.map((r) => [r.message, r.sequence, r.authority])).to.deep.equal([
      ['one', 1, 'chat.example'],
      ['two', 2, 'chat.example'],
      ['three', 3, 'chat.example'],
    ]);
    expect(upstream.received.map((r) => r.path)).to.deep.equal([ECHO_CHAT_METHOD_PATH]);
  });

  it('returns a gRPC error object when nothing listens', async () => {
    const closed = await startUpstream();
    const port = closed.grpcPort;
    await closed.close();
    const res = await grpcEcho(`${HOST}:${port}`, 'x', 'ping', undefined, 2_000);
    expect(res).to.have.nested.property('error.code', 14);
  });

  it('records HTTP/1.1, HTTP/2 and gRPC traffic side by side', async () => {
    await h1Request(upstream.httpPort, { path: '/one' });
    const session = http2.connect(`http://${HOST}:${upstream.httpPort}`);
    try {
      await h2Request(session, { ':method': 'GET', ':path': '/two' });
    } finally {
      session.close();
    }
    await grpcEcho(`${HOST}:${upstream.grpcPort}`, 'vhost.example', 'three');
    expect(upstream.received.map((r) => [r.protocol, r.path])).to.deep.equal([
      ['HTTP/1.1', '/one'],
      ['HTTP/2', '/two'],
      ['gRPC', ECHO_METHOD_PATH],
    ]);
  });
});

describe('upstream lifecycle', () => {
  it('close() resolves despite open keep-alive and HTTP/2 connections and pending delays', async () => {
    const u = await startUpstream();
    const agent = new http.Agent({ keepAlive: true });
    try {
      const res = await h1Request(u.httpPort, { path: '/ka', agent });
      expect(res.status).to.equal(200);
      const session = http2.connect(`http://${HOST}:${u.httpPort}`);
      session.on('error', () => {});
      await h2Request(session, { ':method': 'GET', ':path': '/open' });
      const pending = h1Request(u.httpPort, { path: '/delay?ms=30000' }).catch((err: unknown) => err);
      await new Promise((r) => setTimeout(r, 50));
      // Without socket tracking server.close() would wait out the idle
      // keep-alive and the 30 s delay, blowing the mocha timeout.
      const started = Date.now();
      await u.close();
      expect(Date.now() - started).to.be.below(2_000);
      expect(await pending).to.be.instanceOf(Error);
      session.destroy();
    } finally {
      agent.destroy();
    }
  });

  it('close() is idempotent', async () => {
    const u = await startUpstream();
    await Promise.all([u.close(), u.close()]);
    await u.close();
  });

  it('startupDelayMs postpones binding', async () => {
    const order: string[] = [];
    const starting = startUpstream({ startupDelayMs: 200 }).then((u) => {
      order.push('ready');
      return u;
    });
    await new Promise((r) => setTimeout(r, 20));
    order.push('still-starting');
    const u = await starting;
    const beforeReady = order.slice();
    await u.close();
    expect(beforeReady).to.deep.equal(['still-starting', 'ready']);
  });

  it('startupDelayMs: readyAt comes after the call was made', async () => {
    const calledAt = Date.now();
    const u = await startUpstream({ startupDelayMs: 100 });
    try {
      expect(u.readyAt).to.be.greaterThan(calledAt);
    } finally {
      await u.close();
    }
  });

  it('fails cleanly when the port is taken', async () => {
    const u = await startUpstream();
    try {
      let failed: unknown;
      try {
        const clash = await startUpstream({ httpPort: u.httpPort });
        await clash.close();
      } catch (err) {
        failed = err;
      }
      expect(failed).to.be.instanceOf(Error);
    } finally {
      await u.close();
    }
  });
});

describe('upstream CLI (upstream/main.ts)', () => {
  const mainPath = fileURLToPath(new URL('../../../upstream/main.ts', import.meta.url));
  const runCli = (args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> =>
    new Promise((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', mainPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.once('exit', (code) => resolve({ code, stdout, stderr }));
    });

  it('prints its usage for --help and exits 0 without serving', async () => {
    const { code, stdout } = await runCli(['--help']);
    expect(code).to.equal(0);
    expect(stdout).to.match(/^Usage: /);
    expect(stdout).to.include('--grpc-port').and.include('EchoStream');
    expect(stdout, 'no ready line: it did not start serving').to.not.match(/^\{/m);
  });

  it('names an unknown option, prints its usage and exits 2', async () => {
    const { code, stderr } = await runCli(['--bogus']);
    expect(code).to.equal(2);
    expect(stderr).to.include("Unknown option '--bogus'").and.include('Usage: ');
  });

  it('logs one ready line with its ports, serves, and exits 0 on SIGTERM', async () => {
    const mainPath = fileURLToPath(new URL('../../../upstream/main.ts', import.meta.url));
    // Spawn node directly rather than through the tsx/npx wrappers so the
    // signal reaches the upstream process itself.
    const child = spawn(process.execPath, ['--import', 'tsx', mainPath, '--grpc-port', '0', '--id', 'cli-upstream'], {
      env: { ...process.env, PORT: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const readyLine = await new Promise<string>((resolve, reject) => {
        let buf = '';
        child.stdout.on('data', (c: Buffer) => {
          buf += c.toString();
          const nl = buf.indexOf('\n');
          if (nl >= 0) resolve(buf.slice(0, nl));
        });
        child.once('exit', (code) => reject(new Error(`exited early with ${code}`)));
      });
      const ready = JSON.parse(readyLine);
      expect(ready).to.include({ msg: 'upstream ready', id: 'cli-upstream' });
      expect(ready.httpPort).to.be.a('number').greaterThan(0);
      expect(ready.grpcPort).to.be.a('number').greaterThan(0);
      expect(ready.readyAt).to.be.a('number');
      const res = await h1Request(ready.httpPort, { path: '/cli' });
      expect(JSON.parse(res.body.toString())).to.include({ upstream: 'cli-upstream', path: '/cli' });
      expect(await grpcHealthCheck(`${HOST}:${ready.grpcPort}`, 'cli.example')).to.deep.equal({ status: 'SERVING' });
      child.kill('SIGTERM');
      expect(await exited).to.equal(0);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });
});
