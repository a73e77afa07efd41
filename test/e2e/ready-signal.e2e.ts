// Issue 12: a process host that signals its own readiness. The control plane probes every 10 minutes here,
// so after its first (failed) probe at start-up only the signal can release the held request: the demo
// upstream POSTs STZ_READY_URL with its STZ_READY_TOKEN once it listens. Beside it, the same upstream told
// not to signal is found only by the last probe, made at its wake deadline.
import { expect } from 'chai';
import { eventually } from '../support/eventually.ts';
import { http1Request } from '../support/http-client.ts';
import { freePort } from '../support/ports.ts';
import { processHost, startStack, type Stack } from '../support/stack.ts';

interface Phase {
  phase: string;
  at: string;
  sincePreviousMs: number;
}
interface StatusDoc {
  hosts: { name: string; coldStarts: { outcome: string; readyBy?: string; phases: Phase[] }[] }[];
}

describe('readiness signalled by the process', function () {
  this.timeout(90_000);
  let stack: Stack;

  before(async () => {
    const signalPort = await freePort();
    const silentPort = await freePort();
    const silent = processHost('silent', silentPort, { wakeTimeoutMs: 3_000 });
    const command = (silent.scaler as { command: string[] }).command;
    stack = await startStack({
      controlPlane: { probeIntervalMs: 600_000 },
      config: () => ({
        hosts: [
          processHost('signals', signalPort, { wakeTimeoutMs: 60_000 }),
          { ...silent, scaler: { ...(silent.scaler as object), command: [...command, '--no-ready-signal'] } },
        ],
      }),
    });
  });
  after(async () => {
    await stack?.close();
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.error(`Envoy log tail:\n${stack.envoy.logTail(30)}`);
  });

  const coldStart = async (host: string): Promise<StatusDoc['hosts'][number]['coldStarts'][number]> => {
    const doc = (await (await stack.adminFetch('/v1/status')).json()) as StatusDoc;
    return doc.hosts.find((h) => h.name === host)!.coldStarts[0]!;
  };

  it('releases the held request on the signal, long before the next probe, and reports the phases in order', async () => {
    const reply = await http1Request({ port: stack.port, host: 'signals.test', path: '/first', timeoutMs: 60_000 });
    expect(reply.status).to.equal(200);
    expect(JSON.parse(reply.body)).to.include({ path: '/first', upstream: 'signals-process' });
    // The reply can overtake the cold start's record of the release's ACK (the ACK and the released request
    // race inside Envoy): wait for the record, do not assume it.
    const c = await eventually(async () => {
      const r = await coldStart('signals');
      expect(r).to.include({ outcome: 'ready', readyBy: 'signal' });
      return r;
    }, { what: 'the cold start recorded as ready by signal' });
    expect(c.phases.map((p) => p.phase).slice(0, 5)).to.deep.equal(['start_requested', 'spawned', 'ready', 'release_pushed', 'release_acked']);
    const times = c.phases.map((p) => Date.parse(p.at));
    expect(times).to.deep.equal([...times].sort((a, b) => a - b));
    const metrics = await (await stack.adminFetch('/metrics')).text();
    for (const phase of ['wake_to_spawned', 'spawned_to_ready', 'ready_to_release_pushed', 'release_pushed_to_acked']) {
      expect(metrics).to.include(`stz_cold_start_phase_duration_seconds_count{host="signals",phase="${phase}"} 1`);
    }
  });

  it('without the signal the same upstream is found only by the last probe, at its wake deadline', async () => {
    const reply = await http1Request({ port: stack.port, host: 'silent.test', path: '/first', timeoutMs: 60_000 });
    expect(reply.status).to.equal(200);
    const c = await eventually(async () => {
      const r = await coldStart('silent');
      expect(r).to.include({ outcome: 'ready', readyBy: 'probe' });
      return r;
    }, { what: 'the cold start recorded as ready by probe' });
    // The probe after the first one comes at the wake deadline (3 s), not sooner: nothing else noticed it.
    const ready = c.phases.find((p) => p.phase === 'ready')!;
    expect(Date.parse(ready.at) - Date.parse(c.phases[0]!.at)).to.be.at.least(2_900);
  });
});
