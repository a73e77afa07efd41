// The results' data model: what bench/results/latest.json holds. Plain data only; the Markdown renderer
// (render-markdown.ts) reads it and adds nothing that is not here, so the JSON is the record.
import type { Distribution } from './stats.ts';
import type { MachineFacts } from './system.ts';

export const SCHEMA_VERSION = 1;

export interface WrkRound {
  round: number;
  requestsPerSecond: number;
  requests: number;
  durationS: number;
  latencyUs: { p50: number; p90: number; p99: number; max: number };
  errors: { connect: number; read: number; write: number; status: number; timeout: number };
  /** CPU the gateway Envoy used during the round, in % of one core (100 = one core saturated). */
  gatewayCpuPercent: number;
  /** Same for the upstream Envoy. */
  upstreamCpuPercent: number;
  /** CPU used by processes outside the benchmark during the round (shared machine), % of one core. */
  otherCpuPercent: number;
}

export interface PassthroughVariant {
  id: 'A' | 'B';
  label: string;
  rounds: WrkRound[];
  medianRequestsPerSecond: number;
  /** Median over rounds of each round's percentile (wrk reports percentiles, not mergeable histograms). */
  medianLatencyUs: { p50: number; p90: number; p99: number };
  medianGatewayCpuPercent: number;
  /** Requests per second per fully used gateway core: throughput with the CPU share factored out. */
  medianRequestsPerCoreSecond: number;
}

export interface PassthroughResult {
  settings: {
    rounds: number;
    durationS: number;
    connections: number;
    wrkThreads: number;
    gatewayConcurrency: number;
    upstreamConcurrency: number;
    /** CPU each process was pinned to; null = not pinned. */
    pinning: { gateways: number | null; wrk: number | null; upstream: number | null };
    order: string;
  };
  a: PassthroughVariant;
  b: PassthroughVariant;
  /** A median req/s ÷ B median req/s. */
  throughputRatio: number;
  /** A ÷ B of requests per core-second. */
  efficiencyRatio: number;
  /** A ÷ B req/s of each interleaved pair (round r of A with round r of B): the spread shows the noise. */
  pairRatios: number[];
  /** Median of pairRatios: less sensitive than throughputRatio to drift over the run (both variants drift alike within a pair). */
  medianPairRatio: number;
  /** Pairs measured while other processes on the machine used noticeable CPU; left out and run again. */
  discarded: { round: number; variant: 'A' | 'B'; result: WrkRound; reason: string }[];
  checks: {
    /** A really has the buffer filter: ECDS config accepted at least once. */
    aFilterConfigReloads: number;
    /** B's config dump mentions no Wasm anywhere. */
    bHasNoWasm: boolean;
  };
}

export interface ReleaseRound {
  round: number;
  held: number;
  /** Release decision (snapshot-set) → the ECDS response for it left the control plane, ms. */
  pushSentMs: number | null;
  /** Release decision → Envoy's ACK of that ECDS version, ms. */
  ackMs: number | null;
  /** Release decision → first / last held request at the upstream, ms. */
  firstAtUpstreamMs: number | null;
  lastAtUpstreamMs: number | null;
  /** Longest pause between two consecutive arrivals at the upstream, ms (shows stalls in a mass release). */
  largestGapMs: number | null;
  /** Release decision → last answer seen by the hold client (another process; same epoch clock), ms. */
  lastAnsweredMs: number | null;
  statuses: Record<string, number>;
  clientErrors: Record<string, number>;
  /** Non-200 answers grouped by status, x-scale-to-zero header and the start of the body. */
  failures: Record<string, number>;
}

export type UpstreamKind = 'node' | 'envoy';

/** Agreement of the Envoy upstream's clock with the harness's, from direct requests (see held.ts). */
export interface ClockCheck {
  samples: number;
  /** Smallest (Envoy start − our send), ms; negative means Envoy's clock is behind ours by at least that. */
  minLeadMs: number;
  /** Smallest (our receive − Envoy start), ms; negative means Envoy's clock is ahead. */
  minLagMs: number;
  consistent: boolean;
}

