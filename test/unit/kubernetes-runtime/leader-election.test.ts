// The leader election on a fake clock, against an in-memory Lease store with the API server's rules
// (resourceVersion preconditions, 409 on a lost race) and per-replica faults (API server unreachable,
// calls that hang). The property that matters everywhere: never two leaders at once.
import { expect } from 'chai';
import {
  LeaderElector,
  LeaseConflictError,
  leaderElectionTimingProblem,
  microTime,
  type LeaseRecord,
  type LeaseStore,
  type StoredLease,
} from '../../../xds-server/kubernetes/leader-election.ts';
import { silentLogger } from '../../../xds-server/log.ts';
import { FakeClock, settle } from '../../support/fake-clock.ts';

const TIMING = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 };

/** The API server's view of one Lease. */
class LeaseServer {
  lease: StoredLease | undefined;
  private version = 0;
  writes = 0;

  read(): StoredLease | undefined {
    return this.lease && structuredClone(this.lease);
  }

  create(record: LeaseRecord): StoredLease {
    if (this.lease) throw new LeaseConflictError('already exists');
    return this.store(record);
  }

  update(record: LeaseRecord, resourceVersion: string): StoredLease {
    if (!this.lease || this.lease.resourceVersion !== resourceVersion) throw new LeaseConflictError('the object has been modified');
    return this.store(record);
  }

  private store(record: LeaseRecord): StoredLease {
    this.writes++;
    this.lease = { record: structuredClone(record), resourceVersion: String(++this.version) };
    return structuredClone(this.lease);
  }
}

type Link = 'up' | 'refused' | 'hang';

/** One replica's connection to the API server, which a test can cut. */
class ReplicaLink implements LeaseStore {
  link: Link = 'up';
  constructor(private readonly server: LeaseServer) {}

  private call<T>(fn: () => T): Promise<T> {
    if (this.link === 'refused') return Promise.reject(new Error('connect ECONNREFUSED'));
    if (this.link === 'hang') return new Promise<T>(() => {});
    try {
      return Promise.resolve(fn());
    } catch (err) {
      return Promise.reject(err);
    }
  }

  get(): Promise<StoredLease | undefined> {
    return this.call(() => this.server.read());
  }
  create(record: LeaseRecord): Promise<StoredLease> {
    return this.call(() => this.server.create(record));
  }
  update(record: LeaseRecord, resourceVersion: string): Promise<StoredLease> {
    return this.call(() => this.server.update(record, resourceVersion));
  }
}

interface Replica {
  elector: LeaderElector;
  link: ReplicaLink;
  stop: AbortController;
  done: Promise<void>;
}

/** Replicas on one clock; records every leadership change and fails the test if two ever lead at once. */
class Fleet {
  readonly clock = new FakeClock();
  readonly server = new LeaseServer();
  readonly replicas = new Map<string, Replica>();
  readonly events: { at: number; who: string; leading: boolean }[] = [];
  private leaders = new Set<string>();
  overlap: string | undefined;

  start(identity: string, random = 0.5): Replica {
    const link = new ReplicaLink(this.server);
    const stop = new AbortController();
    const elector = new LeaderElector({
      identity,
      store: link,
      clock: this.clock,
      log: silentLogger,
      timing: TIMING,
      random: () => random,
      onChange: (leading) => {
        this.events.push({ at: this.clock.now(), who: identity, leading });
        if (leading) this.leaders.add(identity);
        else this.leaders.delete(identity);
        if (this.leaders.size > 1) this.overlap ??= `${[...this.leaders].join(' and ')} both led at ${this.clock.now()}`;
      },
    });
    const replica = { elector, link, stop, done: elector.run(stop.signal) };
    this.replicas.set(identity, replica);
    return replica;
  }

  /** A crash (kill -9): the replica's loop is stuck forever and it never writes again. */
  crash(identity: string): void {
    this.replicas.get(identity)!.link.link = 'hang';
  }

