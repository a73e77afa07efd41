// The xDS port's bookkeeping without a network (xds-server/grpc-bounds.ts): stream counts per node and per
// address, request budgets on a fake clock, log lines bounded under a flood, initial-sync turns in order.
import { expect } from 'chai';
import { AdsEvents } from '../../../xds-server/ads/events.ts';
import { assertReceiveWindow, DEFAULT_GRPC_BOUNDS, peerAddress, StreamGuard, SyncTurns, type StreamTicket } from '../../../xds-server/grpc-bounds.ts';
import { createLogger } from '../../../xds-server/log.ts';
import { Metrics } from '../../../xds-server/metrics.ts';

function guardWith(overrides: Partial<typeof DEFAULT_GRPC_BOUNDS> = {}): { guard: StreamGuard; metrics: Metrics; lines: Record<string, unknown>[]; clock: { t: number } } {
  const clock = { t: 0 };
  const lines: Record<string, unknown>[] = [];
  const metrics = new Metrics(new AdsEvents());
  const log = createLogger({ write: (line) => lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { guard: new StreamGuard({ ...DEFAULT_GRPC_BOUNDS, ...overrides }, metrics, log, () => clock.t), metrics, lines, clock };
}

const ticket = (r: StreamTicket | { refused: string }): StreamTicket => {
  if ('refused' in r) throw new Error(`refused: ${r.refused}`);
  return r;
};

describe('xDS port bounds (bookkeeping)', () => {
  it('takes HTTP/2 receive windows within HTTP/2\'s bounds only, saying which', () => {
    for (const ok of [65_535, DEFAULT_GRPC_BOUNDS.receiveWindowBytes, 2 ** 31 - 1]) expect(() => assertReceiveWindow(ok)).to.not.throw();
    for (const bad of [0, 65_534, 2 ** 31, 1.5, Number.NaN]) expect(() => assertReceiveWindow(bad)).to.throw(RangeError, /receiveWindowBytes must be an integer from 65535 to 2147483647/);
  });

  it('reads the peer address of IPv4 and IPv6 peers', () => {
    expect(peerAddress('127.0.0.1:5000')).to.equal('127.0.0.1');
    expect(peerAddress('[::1]:5000')).to.equal('::1');
    expect(peerAddress('::1:5000')).to.equal('::1');
    expect(peerAddress('unknown')).to.equal('unknown');
  });

  it('counts streams per node and per address, and frees them on close', () => {
    const { guard, metrics } = guardWith({ maxStreamsPerNode: 2, maxStreamsPerAddress: 3 });
    const a = ticket(guard.open('10.0.0.1:1', 'ADS'));
    const b = ticket(guard.open('10.0.0.1:2', 'LRS'));
    expect(guard.identify(a, 'n', 'ADS')).to.equal(true);
    expect(guard.identify(b, 'n', 'LRS')).to.equal(true);
    const c = ticket(guard.open('10.0.0.1:3', 'ADS'));
    expect(guard.identify(c, 'n', 'ADS')).to.deep.equal({ refused: 'node "n" has 2 open streams (limit 2)' });
    expect(guard.open('10.0.0.1:4', 'ADS')).to.deep.equal({ refused: 'more than 3 open streams from 10.0.0.1' });
    // Another address is not affected.
    ticket(guard.open('10.0.0.2:1', 'ADS'));
    guard.close(c);
    guard.close(a);
    expect(guard.identify(ticket(guard.open('10.0.0.1:5', 'ADS')), 'n', 'ADS')).to.equal(true);
    expect(metrics.value('stz_grpc_streams_refused_total', { reason: 'too_many_streams_per_node' })).to.equal(1);
    expect(metrics.value('stz_grpc_streams_refused_total', { reason: 'too_many_streams_per_address' })).to.equal(1);
    expect(guard.openStreams).to.equal(3);
  });

  it('gives each stream its own request budget: burst at once, then the rate', () => {
    const { guard, clock } = guardWith({ requestsPerSecond: 10, requestBurst: 5 });
    const a = ticket(guard.open('10.0.0.1:1', 'ADS'));
    const b = ticket(guard.open('10.0.0.1:2', 'ADS'));
    for (let i = 0; i < 5; i++) expect(guard.allow(a)).to.equal(true);
    expect(guard.allow(a)).to.equal(false);
    expect(guard.allow(b)).to.equal(true);
    clock.t += 100; // one token at 10/s
    expect(guard.allow(a)).to.equal(true);
    expect(guard.allow(a)).to.equal(false);
  });

  it('logs a flood of refusals once per 10 s per reason with the count it left out; the metric counts all', () => {
    const { guard, metrics, lines, clock } = guardWith({ maxStreamsPerAddress: 0 });
    for (let i = 0; i < 1_000; i++) guard.open(`10.0.0.1:${i}`, 'ADS');
    expect(lines).to.have.length(1);
    clock.t += 10_000;
    guard.open('10.0.0.1:1', 'ADS');
    expect(lines).to.have.length(2);
    expect(lines[1]).to.include({ level: 'warn', reason: 'too_many_streams_per_address', moreSinceLastLine: 999 });
    expect(metrics.value('stz_grpc_streams_refused_total', { reason: 'too_many_streams_per_address' })).to.equal(1_001);
  });

  it('hands out initial-sync turns up to the concurrency, then in arrival order; a closed waiter is skipped', () => {
    const turns = new SyncTurns(2);
    const started: string[] = [];
    const owners = Object.fromEntries(['a', 'b', 'c', 'd', 'e'].map((n) => [n, { n }]));
    for (const n of ['a', 'b', 'c', 'd', 'e']) turns.request(owners[n]!, () => started.push(n));
    expect(started).to.deep.equal(['a', 'b']);
    expect({ syncing: turns.syncing, queued: turns.queued }).to.deep.equal({ syncing: 2, queued: 3 });
    turns.release(owners.d!); // d's stream closed while it waited
    turns.release(owners.a!);
    expect(started).to.deep.equal(['a', 'b', 'c']);
    turns.release(owners.a!); // idempotent
    turns.release(owners.b!);
    expect(started).to.deep.equal(['a', 'b', 'c', 'e']);
    expect({ syncing: turns.syncing, queued: turns.queued }).to.deep.equal({ syncing: 2, queued: 0 });
  });
});