export interface ReleaseCase {
  held: number;
  upstream: UpstreamKind;
  upstreamLabel: string;
  rounds: ReleaseRound[];
  /** Every held request of every round: release decision → request at the upstream, ms. */
  atUpstreamMs: Distribution;
  /** Every held request: release decision → its answer at the hold client, ms. */
  answeredMs: Distribution | null;
  allAnswered200: boolean;
}

export interface ReleaseResult {
  settings: { envoyConcurrency: number; holdTimeoutMs: number; maxHeldPerWorker: number };
  clockCheck: ClockCheck;
  cases: ReleaseCase[];
}

export interface MemoryPoint {
  label: string;
  held: number;
  /** The filter's held gauge when RSS was read. */
  heldGauge: number;
  rssMiB: number;
}

export interface MemoryResult {
  settings: { envoyConcurrency: number; holdTimeoutMs: number; maxHeldPerWorker: number; held: number };
  points: MemoryPoint[];
  /** (RSS at the largest hold − RSS with none) ÷ held, KiB per held request. */
  kibPerHeldRequest: number;
  bigReleases: {
    held: number;
    upstream: UpstreamKind;
    upstreamLabel: string;
    answered200: number;
    statuses: Record<string, number>;
    clientErrors: Record<string, number>;
    failures: Record<string, number>;
    /** The gateway's stats for the released host's cluster that explain failed requests (deltas over the release). */
    clusterStats: Record<string, number>;
    /**
     * Sockets the release needed at once, against the gateway Envoy's open-file limit: every held request
     * has its downstream connection, and releasing opens upstream connections on top (upstream_cx_total).
     */
    openFiles: { downstream: number; newUpstreamConnections: number; envoyLimit: number | null };
    /** Gateway Envoy log lines at warning level or above written during the release (first few). */
    envoyLog: string[];
    /** Release decision → the last held request at the upstream, ms. */
    lastAtUpstreamMs: number | null;
    /** Release decision → the last answer at the hold client, ms. */
    lastAnsweredMs: number | null;
    atUpstreamMs: Distribution | null;
    envoyRunningAfter: boolean;
    envoyLiveAfter: boolean;
  }[];
  /** The filter's counters at the end (released, overflowed, timed_out, ...). */
  filterCounters: Record<string, number>;
}

export interface ColdStartRound {
  /** The upstream's own readyAt (both ports accepting) → first response byte at the client. */
  readyToFirstByteMs: number;
  /** Request sent → first response byte: what the caller waits, the backend's start-up included. */
  requestToFirstByteMs: number;
  /** readyAt → the control plane publishing the release (null if not observed). */
  readyToReleaseMs: number | null;
  status: number;
}

export interface ColdStartResult {
  rounds: ColdStartRound[];
  readyToFirstByteMs: Distribution;
  requestToFirstByteMs: Distribution;
}

export type TargetLevel = 'issue' | 'goal' | 'check';

export interface TargetCheck {
  id: string;
  scenario: 'passthrough' | 'release' | 'memory' | 'cold-start';
  level: TargetLevel;
  description: string;
  /** Human-readable threshold, e.g. "≥ 98 %". */
  target: string;
  measured: number | null;
  unit: string;
  pass: boolean | null;
}

export interface BenchResults {
  schemaVersion: number;
  startedAt: string;
  finishedAt: string;
  durationS: number;
  command: string;
  machine: MachineFacts;
  scenariosRun: ('passthrough' | 'release' | 'memory' | 'cold-start')[];
  passthrough?: PassthroughResult;
  release?: ReleaseResult;
  memory?: MemoryResult;
  coldStart?: ColdStartResult;
  targets: TargetCheck[];
  /** Anything odd seen during the run (warnings, errors, retries), in plain words. */
  notes: string[];
}
