// The targets the results are judged against, evaluated from the data model alone (pure).
// Issue targets are what the issue asks for; goals are the project's stricter aims; checks are yes/no.
import type { BenchResults, TargetCheck } from './model.ts';

export const TARGETS = {
  passthroughRatioIssue: 0.98,
  passthroughRatioGoal: 0.99,
  releaseP99IssueMs: 20,
  releaseP99GoalMs: 15,
  coldStartP50GoalMs: 25,
  /** The issue: "from a Ready pod (EndpointSlice updated) to the held request at the upstream ... <= 25 ms p50". */
  kubeColdStartP50IssueMs: 25,
} as const;

export function evaluateTargets(r: Pick<BenchResults, 'passthrough' | 'release' | 'memory' | 'coldStart' | 'kubeColdStart'>): TargetCheck[] {
  const out: TargetCheck[] = [];
  if (r.coldStart) {
    out.push({
      id: 'cold-start.ready-to-first-byte.p50.goal',
      scenario: 'cold-start',
      level: 'goal',
      description: 'cold start: upstream ready → first byte at the client, p50',
      target: `≤ ${TARGETS.coldStartP50GoalMs} ms`,
      measured: Math.round(r.coldStart.readyToFirstByteMs.p50 * 10) / 10,
      unit: 'ms',
      pass: r.coldStart.readyToFirstByteMs.p50 <= TARGETS.coldStartP50GoalMs,
    });
  }
  if (r.kubeColdStart) {
    const p50 = r.kubeColdStart.sliceReadyToAtUpstreamMs.p50;
    out.push({
      id: 'kube-cold-start.slice-ready-to-upstream.p50.issue',
      scenario: 'kube-cold-start',
      level: 'issue',
      description: 'Kubernetes cold start: EndpointSlice lists the pod ready → held request at the pod, p50',
      target: `≤ ${TARGETS.kubeColdStartP50IssueMs} ms`,
      measured: Math.round(p50 * 10) / 10,
      unit: 'ms',
      pass: p50 <= TARGETS.kubeColdStartP50IssueMs,
    });
  }
  if (r.passthrough) {
    const ratio = r.passthrough.throughputRatio;
    for (const [level, min] of [['issue', TARGETS.passthroughRatioIssue], ['goal', TARGETS.passthroughRatioGoal]] as const) {
      out.push({
        id: `passthrough.throughput-ratio.${level}`,
        scenario: 'passthrough',
        level,
        description: 'A/B median req/s (our gateway vs. static Envoy without Wasm)',
        target: `≥ ${(min * 100).toFixed(0)} %`,
        measured: Math.round(ratio * 1000) / 10,
        unit: '%',
        pass: ratio >= min,
      });
    }
  }
  if (r.release) {
    for (const c of r.release.cases) {
      for (const [level, max] of [['issue', TARGETS.releaseP99IssueMs], ['goal', TARGETS.releaseP99GoalMs]] as const) {
        out.push({
          id: `release.${c.upstream}.${c.held}.p99.${level}`,
          scenario: 'release',
          level,
          description: `release → at upstream p99, ${c.held} held, ${c.upstream === 'node' ? 'demo upstream' : 'Envoy upstream'}`,
          target: `≤ ${max} ms`,
          measured: c.atUpstreamMs.p99,
          unit: 'ms',
          pass: c.atUpstreamMs.p99 <= max,
        });
      }
      out.push({
        id: `release.${c.upstream}.${c.held}.all-200`,
        scenario: 'release',
        level: 'check',
        description: `every released request answered 200, ${c.held} held, ${c.upstream === 'node' ? 'demo upstream' : 'Envoy upstream'}`,
        target: 'all',
        measured: c.rounds.reduce((s, x) => s + (x.statuses['200'] ?? 0), 0),
        unit: 'answers',
        pass: c.allAnswered200,
      });
    }
  }
  if (r.memory) {
    for (const b of r.memory.bigReleases) {
      out.push({
        id: `memory.${b.upstream}.${b.held}.all-200`,
        scenario: 'memory',
        level: 'check',
        description: `all ${b.held} held requests released with 200 (${b.upstream === 'node' ? 'demo upstream' : 'Envoy upstream'})`,
        target: `${b.held}`,
        measured: b.answered200,
        unit: 'answers',
        pass: b.answered200 === b.held,
      });
      out.push({
        id: `memory.${b.upstream}.${b.held}.envoy-alive`,
        scenario: 'memory',
        level: 'check',
        description: `Envoy still running and LIVE after releasing ${b.held} (${b.upstream === 'node' ? 'demo upstream' : 'Envoy upstream'})`,
        target: 'yes',
        measured: b.envoyRunningAfter && b.envoyLiveAfter ? 1 : 0,
        unit: 'bool',
        pass: b.envoyRunningAfter && b.envoyLiveAfter,
      });
    }
  }
  return out;
}
