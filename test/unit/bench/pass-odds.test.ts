// The pass-odds estimate bench/xds-trace.ts --odds reports (bench/lib/pass-odds.ts).
import { expect } from 'chai';
import { passOdds, seededRandom } from '../../../bench/lib/pass-odds.ts';

const options = (seed = 1) => ({ roundsPerRun: 5, draws: 4000, bound: 1.0, random: seededRandom(seed) });

describe('bench: pass odds of a median-ratio verdict', () => {
  it('passes every draw when every round of ours is faster than every round of the peer', () => {
    expect(passOdds([90, 95, 99], [100, 110, 120], options())).to.equal(1);
  });

  it('passes no draw when every round of ours is slower', () => {
    expect(passOdds([101, 130], [90, 100], options())).to.equal(0);
  });

  it('passes about half of the draws when both sides are the same rounds', () => {
    const rounds = [3100, 3300, 3350, 3600, 3900, 4200, 4650, 5000];
    const odds = passOdds(rounds, rounds, options(7));
    // Ties (equal medians) pass, so a little over half.
    expect(odds).to.be.within(0.5, 0.62);
  });

  it('passes more often the larger ours\' edge is against the same spread', () => {
    const peer = [3000, 3200, 3400, 3600, 3800, 4000, 4200, 4400];
    const edge = (d: number) => passOdds(peer.map((x) => x - d), peer, options(3));
    // The rounds are 200 apart: each 200 of edge turns one more order of medians into a pass.
    expect(edge(250)).to.be.above(edge(0));
    expect(edge(650)).to.be.above(edge(250));
    expect(edge(1500)).to.equal(1);
  });

  it('draws the same runs from the same seed', () => {
    const a = [1, 5, 9, 13];
    const b = [2, 6, 10, 14];
    expect(passOdds(a, b, options(42))).to.equal(passOdds(a, b, options(42)));
  });

  it('refuses an empty side', () => {
    expect(() => passOdds([], [1], options())).to.throw('both sides');
  });
});
