// gRPC streaming through the gateway with the demo service's streaming methods: a call to a cold host is
// held by the filter in the real Envoy, released when the host is woken, and then streams both ways.
import path from 'node:path';
import { expect } from 'chai';
import { REPO_ROOT } from '../../envoy-bootstrap/envoy.ts';
import { grpcEchoChat, grpcEchoStream, isGrpcError, type EchoReply } from '../../upstream/grpc-client.ts';
import { ECHO_CHAT_METHOD_PATH, ECHO_STREAM_METHOD_PATH } from '../../upstream/protos.ts';
import { eventually } from '../support/eventually.ts';
import { freePort } from '../support/ports.ts';
import { startStack, type Stack } from '../support/stack.ts';

const HELD = 'wasmcustom.scale_to_zero.held';

describe('gRPC streaming through the gateway (demo EchoStream and EchoChat)', function () {
  this.timeout(60_000);
  let stack: Stack;
  let target: string;

  before(async () => {
    const demoGrpcPort = await freePort();
    stack = await startStack({
      config: (u) => ({
        hosts: [
          {
            // Like the README's demo-grpc host: the demo upstream as a process the first call starts.
            name: 'demo-grpc',
            domains: ['grpc.demo.test'],
            protocol: 'grpc',
            endpoints: [{ address: '127.0.0.1', port: demoGrpcPort }],
            scaler: { kind: 'process', command: [process.execPath, '--import', 'tsx', path.join(REPO_ROOT, 'upstream', 'main.ts'), '--http-port', '0', '--grpc-port', String(demoGrpcPort), '--id', 'demo-grpc'], cwd: REPO_ROOT },
            health: { grpcService: '' },
            wakeTimeoutMs: 20_000,
          },
          {
            name: 'stream',
            domains: ['stream.test'],
            protocol: 'grpc',
            initialState: 'scaled_to_zero',
            endpoints: [{ address: '127.0.0.1', port: u.grpcPort }],
            buffer: { holdTimeoutMs: 30_000, maxHeld: 100, retryAfterSeconds: 1 },
          },
        ],
      }),
    });
    target = `127.0.0.1:${stack.port}`;
  });
  after(async () => {
    await stack?.close();
  });

  const held = async (): Promise<number> => (await stack.envoy.stats('scale_to_zero')).get(HELD) ?? 0;
  const waitHeld = (n: number): Promise<void> =>
    eventually(
      async () => {
        const h = await held();
        if (h !== n) throw new Error(`held gauge is ${h}, want ${n}`);
      },
      { timeoutMs: 10_000, what: `${n} held calls` },
    );
  const admin = async (path: string): Promise<void> => {
    const res = await stack.adminFetch(path, { method: 'POST' });
    expect(res.status, `${path}: ${await res.text()}`).to.equal(200);
  };

  it('holds a server-streaming call to a cold host, releases it on wake, and streams every reply back', async () => {
    stack.upstream.clearReceived();
    let wokenAt = Infinity;
    const arrivals: number[] = [];
    const call = grpcEchoStream(target, 'stream.test', { message: 'tick', count: 5, intervalMs: 10 }, { deadlineMs: 20_000, onReply: () => arrivals.push(Date.now()) });
    await waitHeld(1);
    expect(stack.upstream.received, 'nothing reaches the cold host').to.have.length(0);
    wokenAt = Date.now();
    await admin('/v1/hosts/stream/wake');
    const replies = await call;
    if (isGrpcError(replies)) throw new Error(`stream failed: ${replies.error.code} ${replies.error.details}`);
    expect(replies.map((r: EchoReply) => [r.message, r.sequence, r.authority])).to.deep.equal([1, 2, 3, 4, 5].map((n) => ['tick', n, 'stream.test']));
    expect(arrivals[0]).to.be.at.least(wokenAt);
    expect(stack.upstream.received.map((r) => r.path)).to.deep.equal([ECHO_STREAM_METHOD_PATH]);
    await waitHeld(0);
  });

  it('streams through Envoy reply by reply, not gathered: a long stream delivers its first replies well before its end', async () => {
    // 1,000 replies 10 ms apart take 10 s; the deadline is 5 s: only replies passed on as they come arrive.
    const replies = await grpcEchoStream(target, 'stream.test', { message: 'long', count: 1000, intervalMs: 10 }, { deadlineMs: 5_000, cancelAfter: 3 });
    if (isGrpcError(replies)) throw new Error(`stream failed: ${replies.error.code} ${replies.error.details}`);
    expect(replies.map((r) => r.sequence)).to.deep.equal([1, 2, 3]);
  });

  it('holds a bidirectional call (its first message included), then converses once the host is woken', async () => {
    await admin('/v1/hosts/stream/scale-to-zero');
    stack.upstream.clearReceived();
    const call = grpcEchoChat(target, 'stream.test', ['one', 'two', 'three', 'four'], 20_000);
    await waitHeld(1);
    expect(stack.upstream.received).to.have.length(0);
    await admin('/v1/hosts/stream/wake');
    const replies = await call;
    if (isGrpcError(replies)) throw new Error(`chat failed: ${replies.error.code} ${replies.error.details}`);
    expect(replies.map((r) => [r.message, r.sequence])).to.deep.equal([
      ['one', 1],
      ['two', 2],
      ['three', 3],
      ['four', 4],
    ]);
    expect(stack.upstream.received.map((r) => r.path)).to.deep.equal([ECHO_CHAT_METHOD_PATH]);
  });

  it('wakes a stopped process host with a server-streaming call, which then streams back from the new process', async () => {
    const replies = await grpcEchoStream(target, 'grpc.demo.test', { message: 'cold', count: 3, intervalMs: 10 }, { deadlineMs: 30_000 });
    if (isGrpcError(replies)) throw new Error(`stream failed: ${replies.error.code} ${replies.error.details}`);
    expect(replies.map((r) => [r.message, r.sequence, r.upstream])).to.deep.equal([1, 2, 3].map((n) => ['cold', n, 'demo-grpc']));
    const host = (await (await stack.adminFetch('/v1/hosts/demo-grpc')).json()) as { state: string; scaling: { wakeCount: number } };
    expect(host.state).to.equal('ready');
    expect(host.scaling.wakeCount).to.equal(1);
  });

  it("the README's stats filter shows the filter's metrics and nothing else", async () => {
    // Exactly the query the README gives (Envoy's filter is an RE2 regex on the stat name).
    const res = await fetch(`${stack.envoy.adminUrl}/stats?filter=^wasmcustom\\.scale_to_zero\\.`);
    const names = (await res.text()).split('\n').filter((l) => l.trim() !== '').map((l) => l.slice(0, l.indexOf(':')));
    const filterMetrics = ['held', 'released', 'timed_out', 'overflowed', 'cancelled', 'wake_calls', 'wake_failed', 'hold_time_ms', 'host.stream.held', 'host.demo-grpc.held'].map((m) => `wasmcustom.scale_to_zero.${m}`);
    expect(names).to.have.members(filterMetrics);
    // What the README used to suggest matches Envoy's own cluster and ECDS stats too.
    const broad = await (await fetch(`${stack.envoy.adminUrl}/stats?filter=scale_to_zero`)).text();
    expect(broad.split('\n').length).to.be.greaterThan(names.length * 5);
  });

  it('streams both ways at once to a ready host', async () => {
    const [stream, chat] = await Promise.all([
      grpcEchoStream(target, 'stream.test', { message: 'ready', count: 3 }),
      grpcEchoChat(target, 'stream.test', ['a', 'b']),
    ]);
    if (isGrpcError(stream) || isGrpcError(chat)) throw new Error(`failed: ${JSON.stringify({ stream, chat })}`);
    expect(stream.map((r) => r.sequence)).to.deep.equal([1, 2, 3]);
    expect(chat.map((r) => r.message)).to.deep.equal(['a', 'b']);
    expect(await held()).to.equal(0);
  });
});
