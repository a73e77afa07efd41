import { expect } from 'chai';
import {
  DEFAULT_TRAFFIC_SHARE as T,
  parseRecord,
  sharedEvidence,
  sharedLastTraffic,
  toRecord,
  worthWriting,
  type LocalTraffic,
  type ObservedRecord,
} from '../../../xds-server/kubernetes/traffic-share.ts';

const NOW = Date.parse('2026-11-30T12:00:00Z');
const local = (lastTraffic: Record<string, number>, reporters = 1, stalestReportAt: number | undefined = NOW - 500): LocalTraffic => ({
  reporters,
  stalestReportAt,
  lastTraffic: new Map(Object.entries(lastTraffic)),
});

describe('traffic shared between replicas (pure parts)', () => {
  it('writes ages, not timestamps, so the reader places them on its own clock', () => {
    const r = toRecord('cp-0', local({ b: NOW - 3_000, a: NOW - 10 }), NOW);
    expect(r).to.deep.equal({ replica: 'cp-0', reporters: 1, stalestReportAgeMs: 500, lastTrafficAgeMs: { a: 10, b: 3_000 } });
    // A reader whose clock is an hour ahead saw it arrive at its own "now": b is 3 s old there too.
    const readerNow = NOW + 3_600_000;
    expect(sharedLastTraffic('b', [{ record: r, observedAt: readerNow }])).to.equal(readerNow - 3_000);
    expect(toRecord('cp-0', local({}, 0, undefined), NOW)).to.deep.equal({ replica: 'cp-0', reporters: 0, lastTrafficAgeMs: {} });
  });

  it('writes at most once per minIntervalMs, at least every heartbeat, and in between only for a change that matters', () => {
    const first = { record: toRecord('cp-0', local({ a: NOW - 1_000 }), NOW), writtenAt: NOW };
    expect(worthWriting(undefined, local({}), NOW, T)).to.equal(true);
    // Traffic on a just a moment later: below the granularity, and inside the minimum interval anyway.
    expect(worthWriting(first, local({ a: NOW + 500 }), NOW + 500, T)).to.equal(false);
    expect(worthWriting(first, local({ a: NOW + 1_500 }), NOW + 1_500, T)).to.equal(false);
    // Moved on by the granularity: worth it before the heartbeat.
    expect(worthWriting(first, local({ a: NOW + 4_000 }), NOW + 4_000, T)).to.equal(true);
    // A cluster seen for the first time, or a reporter more or fewer.
    expect(worthWriting(first, local({ a: NOW - 1_000, b: NOW + 1_200 }), NOW + 1_200, T)).to.equal(true);
    expect(worthWriting(first, local({ a: NOW - 1_000 }, 2), NOW + 1_200, T)).to.equal(true);
    expect(worthWriting(first, local({ b: NOW + 900 }, 2), NOW + 900, T), 'inside the minimum interval').to.equal(false);
    // Nothing moved: only the heartbeat.
    expect(worthWriting(first, local({ a: NOW - 1_000 }), NOW + 4_999, T)).to.equal(false);
    expect(worthWriting(first, local({ a: NOW - 1_000 }), NOW + 5_000, T)).to.equal(true);
  });

  it('bounds the writes of a replica under constant traffic to one per granularity, and one per heartbeat when idle', () => {
    let written: { record: ReturnType<typeof toRecord>; writtenAt: number } | undefined;
    let writes = 0;
    // 60 s, traffic every 10 ms on 50 clusters, the sync loop runs every 100 ms.
    for (let t = NOW; t < NOW + 60_000; t += 100) {
      const l = local(Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`c${i}`, t - 5])));
      if (worthWriting(written, l, t, T)) {
        written = { record: toRecord('cp-0', l, t), writtenAt: t };
        writes++;
      }
    }
    expect(writes).to.equal(12);
    writes = 0;
    written = undefined;
    for (let t = NOW; t < NOW + 60_000; t += 100) {
      const l = local({ c0: NOW - 60_000 });
      if (worthWriting(written, l, t, T)) {
        written = { record: toRecord('cp-0', l, t), writtenAt: t };
        writes++;
      }
    }
    expect(writes).to.equal(12);
  });

  it('takes the latest traffic over all records', () => {
    const others: ObservedRecord[] = [
      { record: { replica: 'cp-1', reporters: 1, stalestReportAgeMs: 0, lastTrafficAgeMs: { a: 30_000 } }, observedAt: NOW - 1_000 },
      { record: { replica: 'cp-2', reporters: 1, stalestReportAgeMs: 0, lastTrafficAgeMs: { a: 5_000, b: 1 } }, observedAt: NOW - 2_000 },
    ];
    expect(sharedLastTraffic('a', others)).to.equal(NOW - 7_000);
    expect(sharedLastTraffic('b', others)).to.equal(NOW - 2_001);
    expect(sharedLastTraffic('zzz', others)).to.equal(undefined);
  });

  it('lets silence count only when every other replica is fresh and has heard from all its Envoys since', () => {
    const since = NOW - 3_000;
    const fresh = (replica: string, reporters: number, stalestReportAgeMs?: number, observedAt = NOW - 100): ObservedRecord => ({
      record: { replica, reporters, ...(stalestReportAgeMs === undefined ? {} : { stalestReportAgeMs }), lastTrafficAgeMs: {} },
      observedAt,
    });
    expect(sharedEvidence([], since, NOW, T)).to.deep.equal({ ok: true });
    expect(sharedEvidence([fresh('cp-1', 2, 400), fresh('cp-2', 0)], since, NOW, T)).to.deep.equal({ ok: true });
    expect(sharedEvidence([fresh('cp-1', 2, 4_000)], since, NOW, T)).to.deep.equal({ ok: false, cause: 'no recent load report from an Envoy connected to replica "cp-1"' });
    expect(sharedEvidence([fresh('cp-1', 1)], since, NOW, T)).to.deep.equal({ ok: false, cause: 'replica "cp-1" has Envoys that have not reported load yet' });
    const stale = sharedEvidence([fresh('cp-1', 0, undefined, NOW - 25_000)], since, NOW, T);
    expect(stale.ok).to.equal(false);
    expect((stale as { cause: string }).cause).to.match(/replica "cp-1" has not refreshed its traffic record for 25 s/);
  });

  it('refuses malformed records with a message', () => {
    expect(parseRecord('{"replica":"cp-0","reporters":0,"lastTrafficAgeMs":{"a":1}}')).to.deep.equal({ replica: 'cp-0', reporters: 0, lastTrafficAgeMs: { a: 1 } });
    expect(() => parseRecord('[]')).to.throw(/replica must be/);
    expect(() => parseRecord('{"replica":"x","reporters":-1,"lastTrafficAgeMs":{}}')).to.throw(/reporters must be a count/);
    expect(() => parseRecord('{"replica":"x","reporters":1,"lastTrafficAgeMs":{"a":-5}}')).to.throw(/lastTrafficAgeMs\["a"\] must be >= 0/);
    expect(() => parseRecord('not json')).to.throw();
  });
});