  leader(): string | undefined {
    const leading = [...this.replicas].filter(([, r]) => r.elector.isLeader()).map(([id]) => id);
    expect(leading.length, `leaders: ${leading.join(', ')}`).to.be.at.most(1);
    return leading[0];
  }

  firstEvent(who: string, leading: boolean, after = 0): { at: number } | undefined {
    return this.events.find((e) => e.who === who && e.leading === leading && e.at >= after);
  }

  async stopAll(): Promise<void> {
    for (const r of this.replicas.values()) {
      if (r.link.link === 'hang') r.link.link = 'refused';
      r.stop.abort();
    }
    await settle();
  }
}

describe('leader election (Lease, fake clock)', () => {
  let fleet: Fleet;
  beforeEach(() => {
    fleet = new Fleet();
  });
  afterEach(async () => {
    await fleet.stopAll();
    expect(fleet.overlap, 'two leaders at once').to.equal(undefined);
  });

  it('creates the missing Lease, leads, and renews it every retry period keeping acquireTime', async () => {
    fleet.start('a');
    await fleet.clock.advance(100);
    expect(fleet.leader()).to.equal('a');
    const first = fleet.server.read()!.record;
    expect(first).to.include({ holderIdentity: 'a', leaseDurationSeconds: 15, leaseTransitions: 0 });
    expect(first.renewTime).to.equal(first.acquireTime);
    const writes = fleet.server.writes;
    await fleet.clock.advance(10_000);
    const later = fleet.server.read()!.record;
    expect(fleet.server.writes - writes).to.equal(5);
    expect(later.acquireTime).to.equal(first.acquireTime);
    // The fake clock moves in 10 ms steps, so each period may end up to one step late.
    expect(Date.parse(later.renewTime!) - Date.parse(first.renewTime!)).to.be.closeTo(10_000, 60);
  });

  it('keeps a second replica following while the leader renews', async () => {
    fleet.start('a');
    await fleet.clock.advance(100);
    fleet.start('b');
    await fleet.clock.advance(60_000);
    expect(fleet.leader()).to.equal('a');
    expect(fleet.events.filter((e) => e.who === 'b')).to.deep.equal([]);
  });

  it('lets exactly one of two candidates win a free Lease at the same instant', async () => {
    fleet.start('a');
    fleet.start('b');
    await fleet.clock.advance(100);
    const leader = fleet.leader();
    expect(leader).to.be.oneOf(['a', 'b']);
    expect(fleet.server.read()!.record.holderIdentity).to.equal(leader);
  });

  it('replaces a crashed leader after the lease duration, counted from when the follower last saw a change', async () => {
    fleet.start('a');
    await fleet.clock.advance(100);
    fleet.start('b');
    await fleet.clock.advance(5_000);
    const lastRenew = Date.parse(fleet.server.read()!.record.renewTime!);
    fleet.crash('a');
    await fleet.clock.advance(30_000);
    const took = fleet.firstEvent('b', true);
    expect(took, 'b never took over').to.not.equal(undefined);
    const after = took!.at - lastRenew;
    // Not before the duration; at most one jittered retry period (2.2 x 2 s here) after it.
    expect(after).to.be.at.least(TIMING.leaseDurationMs);
    expect(after).to.be.at.most(TIMING.leaseDurationMs + 2.2 * TIMING.retryPeriodMs + 100);
    expect(fleet.server.read()!.record).to.include({ holderIdentity: 'b', leaseTransitions: 1 });
  });

  for (const cut of ['refused', 'hang'] as const) {
    it(`a leader cut off from the API server (${cut}) stops leading before another replica can take the Lease`, async () => {
      fleet.start('a');
      await fleet.clock.advance(100);
      fleet.start('b');
      await fleet.clock.advance(4_000);
      const lastRenew = Date.parse(fleet.server.read()!.record.renewTime!);
      fleet.replicas.get('a')!.link.link = cut;
      await fleet.clock.advance(30_000);
      const stepped = fleet.firstEvent('a', false);
      const took = fleet.firstEvent('b', true);
      expect(stepped, 'a never stepped down').to.not.equal(undefined);
      expect(took, 'b never took over').to.not.equal(undefined);
      expect(stepped!.at - lastRenew).to.be.at.most(TIMING.renewDeadlineMs);
      expect(stepped!.at).to.be.below(took!.at);
      expect(fleet.leader()).to.equal('b');
      // Back online, the old leader follows: the Lease is b's and is being renewed.
      fleet.replicas.get('a')!.link.link = 'up';
      await fleet.clock.advance(30_000);
      expect(fleet.leader()).to.equal('b');
    });
  }

  it('steps down at once when it sees that another replica holds the Lease', async () => {
    fleet.start('a');
    await fleet.clock.advance(100);
    // Someone (an operator, a replica with a broken clock) writes the Lease over a's head.
    const current = fleet.server.read()!;
    fleet.server.update({ ...current.record, holderIdentity: 'intruder' }, current.resourceVersion);
    await fleet.clock.advance(TIMING.retryPeriodMs + 100);
    expect(fleet.leader()).to.equal(undefined);
    expect(fleet.firstEvent('a', false)!.at).to.be.at.most(fleet.clock.now());
  });

  it('does not trust the timestamps in the record: a renewing leader with a skewed clock keeps the Lease', async () => {
    // b sees a Lease whose renewTime is an hour old but whose version changes every 2 s.
    const holder = (): LeaseRecord => ({ holderIdentity: 'far-away', leaseDurationSeconds: 15, renewTime: microTime(Date.parse('2026-11-30T11:00:00Z')), leaseTransitions: 3 });
    fleet.server.create(holder());
    fleet.start('b');
    for (let i = 0; i < 30; i++) {
      await fleet.clock.advance(2_000);
      fleet.server.update(holder(), fleet.server.read()!.resourceVersion);
    }
    expect(fleet.leader()).to.equal(undefined);
    expect(fleet.server.read()!.record.holderIdentity).to.equal('far-away');
  });

  it('releases the Lease on shutdown, so a follower takes over within a retry period instead of the duration', async () => {
    const a = fleet.start('a');
    await fleet.clock.advance(100);
    fleet.start('b');
    await fleet.clock.advance(3_000);
    a.stop.abort();
    await a.done;
    const releasedAt = fleet.clock.now();
    expect(fleet.server.read()!.record).to.include({ holderIdentity: '', leaseDurationSeconds: 1 });
    expect(fleet.firstEvent('a', false)!.at).to.equal(releasedAt);
    await fleet.clock.advance(6_000);
    const took = fleet.firstEvent('b', true);
    expect(took!.at - releasedAt).to.be.at.most(2.2 * TIMING.retryPeriodMs + 100);
    expect(fleet.server.read()!.record).to.include({ holderIdentity: 'b', leaseTransitions: 1 });
  });

  it('refuses timings that would allow two leaders', () => {
    expect(leaderElectionTimingProblem(TIMING)).to.equal(undefined);
    expect(leaderElectionTimingProblem({ ...TIMING, renewDeadlineMs: 15_000 })).to.match(/lease duration must be longer than the renew deadline/);
    expect(leaderElectionTimingProblem({ ...TIMING, retryPeriodMs: 10_000 })).to.match(/renew deadline must be longer than the retry period/);
    expect(leaderElectionTimingProblem({ ...TIMING, leaseDurationMs: 15_500 })).to.match(/whole seconds/);
    expect(() => new LeaderElector({ identity: 'x', store: new ReplicaLink(new LeaseServer()), clock: new FakeClock(), log: silentLogger, timing: { renewDeadlineMs: 20_000 } })).to.throw(/leader election: the lease duration/);
  });

  it('writes MicroTime with six fractional digits', () => {
    expect(microTime(Date.parse('2026-11-30T12:00:01.234Z'))).to.equal('2026-11-30T12:00:01.234000Z');
  });
});
