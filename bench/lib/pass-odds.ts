// How often a "median of ours' rounds / median of the peer's rounds ≤ 1.0" verdict comes out pass, given the
// rounds a benchmark measured: runs of `roundsPerRun` rounds per side are drawn from those rounds (with
// replacement) many times over, and the share of draws whose ratio passes is the estimate. It tells a verdict
// the implementations decide from one that the machine's round-to-round spread decides: two samples from the
// same distribution pass half of the draws whatever their size.
import { median } from './stats.ts';

export { seededRandom } from '../../test/support/seeded-random.ts';

export interface PassOddsOptions {
  /** Rounds per side in one benchmark run (bench:xds runs 5). */
  roundsPerRun: number;
  /** Draws of a whole run. */
  draws: number;
  /** The verdict's bound on the ratio of medians. */
  bound: number;
  /** A source of uniform numbers in [0, 1): seeded, so that a report can be re-derived. */
  random: () => number;
}

/** The share of drawn runs in which median(ours) / median(peer) ≤ bound. */
export function passOdds(ours: readonly number[], peer: readonly number[], options: PassOddsOptions): number {
  if (ours.length === 0 || peer.length === 0) throw new Error('pass odds need rounds on both sides');
  const draw = (xs: readonly number[]): number[] => Array.from({ length: options.roundsPerRun }, () => xs[Math.floor(options.random() * xs.length)]!);
  let passed = 0;
  for (let i = 0; i < options.draws; i++) if (median(draw(ours)) / median(draw(peer)) <= options.bound) passed++;
  return passed / options.draws;
}
