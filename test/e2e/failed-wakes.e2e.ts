// Failed wakes on the real Envoy: a process host whose command exits at once, or that never becomes healthy,
// gets its held requests answered as soon as the wake fails (503 / gRPC UNAVAILABLE with the reason), well
// before holdTimeoutMs; during the backoff new requests are answered at once without a new wake; after it, the
// next request wakes the host again.
import { expect } from 'chai';
import { eventually } from '../support/eventually.ts';
import { Http2Connection, http1Request, type Reply } from '../support/http-client.ts';
import { startStack, type Stack } from '../support/stack.ts';

interface HostJson {
  scaling: { phase: string; wakeCount: number; lastError?: string };
}

const HOLD_TIMEOUT_MS = 30_000;

function host(name: string, command: string[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name,
    domains: [`${name}.test`],
    endpoints: [{ address: '127.0.0.1', port: 1 }],
    scaler: { kind: 'process', command },
    buffer: { holdTimeoutMs: HOLD_TIMEOUT_MS, maxHeld: 1000, retryAfterSeconds: 1 },
    wakeTimeoutMs: 20_000,
    wakeFailureBackoffMs: 3_000,
    idleAfterMs: 0,
    ...extra,
  };
}

describe('failed wakes on a real Envoy', function () {
  this.timeout(120_000);
  let stack: Stack;

  before(async () => {
    stack = await startStack({
      controlPlane: { probeIntervalMs: 5 },
      config: () => ({
        hosts: [
          host('exits', [process.execPath, '-e', 'process.exit(3)']),
          host('exits-grpc', [process.execPath, '-e', 'process.exit(4)'], { protocol: 'grpc' }),
          host('unhealthy', [process.execPath, '-e', 'setInterval(() => {}, 1000)'], { wakeTimeoutMs: 1_000 }),
          host('missing', ['/nonexistent/stz-no-such-command']),
          host('many', [process.execPath, '-e', 'setInterval(() => {}, 1000)'], {
            wakeTimeoutMs: 4_000,
            buffer: { holdTimeoutMs: HOLD_TIMEOUT_MS, maxHeld: 2000, retryAfterSeconds: 1 },
          }),
        ],
      }),
    });
  });
  after(async () => {
    await stack?.close();
  });

  const status = async (name: string): Promise<HostJson> => (await (await stack.adminFetch(`/v1/hosts/${name}`)).json()) as HostJson;
  const get = (name: string): Promise<Reply> => http1Request({ port: stack.port, host: `${name}.test`, path: '/x', timeoutMs: 60_000 });
  const timed = async <T>(op: () => Promise<T>): Promise<{ value: T; ms: number }> => {
    const start = Date.now();
    const value = await op();
    return { value, ms: Date.now() - start };
  };

  it('answers every held request with 503 and the reason as soon as the process exits, not at holdTimeoutMs', async () => {
    const { value: replies, ms } = await timed(() => Promise.all(Array.from({ length: 20 }, () => get('exits'))));
    // Before the fix these were held for the whole holdTimeoutMs and then got the timeout answer.
    expect(ms).to.be.below(HOLD_TIMEOUT_MS / 3);
    for (const reply of replies) {
      expect(reply.status).to.equal(503);
      expect(reply.headers['x-scale-to-zero']).to.equal('wake_failed');
      expect(reply.headers['retry-after']).to.equal('3');
      const body = JSON.parse(reply.body) as { error: string; host: string; message: string };
      expect(body).to.include({ error: 'wake_failed', host: 'exits' });
      expect(body.message).to.contain('the process exited (code 3) before becoming healthy');
    }
    const h = await status('exits');
    expect(h.scaling).to.include({ phase: 'failed', wakeCount: 1 });
    expect(h.scaling.lastError).to.equal('the process exited (code 3) before becoming healthy');
  });

  it('answers at once during the backoff without waking again, and wakes again on the next request after it', async () => {
    const during = await get('exits');
    expect(during.status).to.equal(503);
    expect(during.headers['x-scale-to-zero']).to.equal('wake_failed');
    expect((await status('exits')).scaling.wakeCount).to.equal(1);
    await eventually(async () => expect((await status('exits')).scaling.phase).to.equal('scaled_to_zero'), {
      what: 'the backoff to end',
      timeoutMs: 15_000,
    });
    const after = await get('exits');
    expect(after.status).to.equal(503);
    expect(after.headers['x-scale-to-zero']).to.equal('wake_failed');
    expect((await status('exits')).scaling.wakeCount).to.equal(2);
  });

  it('gives gRPC callers UNAVAILABLE with the reason in grpc-message', async () => {
    const h2 = new Http2Connection(stack.port);
    try {
      const { value: reply, ms } = await timed(() =>
        h2.request({
          host: 'exits-grpc.test',
          method: 'POST',
          path: '/demo.Echo/Say',
          headers: { 'content-type': 'application/grpc', te: 'trailers' },
          body: Buffer.alloc(5),
          timeoutMs: 60_000,
        }),
      );
      expect(ms).to.be.below(HOLD_TIMEOUT_MS / 3);
      expect(reply.status).to.equal(200);
      expect(reply.headers['grpc-status']).to.equal('14');
      expect(decodeURIComponent(String(reply.headers['grpc-message']))).to.contain('the process exited (code 4) before becoming healthy');
    } finally {
      h2.close();
    }
  });

  it('answers at once when the command cannot be started at all', async () => {
    const { value: reply, ms } = await timed(() => get('missing'));
    expect(ms).to.be.below(HOLD_TIMEOUT_MS / 3);
    expect(reply.status).to.equal(503);
    expect(reply.headers['x-scale-to-zero']).to.equal('wake_failed');
    expect((JSON.parse(reply.body) as { message: string }).message).to.contain('could not start ["/nonexistent/stz-no-such-command"]').and.contain('ENOENT');
  });

  it('answers held requests when the host is not healthy within wakeTimeoutMs, with that reason', async () => {
    const { value: reply, ms } = await timed(() => get('unhealthy'));
    expect(ms).to.be.below(HOLD_TIMEOUT_MS / 3);
    expect(reply.status).to.equal(503);
    expect(reply.headers['x-scale-to-zero']).to.equal('wake_failed');
    expect((JSON.parse(reply.body) as { message: string }).message).to.match(/not healthy within wakeTimeoutMs 1000 ms/);
    await eventually(async () => expect(stack.cp.processes.isRunning('unhealthy')).to.equal(false), { what: 'the process to be stopped' });
  });

  it('answers 1,200 held requests on two workers when the wake fails, paced, and Envoy stays up', async () => {
    const conns = Array.from({ length: 4 }, () => new Http2Connection(stack.port));
    try {
      const all = Promise.all(
        Array.from({ length: 1_200 }, (_, i) => conns[i % conns.length]!.request({ host: 'many.test', path: `/r/${i}`, timeoutMs: 60_000 })),
      );
      // All held before the wake gives up (wakeTimeoutMs 4 s): far more per worker than one callback survives.
      await eventually(async () => expect((await stack.envoy.stats('scale_to_zero')).get('wasmcustom.scale_to_zero.held')).to.equal(1_200), {
        what: '1,200 requests held',
        timeoutMs: 3_500,
        intervalMs: 50,
      });
      const replies = await all;
      expect(replies.filter((r) => r.status === 503 && r.headers['x-scale-to-zero'] === 'wake_failed')).to.have.length(1_200);
      expect(stack.envoy.isRunning()).to.equal(true);
      const stats = await stack.envoy.stats('scale_to_zero');
      expect(stats.get('wasmcustom.scale_to_zero.held')).to.equal(0);
      expect(stats.get('wasmcustom.scale_to_zero.wake_failed')).to.be.at.least(1_200);
    } finally {
      for (const c of conns) c.close();
    }
  });
});
