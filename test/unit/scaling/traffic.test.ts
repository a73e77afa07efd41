import { expect } from 'chai';
import { OncePerCause, TrafficMonitor } from '../../../xds-server/scaling/traffic.ts';
import { FakeClock } from '../../support/fake-clock.ts';

const report = (reporter: string, at: number, clusters: { cluster: string; issued: number; inProgress: number }[]) => ({
  nodeId: reporter.split('#')[0]!,
  reporter,
  at,
  clusters,
});

describe('TrafficMonitor (LRS reports → idle signal)', () => {
  it('counts a cluster left out of a later report as having nothing in progress (Envoy omits idle clusters)', () => {
    const t = new TrafficMonitor();
    t.record(report('n#1', 1_000, [{ cluster: 'host_web', issued: 1, inProgress: 1 }]));
    expect(t.requestsInProgress('host_web')).to.equal(1);
    t.record(report('n#1', 2_000, []));
    expect(t.requestsInProgress('host_web')).to.equal(0);
    expect(t.lastActiveAt('host_web')).to.equal(1_000);
  });

  it('keeps two Envoys that share a node id apart', () => {
    const t = new TrafficMonitor();
    t.record(report('same#1', 1_000, [{ cluster: 'host_web', issued: 5, inProgress: 5 }]));
    t.record(report('same#2', 1_001, [{ cluster: 'host_web', issued: 0, inProgress: 0 }]));
    expect(t.requestsInProgress('host_web')).to.equal(5);
    t.forgetReporter('same#1');
    expect(t.requestsInProgress('host_web')).to.equal(0);
  });

  it('treats a long-lived stream (in progress, nothing new issued) as activity', () => {
    const t = new TrafficMonitor();
    t.record(report('n#1', 5_000, [{ cluster: 'host_web', issued: 0, inProgress: 1 }]));
    expect(t.lastActiveAt('host_web')).to.equal(5_000);
  });

  // Idleness comes from the clients that route the host and can report: one that sends no load reports (a
  // proxyless gRPC client, a second tool) must not veto it.
  describe('idleEvidence', () => {
    const clock = new FakeClock();
    const grace = 3_000;
    const routing = (nodeId: string, connectedAt = clock.now() - 60_000) => ({ nodeId, connectedAt });

    it('holds when a reporting Envoy has not reported since the given time', () => {
      const t = new TrafficMonitor();
      const since = clock.now() - 3_000;
      t.record(report('a#1', since + 10, []));
      t.openReporter('b#2', 'b');
      expect(t.idleEvidence([routing('a'), routing('b')], since, clock.now(), grace)).to.deep.equal({ ok: false, cause: 'no recent load report from node "b"' });
      t.record(report('b#2', since + 20, []));
      expect(t.idleEvidence([routing('a'), routing('b')], since, clock.now(), grace)).to.deep.equal({ ok: true, cannotReport: [] });
    });

    it('does not let a client without a load-report stream veto, once its grace period is over', async () => {
      const t = new TrafficMonitor();
      const tool = routing('tool', clock.now());
      t.record(report('envoy#1', clock.now(), []));
      const first = t.idleEvidence([routing('envoy'), tool], clock.now() - 3_000, clock.now(), grace);
      expect(first).to.deep.equal({ ok: false, cause: 'waiting for the first load report of node "tool", which connected moments ago' });
      await clock.advance(grace, 1_000);
      t.record(report('envoy#1', clock.now(), []));
      expect(t.idleEvidence([routing('envoy'), tool], clock.now() - 3_000, clock.now(), grace)).to.deep.equal({ ok: true, cannotReport: ['tool'] });
    });

    it('forgets a closed LRS stream: its node then counts as one that cannot report', () => {
      const t = new TrafficMonitor();
      t.record(report('envoy#1', clock.now(), []));
      t.record(report('old#2', clock.now() - 60_000, []));
      expect(t.idleEvidence([routing('envoy'), routing('old')], clock.now() - 3_000, clock.now(), grace).ok).to.equal(false);
      t.forgetReporter('old#2');
      expect(t.idleEvidence([routing('envoy'), routing('old')], clock.now() - 3_000, clock.now(), grace)).to.deep.equal({ ok: true, cannotReport: ['old'] });
    });

    it('is no evidence without any client that routes the host, or when none of them reports', () => {
      const t = new TrafficMonitor();
      // Neither is evidence of traffic either: another replica's Envoys may decide (noLocalEvidence).
      expect(t.idleEvidence([], 0, clock.now(), grace)).to.deep.equal({ ok: false, cause: 'no Envoy that routes the host is connected', noLocalEvidence: true });
      expect(t.idleEvidence([routing('tool')], 0, clock.now(), grace)).to.deep.equal({
        ok: false,
        cause: 'no client that routes the host sends load reports, so its traffic cannot be seen',
        noLocalEvidence: true,
      });
    });
  });

  it('OncePerCause says "log it" once per cause and again when the cause changes', () => {
    const once = new OncePerCause();
    expect([once.note('web', 'a'), once.note('web', 'a'), once.note('web', 'b'), once.note('web', 'a')]).to.deep.equal([true, false, true, true]);
    once.clear('web');
    expect(once.note('web', 'a')).to.equal(true);
  });
});
