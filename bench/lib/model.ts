// The results' data model: what bench/results/latest.json holds. Plain data only; the Markdown renderer
// (render-markdown.ts) reads it and adds nothing that is not here, so the JSON is the record.
import type { Distribution } from './stats.ts';
import type { MachineFacts } from './system.ts';

// 2: adds kubeColdStart (scenario kube-cold-start) and coldStart.rounds[].readyToAtUpstreamMs. A version-1
// file is a subset of version 2 and still renders.
export const SCHEMA_VERSION = 2;
export const READABLE_SCHEMA_VERSIONS: readonly number[] = [1, 2];

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
  /**
   * readyAt → the held request at the upstream (its receivedAt, stamped when the request head is parsed,
   * read from the reply body). Both stamps are taken in the upstream process. Absent in schema 1.
   */
  readyToAtUpstreamMs?: number | null;
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
  /** Absent in schema 1. */
  readyToAtUpstreamMs?: Distribution | null;
}

/**
 * What happened in one Kubernetes cold start, each in ms after the request was sent (null = not seen).
 * Every stamp is taken in the benchmark process (control plane, pod servers and watches all run there)
 * with performance.timeOrigin + performance.now().
 */
export interface KubeColdStartMilestones {
  /** Envoy's wake call reached the control plane's admin server (request head parsed). */
  wakeCall: number | null;
  /** The API server answered the control plane's PATCH of the Deployment's /scale (undici diagnostics channel). */
  scaledUp: number | null;
  /** The benchmark's pod watch delivered the new pod (ADDED). */
  podCreated: number | null;
  /** ... the pod with a node assigned. */
  podScheduled: number | null;
  /** ... the pod Running and Ready with its pod IP (kwok wrote the status). */
  podReady: number | null;
  /** The pod server (test/support/kube/pod-servers.ts) emitted 'listening' for the pod. */
  listening: number | null;
  /** The benchmark's EndpointSlice watch delivered a slice that lists the pod's endpoint as ready. */
  sliceReady: number | null;
  /** The control plane's own EndpointSlice informer had that slice in its cache. */
  cpSliceReady: number | null;
  /** The pod server accepted the verifier's TCP check (net.server.socket diagnostics channel). */
  probeAccepted: number | null;
  /** The control plane's endpoint verifier emitted 'verified' for the endpoint. */
  verified: number | null;
  /** The control plane's state emitted its urgent 'changed' (the backend is no longer held): a publish is scheduled. */
  stateReleased: number | null;
  /** The snapshot with the new endpoints (first phase of the two-phase publish) was set in the cache. */
  endpointsPublished: number | null;
  /** Envoy ACKed that EDS version. */
  endpointsAcked: number | null;
  /** The snapshot with the release (the filter's ECDS config no longer holding the backend) was set. */
  releasePublished: number | null;
  /** The ECDS response with the release left the control plane. */
  releaseSent: number | null;
  /** Envoy ACKed that ECDS version. */
  releaseAcked: number | null;
  /** The pod server accepted the TCP connection that then carried the held request (Envoy's). */
  envoyConnected: number | null;
  /** The held request reached the pod server (http.server.request.start diagnostics channel). */
  atUpstream: number | null;
  /** First response byte at the client. */
  firstByte: number | null;
}

export interface KubeColdStartRound {
  round: number;
  pod: string;
  status: number;
  /** EndpointSlice lists the endpoint as ready (benchmark's watch) → held request at the pod server. */
  sliceReadyToAtUpstreamMs: number | null;
  /** The control plane's own informer has the ready slice → held request at the pod server. */
  cpSliceReadyToAtUpstreamMs: number | null;
  /**
   * Largest event-loop delay (perf_hooks.monitorEventLoopDelay, 1 ms resolution) of the benchmark process,
   * which also runs the control plane and the pod servers, between slice ready and the request at the pod.
   */
  loopDelayMaxMs: number | null;
  /** The control plane's API calls on the Deployment from the wake call to the /scale write's answer, each answered this long after the wake call. */
  wakeApiCalls: { call: string; answeredMs: number }[];
  /** Pod server listening → held request at the pod server (the analogue of file mode's readyAt). */
  listeningToAtUpstreamMs: number | null;
  /** EndpointSlice ready → first response byte at the client. */
  sliceReadyToFirstByteMs: number | null;
  /** Request sent → first response byte at the client: the whole cold start as the caller sees it. */
  requestToFirstByteMs: number;
  /** CPU used by processes outside the benchmark's process tree during the round, % of one core (coarse: 10 ms ticks). */
  otherCpuPercent: number;
  milestones: KubeColdStartMilestones;
}

/** Stamps of the benchmark's own watch against its own writes, to show what a watch's delivery costs. */
export interface WatchDelayCheck {
  samples: number;
  /** PATCH sent → the watch delivered that change, ms (the commit happens somewhere in between). */
  sentToEventMs: Distribution;
  /** PATCH answered → the watch delivered that change, ms (negative: the event came first). */
  answeredToEventMs: Distribution;
}

export interface KubeColdStartResult {
  settings: {
    envoyConcurrency: number;
    podCidr: string;
    warmupRounds: number;
    /** Kubernetes version of the local API server. */
    kubernetesVersion: string;
    /** Publisher and state options in effect (defaults of the product unless stated). */
    verifierFirstIntervalMs: number;
    stateBatchMs: number;
    publisherUrgentQuietMs: number;
    /** False when an experiment changed stateBatchMs or publisherUrgentQuietMs from the product's defaults. */
    productDefaults: boolean;
    /** Each round's request is sent at least this long after the previous wake call (the filter's wake lease + margin). */
    wakeSpacingMs: number;
  };
  watchDelay: WatchDelayCheck;
  /** One full translation in the control plane (KubernetesState.resync(), synchronous), timed while idle, ms. */
  recomputeMs: Distribution;
  /** buildSnapshot(state.desired()) once, timed while idle, ms (each publish runs it). */
  snapshotBuildMs: Distribution;
  rounds: KubeColdStartRound[];
  sliceReadyToAtUpstreamMs: Distribution;
  cpSliceReadyToAtUpstreamMs: Distribution;
  listeningToAtUpstreamMs: Distribution;
  sliceReadyToFirstByteMs: Distribution;
  requestToFirstByteMs: Distribution;
  /** Median over rounds of each step between consecutive milestones, in path order, ms. */
  /** ('requestSent' is the request leaving the client: 0.) */
  steps: { from: keyof KubeColdStartMilestones | 'requestSent'; to: keyof KubeColdStartMilestones | 'requestSent'; medianMs: number; maxMs: number; rounds: number }[];
  /** Rounds measured again because other processes were busy during them. */
  discarded: { result: KubeColdStartRound; reason: string }[];
  /** Control-plane log lines at warn level or above during the measurement (first few). */
  controlPlaneWarnings: string[];
  /** How many such lines were logged while the stack started (e.g. CRD storage still initializing). */
  controlPlaneSetupWarnings: number;
}

export type ScenarioName = 'passthrough' | 'release' | 'memory' | 'cold-start' | 'kube-cold-start';

export type TargetLevel = 'issue' | 'goal' | 'check';

export interface TargetCheck {
  id: string;
  scenario: ScenarioName;
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
  scenariosRun: ScenarioName[];
  passthrough?: PassthroughResult;
  release?: ReleaseResult;
  memory?: MemoryResult;
  coldStart?: ColdStartResult;
  kubeColdStart?: KubeColdStartResult;
  targets: TargetCheck[];
  /** Anything odd seen during the run (warnings, errors, retries), in plain words. */
  notes: string[];
}
