import { expect } from 'chai';
import { TrafficMonitor } from '../../../xds-server/scaling/traffic.ts';

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

  it('knows only data from every node: silence from one means no evidence of idleness', () => {
    const t = new TrafficMonitor();
    t.record(report('a#1', 1_000, []));
    expect(t.allReportedSince(['a', 'b'], 500)).to.equal(false);
    t.record(report('b#2', 1_100, []));
    expect(t.allReportedSince(['a', 'b'], 500)).to.equal(true);
    expect(t.allReportedSince([], 500)).to.equal(false);
  });
});
