// The status page's pure pieces on a fake clock: held reports (summed per Envoy, expiring, cleared), the
// cold-start log (phases, histograms, first traffic from a load report) and the metrics text.
import { expect } from 'chai';
import { AdsEvents } from '../../../xds-server/ads/events.ts';
import { Metrics } from '../../../xds-server/metrics.ts';
import { ColdStartLog } from '../../../xds-server/status/cold-starts.ts';
import { HeldReports } from '../../../xds-server/status/held-reports.ts';
import { coldStartPhases } from '../../../xds-server/status/status-view.ts';

describe('held reports', () => {
  it('keeps the latest count per Envoy, sums them, drops a report older than the TTL, and clears a host', () => {
    let now = 0;
    const held = new HeldReports(2_500, () => now);
    held.record('web', 'envoy-a', 3);
    held.record('web', 'envoy-b', 2);
    held.record('web', 'envoy-a', 4);
    expect(held.total('web')).to.equal(6);
    now = 2_000;
    held.record('web', 'envoy-b', 1);
    now = 3_000;
    expect(held.reports('web').map((r) => [r.envoy, r.count])).to.deep.equal([['envoy-b', 1]]);
    held.clear('web');
    expect(held.total('web')).to.equal(0);
  });
});

describe('cold-start log', () => {
  it('records the phases of a cold start, observes the histograms and closes on the first load report with traffic', () => {
    let now = 1_000;
    let changes = 0;
    const metrics = new Metrics(new AdsEvents(), () => now);
    const log = new ColdStartLog(metrics, (h) => `host_${h}`, () => changes++, () => now);
    log.wakeStarted('web', 'filter', 'first request held by Envoy');
    now = 1_250;
    log.wakeReady('web');
    now = 1_280;
    log.released('web', 0);
    log.loadReport({ nodeId: 'n', reporter: 'n#1', at: 1_500, clusters: [{ cluster: 'host_other', issued: 3, inProgress: 0 }] });
    expect(log.recent('web')[0]!.firstTrafficReportedAt).to.equal(undefined);
    log.loadReport({ nodeId: 'n', reporter: 'n#1', at: 2_000, clusters: [{ cluster: 'host_web', issued: 1, inProgress: 0 }] });
    log.loadReport({ nodeId: 'n', reporter: 'n#1', at: 3_000, clusters: [{ cluster: 'host_web', issued: 1, inProgress: 0 }] });
    expect(log.recent('web')[0]).to.deep.include({ outcome: 'ready', startedAt: 1_000, readyAt: 1_250, releaseAckedAt: 1_280, firstTrafficReportedAt: 2_000 });
    expect(changes).to.equal(4);
    const text = metrics.render();
    expect(text).to.include('stz_cold_start_duration_seconds_sum{host="web"} 0.28');
    expect(text).to.include('stz_cold_start_duration_seconds_bucket{host="web",le="0.25"} 0');
    expect(text).to.include('stz_cold_start_duration_seconds_bucket{host="web",le="0.5"} 1');
    expect(text).to.include('stz_cold_start_phase_duration_seconds_count{host="web",phase="wake_to_ready"} 1');
    expect(text).to.include('stz_cold_start_phase_duration_seconds_sum{host="web",phase="ready_to_release_acked"} 0.03');
  });

  it('splits a cold start into its phases, in order: requested, spawned, ready (signalled), pushed, ACKed, traffic reported', () => {
    let now = 10_000;
    const metrics = new Metrics(new AdsEvents(), () => now);
    const log = new ColdStartLog(metrics, (h) => `host_${h}`, () => {}, () => now);
    log.wakeStarted('web', 'filter', 'first request held by Envoy');
    now += 3;
    log.wakeSpawned('web');
    now += 40;
    log.wakeReady('web', 'signal');
    now += 2;
    log.releasePushed('web');
    now += 5;
    log.released('web', 0);
    log.loadReport({ nodeId: 'n', reporter: 'n#1', at: now + 700, clusters: [{ cluster: 'host_web', issued: 1, inProgress: 0 }] });
    const c = log.recent('web')[0]!;
    expect(c).to.deep.include({ readyBy: 'signal', spawnedAt: 10_003, readyAt: 10_043, releasePushedAt: 10_045, releaseAckedAt: 10_050 });
    expect(coldStartPhases(c).map((p) => [p.phase, p.sincePreviousMs])).to.deep.equal([
      ['start_requested', 0], ['spawned', 3], ['ready', 40], ['release_pushed', 2], ['release_acked', 5], ['first_traffic_reported', 700],
    ]);
    const text = metrics.render();
    for (const [phase, sum] of [['wake_to_spawned', '0.003'], ['spawned_to_ready', '0.04'], ['ready_to_release_pushed', '0.002'], ['release_pushed_to_acked', '0.005']] as const) {
      expect(text).to.include(`stz_cold_start_phase_duration_seconds_sum{host="web",phase="${phase}"} ${sum}`);
    }
  });

  it('takes traffic reported after the release was pushed but before its ACK was handled (counts are per interval)', () => {
    let now = 0;
    const log = new ColdStartLog(new Metrics(new AdsEvents(), () => now), (h) => `host_${h}`, () => {}, () => now);
    log.wakeStarted('web', 'filter', 'first request held by Envoy');
    log.loadReport({ nodeId: 'n', reporter: 'n#1', at: 5, clusters: [{ cluster: 'host_web', issued: 1, inProgress: 0 }] });
    now = 40;
    log.wakeReady('web');
    log.loadReport({ nodeId: 'n', reporter: 'n#1', at: 41, clusters: [{ cluster: 'host_web', issued: 1, inProgress: 0 }] });
    // Before the push no request can have been released: nothing is taken.
    expect(log.recent('web')[0]!.firstTrafficReportedAt).to.equal(undefined);
    now = 42;
    log.releasePushed('web');
    log.loadReport({ nodeId: 'n', reporter: 'n#1', at: 46, clusters: [{ cluster: 'host_web', issued: 1, inProgress: 0 }] });
    now = 50;
    log.released('web', 0);
    log.loadReport({ nodeId: 'n', reporter: 'n#1', at: 250, clusters: [] });
    const c = log.recent('web')[0]!;
    expect(c).to.deep.include({ outcome: 'ready', releasePushedAt: 42, releaseAckedAt: 50, firstTrafficReportedAt: 46 });
    expect(coldStartPhases(c).map((p) => [p.phase, p.sincePreviousMs])).to.deep.equal([
      ['start_requested', 0], ['ready', 40], ['release_pushed', 2], ['release_acked', 8], ['first_traffic_reported', 0],
    ]);
  });

  it('lists only the phases a cold start reached (a wake still waiting for readiness)', () => {
    let now = 0;
    const log = new ColdStartLog(new Metrics(new AdsEvents()), () => 'c', () => {}, () => now);
    log.wakeStarted('web', 'admin', 'wake');
    now = 7;
    log.wakeSpawned('web');
    // A push stamp before readiness is not a phase of this cold start.
    log.releasePushed('web');
    expect(coldStartPhases(log.recent('web')[0]!).map((p) => p.phase)).to.deep.equal(['start_requested', 'spawned']);
  });

  it('marks a failed wake and keeps the last ten, newest first', () => {
    const log = new ColdStartLog(new Metrics(new AdsEvents()), () => 'c');
    for (let i = 0; i < 12; i++) log.wakeStarted('web', 'admin', `wake ${i}`);
    log.wakeFailed('web', 'exited', 'the process exited (code 3) before becoming healthy');
    const recent = log.recent('web');
    expect(recent).to.have.length(10);
    expect(recent[0]).to.deep.include({ reason: 'wake 11', outcome: 'failed', failure: { reason: 'exited', message: 'the process exited (code 3) before becoming healthy' } });
    expect(recent[9]!.reason).to.equal('wake 2');
  });
});

