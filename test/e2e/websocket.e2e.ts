// Issue 10: WebSocket upgrades through the real Envoy, to a ready host and to a cold one (held by the filter,
// released on wake), past the request timeout, and counted as traffic while open.
import { expect } from 'chai';
import WebSocket from 'ws';
import { WEBSOCKET_ECHO_PATH } from '../../upstream/server.ts';
import { eventually } from '../support/eventually.ts';
import { freePort } from '../support/ports.ts';
import { processHost, startStack, type Stack } from '../support/stack.ts';

const HELD = 'wasmcustom.scale_to_zero.held';

/** Opens a WebSocket through the gateway with the given Host; resolves once the upgrade answered 101. */
function connect(port: number, host: string): { ws: WebSocket; opened: Promise<void> } {
  const ws = new WebSocket(`ws://127.0.0.1:${port}${WEBSOCKET_ECHO_PATH}`, { headers: { host }, handshakeTimeout: 60_000 });
  const opened = new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade answered ${res.statusCode}`)));
    ws.once('error', reject);
  });
  return { ws, opened };
}

/** Sends one message and waits for the next one back. */
function roundTrip(ws: WebSocket, data: string | Buffer): Promise<{ data: Buffer; binary: boolean }> {
  return new Promise((resolve, reject) => {
    ws.once('message', (raw, binary) => resolve({ data: Buffer.isBuffer(raw) ? raw : Buffer.concat(raw as Buffer[]), binary }));
    ws.once('close', (code) => reject(new Error(`closed (${code}) before the echo`)));
    ws.send(data, { binary: typeof data !== 'string' });
  });
}

function closed(ws: WebSocket): Promise<number> {
  return new Promise((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) return resolve(-1);
    ws.once('close', (code) => resolve(code));
  });
}

describe('WebSockets through a real Envoy', function () {
  this.timeout(120_000);
  let stack: Stack;
  let idlePort: number;
  const open: WebSocket[] = [];

  before(async () => {
    idlePort = await freePort();
    stack = await startStack({
      controlPlane: { probeIntervalMs: 5, scaling: { loadReportIntervalMs: 200, idleCheckIntervalMs: 100, drainTimeoutMs: 5_000 } },
      config: (u) => ({
        hosts: [
          { name: 'ready', domains: ['ready.test'], endpoints: [{ address: '127.0.0.1', port: u.httpPort }] },
          {
            name: 'cold',
            domains: ['cold.test'],
            endpoints: [{ address: '127.0.0.1', port: u.httpPort }],
            initialState: 'scaled_to_zero',
            // A hold longer than the request and idle timeouts: neither may cut a held upgrade.
            buffer: { holdTimeoutMs: 30_000, maxHeld: 100, retryAfterSeconds: 1 },
            requestTimeoutMs: 1_000,
            streamIdleTimeoutMs: 1_000,
          },
          { name: 'short', domains: ['short.test'], endpoints: [{ address: '127.0.0.1', port: u.httpPort }], requestTimeoutMs: 1_000 },
          { name: 'quiet', domains: ['quiet.test'], endpoints: [{ address: '127.0.0.1', port: u.httpPort }], streamIdleTimeoutMs: 1_000 },
          processHost('idle', idlePort, { buffer: { holdTimeoutMs: 20_000, maxHeld: 100, retryAfterSeconds: 1 }, idleAfterMs: 1_500 }),
        ],
      }),
    });
  });
  after(async () => {
    for (const ws of open) ws.terminate();
    await stack?.close();
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.error(`Envoy log tail:\n${stack.envoy.logTail(40)}`);
  });

  const track = (c: { ws: WebSocket; opened: Promise<void> }): { ws: WebSocket; opened: Promise<void> } => {
    open.push(c.ws);
    c.opened.catch(() => {});
    return c;
  };

  it('upgrades to a ready host and echoes text and binary messages', async () => {
    const { ws, opened } = track(connect(stack.port, 'ready.test'));
    await opened;
    expect((await roundTrip(ws, 'hello')).data.toString()).to.equal('hello');
    const binary = Buffer.from([0, 1, 2, 250, 251, 252]);
    const echoed = await roundTrip(ws, binary);
    expect(echoed.binary).to.equal(true);
    expect(echoed.data.equals(binary)).to.equal(true);
    ws.close(1000);
    expect(await closed(ws)).to.equal(1000);
    expect(stack.upstream.received.some((r) => r.path === WEBSOCKET_ECHO_PATH && r.authority === 'ready.test')).to.equal(true);
  });

  it('holds an upgrade to a cold host past its request and idle timeouts, then releases it on wake and echoes', async () => {
    stack.upstream.clearReceived();
    const { ws, opened } = track(connect(stack.port, 'cold.test'));
    let openedEarly = false;
    void opened.then(() => (openedEarly = true), () => {});
    await eventually(async () => {
      const held = (await stack.envoy.stats('scale_to_zero')).get(HELD) ?? 0;
      if (held !== 1) throw new Error(`held gauge is ${held}`);
    }, { timeoutMs: 20_000, what: 'the upgrade held' });
    // Longer than the host's 1 s request and stream idle timeouts.
    await new Promise((r) => setTimeout(r, 2_500));
    expect(openedEarly).to.equal(false);
    expect(ws.readyState).to.equal(WebSocket.CONNECTING);
    expect(stack.upstream.received).to.have.length(0);
    const wake = await stack.adminFetch('/v1/hosts/cold/wake', { method: 'POST' });
    expect(wake.status).to.equal(200);
    await opened;
    expect((await roundTrip(ws, 'after the wake')).data.toString()).to.equal('after the wake');
    expect(stack.upstream.received.map((r) => r.path)).to.deep.equal([WEBSOCKET_ECHO_PATH]);
    ws.close(1000);
    expect(await closed(ws)).to.equal(1000);
  });

  it('keeps a WebSocket open longer than the host request timeout (it bounds requests, not upgraded streams)', async () => {
    const { ws, opened } = track(connect(stack.port, 'short.test'));
    await opened;
    expect((await roundTrip(ws, 'first')).data.toString()).to.equal('first');
    await new Promise((r) => setTimeout(r, 2_500));
    expect(ws.readyState).to.equal(WebSocket.OPEN);
    expect((await roundTrip(ws, 'still here')).data.toString()).to.equal('still here');
    ws.close(1000);
    expect(await closed(ws)).to.equal(1000);
  });

  it('closes a WebSocket silent for longer than the host stream idle timeout; one that keeps talking stays open', async () => {
    const silent = track(connect(stack.port, 'quiet.test'));
    const talking = track(connect(stack.port, 'quiet.test'));
    await Promise.all([silent.opened, talking.opened]);
    const silentClosed = closed(silent.ws);
    // 2.5 s, a message every 300 ms on one socket, nothing on the other (idle timeout 1 s).
    for (let i = 0; i < 8; i++) {
      await new Promise((r) => setTimeout(r, 300));
      expect((await roundTrip(talking.ws, `ping ${i}`)).data.toString()).to.equal(`ping ${i}`);
    }
    expect(silent.ws.readyState).to.equal(WebSocket.CLOSED);
    // Envoy resets the stream: no close frame, so the client sees an abnormal closure.
    expect(await silentClosed).to.equal(1006);
    expect(talking.ws.readyState).to.equal(WebSocket.OPEN);
    talking.ws.close(1000);
    await closed(talking.ws);
  });

  it('counts an open WebSocket as traffic: the host is not scaled down on idle until it closes', async () => {
    const host = async (): Promise<{ scaling: { phase: string } }> => (await (await stack.adminFetch('/v1/hosts/idle')).json()) as { scaling: { phase: string } };
    const { ws, opened } = track(connect(stack.port, 'idle.test'));
    await opened;
    expect(stack.cp.processes.isRunning('idle')).to.equal(true);
    // Silent for three times idleAfterMs (1.5 s); only the open upstream stream says the host is in use.
    await new Promise((r) => setTimeout(r, 4_500));
    expect((await host()).scaling.phase).to.equal('ready');
    expect(stack.cp.processes.isRunning('idle')).to.equal(true);
    expect((await roundTrip(ws, 'still served')).data.toString()).to.equal('still served');
    ws.close(1000);
    await closed(ws);
    await eventually(async () => {
      expect((await host()).scaling.phase).to.equal('scaled_to_zero');
      expect(stack.cp.processes.isRunning('idle')).to.equal(false);
    }, { timeoutMs: 20_000, what: 'the idle host scaled to zero once its WebSocket closed' });
  });
});
