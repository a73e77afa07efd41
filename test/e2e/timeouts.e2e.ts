// Issue 10: per-host request and stream idle timeouts on the real Envoy, and time held by the filter not
// counting against either. Timeouts are 1 s here so the tests stay short.
import { expect } from 'chai';
import { eventually } from '../support/eventually.ts';
import { http1Request } from '../support/http-client.ts';
import { startStack, type Stack } from '../support/stack.ts';

const HELD = 'wasmcustom.scale_to_zero.held';

describe('request and stream idle timeouts on a real Envoy', function () {
  this.timeout(120_000);
  let stack: Stack;

  before(async () => {
    stack = await startStack({
      config: (u) => {
        const host = (name: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
          name,
          domains: [`${name}.test`],
          endpoints: [{ address: '127.0.0.1', port: u.httpPort }],
          ...extra,
        });
        return {
          // The file-wide default for HTTP hosts, here shorter than the slow answers below.
          defaults: { requestTimeoutMs: 1_000 },
          hosts: [
            host('plain'),
            host('patient', { requestTimeoutMs: 5_000 }),
            host('quiet', { requestTimeoutMs: 0, streamIdleTimeoutMs: 1_000 }),
            host('held', {
              initialState: 'scaled_to_zero',
              buffer: { holdTimeoutMs: 30_000, maxHeld: 100, retryAfterSeconds: 1 },
              requestTimeoutMs: 1_000,
              streamIdleTimeoutMs: 1_000,
            }),
          ],
        };
      },
    });
  });
  after(async () => {
    await stack?.close();
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.error(`Envoy log tail:\n${stack.envoy.logTail(40)}`);
  });

  it('answers 504 when the upstream is slower than the default request timeout, and 200 for a host with a longer one', async () => {
    const [plain, patient] = await Promise.all([
      http1Request({ port: stack.port, host: 'plain.test', path: '/delay?ms=2000', timeoutMs: 30_000 }),
      http1Request({ port: stack.port, host: 'patient.test', path: '/delay?ms=2000', timeoutMs: 30_000 }),
    ]);
    expect(plain.status).to.equal(504);
    expect(plain.body).to.equal('upstream request timeout');
    expect(patient.status).to.equal(200);
    expect(JSON.parse(patient.body)).to.include({ path: '/delay?ms=2000' });
  });

  it('closes a stream that is silent for longer than the host stream idle timeout', async () => {
    const reply = await http1Request({ port: stack.port, host: 'quiet.test', path: '/delay?ms=2500', timeoutMs: 30_000 });
    expect(reply.status).to.equal(504);
    expect(reply.body).to.equal('stream timeout');
    // A quick answer on the same host is not affected.
    expect((await http1Request({ port: stack.port, host: 'quiet.test', path: '/delay?ms=100' })).status).to.equal(200);
  });

  it('does not count time held against the request or idle timeout: held 2.5 s with both at 1 s, then answered', async () => {
    stack.upstream.clearReceived();
    const pending = http1Request({ port: stack.port, host: 'held.test', method: 'POST', path: '/delay?ms=300', body: 'held body', timeoutMs: 60_000 });
    await eventually(async () => {
      const held = (await stack.envoy.stats('scale_to_zero')).get(HELD) ?? 0;
      if (held !== 1) throw new Error(`held gauge is ${held}`);
    }, { timeoutMs: 20_000, what: 'the request held' });
    await new Promise((r) => setTimeout(r, 2_500));
    expect(stack.upstream.received).to.have.length(0);
    const wake = await stack.adminFetch('/v1/hosts/held/wake', { method: 'POST' });
    expect(wake.status).to.equal(200);
    const reply = await pending;
    expect(reply.status, reply.body).to.equal(200);
    expect(JSON.parse(reply.body)).to.include({ path: '/delay?ms=300', bodyBytes: 9 });
  });
});
