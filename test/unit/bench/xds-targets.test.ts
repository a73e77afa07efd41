// The xDS benchmark's verdicts on the issue-12 targets, from results data alone (bench/lib/xds-report.ts).
import { expect } from 'chai';
import { coldPairs, coldPassOdds, evaluateXdsTargets, renderXdsMarkdown, type FleetSummary, type XdsResults } from '../../../bench/lib/xds-report.ts';
import type { XdsEnvoyRound } from '../../../bench/scenarios/xds-envoy.ts';
import { distribution } from '../../../bench/lib/stats.ts';

function round(peer: XdsEnvoyRound['peer'], hosts: number, coldMs: number, rssLoadedKiB: number, changeMs?: number[]): XdsEnvoyRound {
  return { peer, hosts, round: 0, coldMs, coldCpuSeconds: 0.1, rssIdleKiB: 1000, rssLoadedKiB, hwmKiB: rssLoadedKiB, envoyActiveClusters: hosts + 2, foreignPercent: 0, ...(changeMs ? { changeMs, changeCpuSecondsPerChange: 0.01 } : {}) };
}

function fleet(peer: FleetSummary['peer'], mode: FleetSummary['mode'], changeMs: number[], stormMs: number): FleetSummary {
  const phase = { allAckedMs: stormMs, perClient: distribution([stormMs]), cpuSeconds: 1, simCpuSeconds: 1, rssAfterKiB: 1000 };
  return { peer, mode, clients: 500, hosts: 1000, rssIdleKiB: 1000, hwmKiB: 2000, cold: phase, changeAllAckedMs: changeMs, changeAllAcked: distribution(changeMs), changeCpuSecondsPerChange: 0.1, changeSimCpuSecondsPerChange: 0.1, storm: phase, clientErrors: [], foreignPercent: 0 };
}

function results(envoy: XdsEnvoyRound[], fleets: FleetSummary[]): XdsResults {
  return { schemaVersion: 1, startedAt: 'a', finishedAt: 'b', machine: { cpus: 2 }, options: {}, envoy, fleet: fleets, notes: ['a note'] };
}

const verdicts = (r: XdsResults): string[] => evaluateXdsTargets(r).map((t) => t.verdict);

describe('bench: xDS targets', () => {
  it('passes each target exactly at its bound and fails above it', () => {
    const r = results(
      [
        round('ours', 1000, 100, 2000, [12]), round('go-control-plane', 1000, 100, 1000, [10]),
        round('ours', 5000, 300, 2000), round('go-control-plane', 5000, 300, 1000),
      ],
      [fleet('ours', 'sotw', [400], 10_000), fleet('ours', 'delta', [250], 10_000)],
    );
    // The storm target is checked on both variants when both ran.
    expect(verdicts(r)).to.deep.equal(['pass', 'pass', 'pass', 'pass', 'pass', 'pass', 'pass']);
    const worse = results(
      [
        round('ours', 1000, 101, 2001, [12.1]), round('go-control-plane', 1000, 100, 1000, [10]),
        round('ours', 5000, 301, 2001), round('go-control-plane', 5000, 300, 1000),
      ],
      [fleet('ours', 'sotw', [400], 10_001), fleet('ours', 'delta', [251], 10_001)],
    );
    expect(verdicts(worse)).to.deep.equal(['fail', 'fail', 'fail', 'fail', 'fail', 'fail', 'fail']);
    // A delta storm over the bound fails even when the state-of-the-world one passes.
    const deltaStorm = results([], [fleet('ours', 'sotw', [400], 9_000), fleet('ours', 'delta', [250], 10_001)]);
    expect(evaluateXdsTargets(deltaStorm).filter((t) => t.name.includes('storm')).map((t) => t.verdict)).to.deep.equal(['pass', 'fail']);
  });

  it('pairs the cold-load rounds as they ran and says how often ours was the faster of a pair', () => {
    const at = (peer: XdsEnvoyRound['peer'], roundIndex: number, coldMs: number): XdsEnvoyRound => ({ ...round(peer, 1000, coldMs, 1000), round: roundIndex });
    // Median ratio 1.0 (the target met), but ours is the faster of only one pair of three.
    const ours = [at('ours', 0, 90), at('ours', 1, 110), at('ours', 2, 100)];
    const go = [at('go-control-plane', 0, 100), at('go-control-plane', 1, 100), at('go-control-plane', 2, 100)];
    const p = coldPairs(ours, go)!;
    expect(p.pairs).to.equal(3);
    expect(p.oursFaster).to.equal(1);
    expect(p.minRatio).to.be.closeTo(0.9, 1e-9);
    expect(p.maxRatio).to.be.closeTo(1.1, 1e-9);
    const cold = evaluateXdsTargets(results([...ours, ...go], []))[0]!;
    expect(cold.verdict).to.equal('pass');
    // A run of 3 rounds drawn from these passes when 2 of ours' 3 are ≤ 100: 3(2/3)²(1/3) + (2/3)³ = 20/27.
    expect(coldPassOdds(ours, go)).to.be.closeTo(20 / 27, 0.02);
    expect(cold.measured).to.equal(`1.00x (ours faster in 1 of 3 interleaved pairs; pair ratios 0.90–1.10; redrawn from these rounds, the verdict passes in ${Math.round(coldPassOdds(ours, go) * 100)} % of runs)`);
    expect(cold.measured).to.match(/passes in 7[2-6] % of runs/);
    // A round of one peer without its pair (a run cut short) is left out, not paired with another round.
    expect(coldPairs([...ours, at('ours', 3, 50)], go)!.pairs).to.equal(3);
  });

  it('says "not measured" for what the run did not measure, and never passes it', () => {
    // No 5,000-host rounds, no delta run of ours (Go's delta run does not count for ours).
    const r = results([round('ours', 1000, 50, 10, [5]), round('go-control-plane', 1000, 100, 10, [10])], [fleet('ours', 'sotw', [400], 500), fleet('go-control-plane', 'delta', [40], 500)]);
    expect(verdicts(r)).to.deep.equal(['pass', 'not measured', 'pass', 'not measured', 'not measured', 'pass']);
    const delta = evaluateXdsTargets(r).find((t) => t.name.startsWith('delta'))!;
    expect(delta.measured).to.contain('no delta xDS in our control plane yet');
    expect(renderXdsMarkdown(r)).to.contain('**not measured**');
  });
});
