// The process provider's readiness signal (issue 12): a real child process is started; the control plane's
// probe interval is an hour on a fake clock, so only the signal can make it ready. The token comes from
// the child's own environment (it prints it), as a real process would read it.
import { expect } from 'chai';
import { ProcessProvider, READY_TOKEN_ENV, READY_URL_ENV } from '../../../xds-server/scaling/process-provider.ts';
import type { ScalableBackend } from '../../../xds-server/scaling/provider.ts';
import { silentLogger } from '../../../xds-server/log.ts';
import { eventually } from '../../support/eventually.ts';
import { FakeClock } from '../../support/fake-clock.ts';

const PRINT_ENV = `console.log("env " + process.env.${READY_URL_ENV} + " " + process.env.${READY_TOKEN_ENV}); setInterval(() => {}, 1000)`;

function backend(name: string): ScalableBackend {
  return {
    name,
    clusterName: `c_${name}`,
    protocol: 'http1',
    // Nothing listens on port 1: every probe fails.
    endpoints: [{ address: '127.0.0.1', port: 1 }],
    scaleToZero: {
      buffer: { holdTimeoutMs: 30_000, maxHeld: 10, retryAfterSeconds: 1 },
      exclusiveDomains: [`${name}.test`],
      workload: { kind: 'process', command: [process.execPath, '-e', PRINT_ENV] },
      health: { kind: 'tcp', timeoutMs: 100 },
      wakeTimeoutMs: 7_200_000,
      idleAfterMs: 0,
    },
  };
}

describe('process readiness signal', function () {
  this.timeout(20_000);
  let provider: ProcessProvider;
  let clock: FakeClock;
  const env = new Map<string, { url: string; token: string }>();

  beforeEach(() => {
    clock = new FakeClock(1_000_000);
    env.clear();
    provider = new ProcessProvider(silentLogger, (host, line) => {
      const m = /^env (\S+) (\S+)$/.exec(line);
      if (m) env.set(host, { url: m[1]!, token: m[2]! });
    }, { probeIntervalMs: 3_600_000, clock });
    provider.setReadyUrlBase('http://127.0.0.1:9902/');
  });
  afterEach(async () => {
    await provider.close();
  });

  it('gives each start a URL and a fresh token, and is ready on the signal with that token, not before', async () => {
    const b = backend('web');
    await provider.wake(b);
    const given = await eventually(async () => env.get('web') ?? Promise.reject(new Error('the child has not printed its env yet')), { timeoutMs: 10_000, what: 'the child printing its env' });
    expect(given.url).to.equal('http://127.0.0.1:9902/v1/ready/web');
    expect(given.token).to.match(/^[0-9a-f]{32}$/);

    let outcome: string | undefined;
    const ready = provider.waitReady(b, clock.now() + 7_200_000, new AbortController().signal).then((by) => (outcome = by ?? 'probe'));
    // The first probe fails at once; the next one is an hour away.
    await eventually(async () => expect(clock.pendingSleepers).to.equal(1), { timeoutMs: 5_000, what: 'the probe loop asleep' });
    expect(provider.signalReady('web', 'f'.repeat(32))).to.equal('wrong_token');
    expect(provider.signalReady('other', given.token)).to.equal('no_start');
    await new Promise((r) => setTimeout(r, 20));
    expect(outcome).to.equal(undefined);

    expect(provider.signalReady('web', given.token)).to.equal('accepted');
    await ready;
    expect(outcome).to.equal('signal');
    // The probe's hour-long sleep is not left behind.
    expect(clock.pendingSleepers).to.equal(0);
    expect(provider.signalReady('web', given.token)).to.equal('accepted');

    // The next start has another token; the old one no longer counts.
    await provider.stop(b);
    env.clear();
    await provider.wake(b);
    const next = await eventually(async () => env.get('web') ?? Promise.reject(new Error('not yet')), { timeoutMs: 10_000, what: 'the second child printing its env' });
    expect(next.token).to.not.equal(given.token);
    expect(provider.signalReady('web', given.token)).to.equal('wrong_token');
  });

  it('is ready when the process writes READY=1 to its readiness pipe (STZ_READY_FD)', async () => {
    const b = backend('piped');
    const script = `const fs = require("fs"); console.log("fd " + process.env.STZ_READY_FD); setTimeout(() => fs.writeSync(Number(process.env.STZ_READY_FD), "READY=1\\n"), 300); setInterval(() => {}, 1000)`;
    const piped: ScalableBackend = { ...b, scaleToZero: { ...b.scaleToZero, workload: { kind: 'process', command: [process.execPath, '-e', script] } } };
    await provider.wake(piped);
    let outcome: string | undefined;
    const ready = provider.waitReady(piped, clock.now() + 7_200_000, new AbortController().signal).then((by) => (outcome = by ?? 'probe'));
    await eventually(async () => expect(clock.pendingSleepers).to.equal(1), { timeoutMs: 5_000, what: 'the probe loop asleep' });
    expect(outcome).to.equal(undefined);
    await ready;
    expect(outcome).to.equal('signal');
  });

  it('without a signal it keeps probing until the deadline, and says so', async () => {
    const b = backend('slow');
    await provider.wake(b);
    const failed = provider.waitReady(b, clock.now() + 5_000, new AbortController().signal).then(() => 'ready', (err: Error) => err.message);
    await eventually(async () => expect(clock.pendingSleepers).to.equal(1), { timeoutMs: 5_000, what: 'the probe loop asleep' });
    await clock.advance(5_000, 1_000);
    expect(await failed).to.match(/^not healthy within wakeTimeoutMs 7200000 ms: connect 127\.0\.0\.1:1/);
  });
});