describe('metrics text', () => {
  it('declares every family with HELP and TYPE before its first sample, and keeps histogram buckets in le order', () => {
    const events = new AdsEvents();
    let now = 0;
    const metrics = new Metrics(events, () => now);
    const empty = metrics.render();
    for (const family of ['stz_cold_start_duration_seconds histogram', 'stz_wakes_total counter', 'stz_requests_held gauge', 'stz_xds_push_ack_duration_seconds histogram']) {
      expect(empty).to.include(`# TYPE ${family}`);
    }
    // Push to ACK: the first send of a version until its ACK; a resend of the same version keeps the first time.
    events.emit('response', { streamId: 1, nodeId: 'n', kind: 'listener', version: 'v1', nonce: '1', names: [] });
    now = 40;
    events.emit('response', { streamId: 1, nodeId: 'n', kind: 'listener', version: 'v1', nonce: '2', names: [] });
    now = 100;
    events.emit('ack', { streamId: 1, nodeId: 'n', kind: 'listener', version: 'v1' });
    events.emit('ack', { streamId: 1, nodeId: 'n', kind: 'listener', version: 'v1' });
    const type = 'type.googleapis.com/envoy.config.listener.v3.Listener';
    expect(metrics.histogramCount('stz_xds_push_ack_duration_seconds', { type })).to.equal(1);
    const lines = metrics.render().split('\n').filter((l) => l.startsWith('stz_xds_push_ack_duration_seconds_bucket'));
    const les = lines.map((l) => /le="([^"]+)"/.exec(l)![1]!);
    expect(les.at(-1)).to.equal('+Inf');
    const numeric = les.slice(0, -1).map(Number);
    expect(numeric).to.deep.equal([...numeric].sort((a, b) => a - b));
    expect(metrics.render()).to.include(`stz_xds_push_ack_duration_seconds_sum{type="${type}"} 0.1`);
  });
});
