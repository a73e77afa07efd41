// Cold start in Kubernetes mode: a Deployment at 0 replicas behind an HTTPRoute with a ScaleToZeroPolicy, on
// a real local Kubernetes control plane (test/support/kube: etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler, kwok with loopback pod IPs), the pods served by in-process servers
// (test/support/kube/pod-servers.ts), our control plane in Kubernetes mode and the real Envoy
// (test/support/kube/gateway-stack.ts). Per round, one request is sent through Envoy and held; Envoy's wake
// call scales the Deployment to 1; kwok makes the pod Running and Ready; the pod server starts listening;
// the EndpointSlice controller lists the endpoint as ready; our control plane checks the endpoint, pushes the
// endpoints and then the release; the request reaches the pod. Then the host is scaled back to 0 through the
// admin API (POST /v1/hosts/<backend>/scale-to-zero) and the next round waits until nothing is left.
//
// Every stamp is epoch ms (performance.timeOrigin + performance.now()) in this one process, where the
// control plane, the pod servers and the benchmark's own watches all run:
//   - EndpointSlice ready: the benchmark's own watch on endpointslices delivers a slice listing the pod's
//     endpoint with conditions.ready (stamped when the watch hands over the event). A watch delivers a
//     change some time after the API server committed it; that delay is measured separately against the
//     benchmark's own writes (watchDelay) and is paid the same way by the control plane's informer.
//   - listening: pod-servers' 'listening' event.
//   - at upstream: the `http.server.request.start` diagnostics channel, which Node publishes for every
//     http.Server in the process when a request head has been parsed, filtered to the pod IP and the
//     round's path. That is the same point as the demo upstream's receivedAt in file mode; pod-servers.ts is
//     not changed.
//   - the control plane's steps: listeners on its own objects (EndpointSlice informer 'change', verifier
//     'verified', ADS 'snapshot-set' / 'response' / 'ack'), and the pod server's TCP accepts
//     (`net.server.socket` diagnostics channel) for the verifier's check and Envoy's connection.
import dc from 'node:diagnostics_channel';
import { existsSync, readFileSync } from 'node:fs';
import http, { type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { assertKubeBinaries, GATEWAY_API_CRD_DIR } from '../../test/support/kube/cluster.ts';
import { CONTROLLER_NAME, startGatewayStack, waitForGatewayPort, type GatewayStack } from '../../test/support/kube/gateway-stack.ts';
import type { PodServerInfo } from '../../test/support/kube/pod-servers.ts';
import { freePort } from '../../test/support/ports.ts';
import type { ResourceKind } from '../../snapshots/type-urls.ts';
import { buildSnapshot } from '../../snapshots/build.ts';
import { DEFAULT_GROUP } from '../../xds-server/cache/snapshot-cache.ts';
import { WAKE_LEASE_MS } from '../../xds-server/core.ts';
import { DEFAULT_VERIFIER_OPTIONS } from '../../xds-server/kubernetes/endpoint-verifier.ts';
import { RestKubeClient, type KubeObject } from '../../xds-server/kubernetes/rest.ts';
import { createLogger } from '../../xds-server/log.ts';
import { DEFAULT_PUBLISHER_OPTIONS } from '../../xds-server/publisher.ts';
import { benchWatch, epochMs, type BenchWatch } from '../lib/kube-watch.ts';
import type { KubeColdStartMilestones, KubeColdStartResult, KubeColdStartRound, WatchDelayCheck } from '../lib/model.ts';
import { track } from '../lib/stack.ts';
import { distribution, median } from '../lib/stats.ts';
import { sleep, watchForeignCpu, withTimeout } from '../lib/system.ts';

const NS = 'bench';
const APP = 'cold';
const HOSTNAME = 'cold.kube.bench';
const PATH_PREFIX = '/kube-cold/';
/** KubernetesState's batch of watch events (cluster-state.ts: `batchMs ?? 5`); the benchmark does not change it. */
const STATE_BATCH_MS = 5;
const WATCH_DELAY_SAMPLES = 20;
/** Bounds: one round's request, and the wait for the previous round's pod to be gone. */
const REQUEST_TIMEOUT_MS = 60_000;
const SETTLE_TIMEOUT_MS = 60_000;
/**
 * The filter sends a backend's wake call at most once per lease (WAKE_LEASE_MS, 1 s) and looks again on its
 * 100 ms check tick: a request held while the previous round's lease is still live waits up to ~100 ms more
 * for its wake call. Rounds start this long after the previous wake call, so each measures a fresh wake.
 */
const WAKE_SPACING_MS = WAKE_LEASE_MS + 150;
const RECOMPUTE_SAMPLES = 20;
/**
 * A round during which processes outside the benchmark (other sessions' test runs on a shared machine) used
 * more than this share of a core is measured again, at most `rounds` extra times, and kept under `discarded`.
 * The window is one round (~50-200 ms) and /proc counts CPU in 10 ms ticks, so the figure is coarse.
 */
const DISTURBED_PERCENT = 50;

/** Fails early (before other scenarios spend minutes) when the local Kubernetes binaries are missing. */
export function assertKubeColdStartRunnable(): void {
  assertKubeBinaries();
  if (!existsSync(GATEWAY_API_CRD_DIR)) throw new Error(`no Gateway API CRDs in ${GATEWAY_API_CRD_DIR}: run \`bash scripts/k8s-tools.sh\` first`);
}

function objects(port: number): KubeObject[] {
  return [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } },
    { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GatewayClass', metadata: { name: 'stz-bench' }, spec: { controllerName: CONTROLLER_NAME } },
    {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'Gateway',
      metadata: { name: 'gw', namespace: NS },
      spec: { gatewayClassName: 'stz-bench', listeners: [{ name: 'http', protocol: 'HTTP', port, allowedRoutes: { namespaces: { from: 'Same' } } }] },
    },
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: APP, namespace: NS },
      spec: {
        replicas: 0,
        selector: { matchLabels: { app: APP } },
        template: { metadata: { labels: { app: APP } }, spec: { containers: [{ name: 'app', image: 'example.invalid/app:1', ports: [{ containerPort: 8080 }] }] } },
      },
    },
    { apiVersion: 'v1', kind: 'Service', metadata: { name: APP, namespace: NS }, spec: { selector: { app: APP }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] } },
    {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: { name: APP, namespace: NS },
      spec: { parentRefs: [{ name: 'gw' }], hostnames: [HOSTNAME], rules: [{ backendRefs: [{ name: APP, port: 80 }] }] },
    },
    {
      apiVersion: 'scaletozero.dev/v1alpha1',
      kind: 'ScaleToZeroPolicy',
      metadata: { name: APP, namespace: NS },
      spec: {
        targetRefs: [{ group: '', kind: 'Service', name: APP }],
        scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: APP },
        holdTimeoutMs: 30_000,
        wakeTimeoutMs: 25_000,
        // Never scaled down by the idle detector: the benchmark scales it down through the admin API.
        idleAfterMs: 0,
      },
    },
  ];
}

/** Starts the stack on a pod range no other local cluster holds (each cluster claims its 127.X). */
async function startStack(filterWasmPath: string, log: ReturnType<typeof createLogger>, tuning: KubeTuning): Promise<GatewayStack> {
  const controlPlane = {
    filterWasmPath,
    log,
    ...(tuning.stateBatchMs !== undefined ? { state: { batchMs: tuning.stateBatchMs } } : {}),
    ...(tuning.publisherUrgentQuietMs !== undefined ? { publisher: { urgentQuietMs: tuning.publisherUrgentQuietMs } } : {}),
  };
  for (let x = 231; x <= 250; x++) {
    try {
      return await startGatewayStack({ podCidr: `127.${x}.0.1/16`, controlPlane });
    } catch (err) {
      if (/is in use by another local cluster/.test((err as Error).message)) continue;
      throw err;
    }
  }
  throw new Error('no free pod range 127.231-250.0.0/16 for the benchmark cluster');
}

interface Reply {
  status: number;
  firstByteAt: number;
  body: string;
}

function request(port: number, pathName: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: pathName, headers: { host: HOSTNAME }, agent: false, timeout: REQUEST_TIMEOUT_MS }, (res) => {
      let firstByteAt = 0;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => {
        firstByteAt ||= epochMs();
        chunks.push(c);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, firstByteAt: firstByteAt || epochMs(), body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`)));
    req.on('error', reject);
  });
}

const isReadyPod = (p: KubeObject): boolean => {
  const status = p.status as { phase?: string; podIP?: string; conditions?: { type: string; status: string }[] } | undefined;
  return status?.phase === 'Running' && !!status.podIP && (status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
};

interface SliceEndpoint {
  addresses?: string[];
  conditions?: { ready?: boolean };
  targetRef?: { kind?: string; name?: string };
}
const sliceEndpoints = (slice: KubeObject): SliceEndpoint[] =>
  slice.metadata.labels?.['kubernetes.io/service-name'] === APP && slice.metadata.namespace === NS ? ((slice.endpoints as SliceEndpoint[] | null | undefined) ?? []) : [];

/** Measures the benchmark's own watch against its own writes (PATCH of a ConfigMap annotation). */
async function measureWatchDelay(client: RestKubeClient): Promise<WatchDelayCheck> {
  await client.request('POST', `/api/v1/namespaces/${NS}/configmaps`, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'watch-probe', namespace: NS }, data: {} });
  const seen = new Map<string, number>();
  const waiters = new Map<string, () => void>();
  const watch = benchWatch(client, `/api/v1/namespaces/${NS}/configmaps`, (_type, obj, at) => {
    const seq = obj.metadata.annotations?.['bench.stz/seq'];
    if (obj.metadata.name !== 'watch-probe' || seq === undefined || seen.has(seq)) return;
    seen.set(seq, at);
    waiters.get(seq)?.();
  });
  const sent: number[] = [];
  const answered: number[] = [];
  try {
    await withTimeout(watch.synced, 10_000, 'the ConfigMap watch did not list within 10 s');
    for (let i = 0; i < WATCH_DELAY_SAMPLES; i++) {
      const seq = `${Date.now()}-${i}`;
      const delivered = new Promise<void>((resolve) => waiters.set(seq, resolve));
      const t0 = epochMs();
      await client.request('PATCH', `/api/v1/namespaces/${NS}/configmaps/watch-probe`, { metadata: { annotations: { 'bench.stz/seq': seq } } }, 'application/merge-patch+json');
      const t1 = epochMs();
      await withTimeout(delivered, 10_000, 'the ConfigMap watch did not deliver a change within 10 s');
      const at = seen.get(seq)!;
      sent.push(at - t0);
      answered.push(at - t1);
      await sleep(20);
    }
  } finally {
    watch.close();
  }
  return { samples: sent.length, sentToEventMs: distribution(sent), answeredToEventMs: distribution(answered) };
}

type StepPoint = keyof KubeColdStartMilestones | 'requestSent';
/** The path of one cold start, in order; each step is the time between two neighbours. */
const CHAIN: StepPoint[] = [
  'requestSent',
  'wakeCall',
  'scaledUp',
  'podCreated',
  'podScheduled',
  'podReady',
  'sliceReady',
  'cpSliceReady',
  'probeAccepted',
  'verified',
  'stateReleased',
  'endpointsPublished',
  'endpointsAcked',
  'releasePublished',
  'releaseSent',
  'atUpstream',
  'firstByte',
];
/** Steps off the main chain: they run beside it. */
const SIDE_STEPS: [StepPoint, StepPoint][] = [
  ['podReady', 'listening'],
  ['listening', 'probeAccepted'],
  ['releaseSent', 'releaseAcked'],
  ['releaseSent', 'envoyConnected'],
  ['envoyConnected', 'atUpstream'],
];

/** Experiments only: control-plane options that are not the product's defaults (the results say so). */
export interface KubeTuning {
  stateBatchMs?: number;
  publisherUrgentQuietMs?: number;
}

/** The Kubernetes version the test binaries were built from (they report v0.0.0-master when built with `go build`). */
function kubernetesVersionOf(reported: string): string {
  if (!reported.startsWith('v0.0.0')) return reported;
  try {
    const mod = readFileSync(new URL('../../tools/k8s/go.mod', import.meta.url), 'utf8');
    const v = /k8s\.io\/kubernetes (v[\d.]+)/.exec(mod)?.[1];
    return v ? `${v} (tools/k8s/go.mod; the binaries report ${reported})` : reported;
  } catch {
    return reported;
  }
}

export async function runKubeColdStart(o: { filterWasmPath: string; rounds: number; warmupRounds?: number; tuning?: KubeTuning; log: (line: string) => void; notes: string[] }): Promise<KubeColdStartResult> {
  assertKubeColdStartRunnable();
  const warmupRounds = o.warmupRounds ?? 1;
  const tuning = o.tuning ?? {};
  let warnings: string[] = [];
  const cpLog = createLogger({
    level: 'warn',
    module: 'control-plane',
    write: (line) => {
      if (warnings.length < 50) warnings.push(line);
    },
  });

  // --- stamps, filled by listeners; read per round ---
  let podPrefix = '';
  const wakeCalls: number[] = [];
  let lastWakeCallAt = 0;
  const arrivals = new Map<string, { at: number; socket: Socket; podIP: string }>();
  const accepts: { at: number; socket: Socket; ip: string }[] = [];
  // The benchmark process also runs the control plane and the pod servers: how late its event loop ran
  // between the slice turning ready and the request at the pod (reset at the one, read at the other).
  const loopDelay = monitorEventLoopDelay({ resolution: 1 });
  loopDelay.enable();
  const loopDelayMaxMs = new Map<string, number>();
  const onRequestStart = (message: unknown): void => {
    const at = epochMs();
    const { request: req, socket } = message as { request: IncomingMessage; socket: Socket };
    const url = req.url ?? '';
    if (url.startsWith('/v1/wake/')) {
      wakeCalls.push(at);
      lastWakeCallAt = at;
    } else if (podPrefix && socket.localAddress?.startsWith(podPrefix) && url.startsWith(PATH_PREFIX) && !arrivals.has(url)) {
      arrivals.set(url, { at, socket, podIP: socket.localAddress });
      loopDelayMaxMs.set(url, loopDelay.max / 1e6);
    }
  };
  const onSocket = (message: unknown): void => {
    const at = epochMs();
    const { socket } = message as { socket: Socket };
    if (podPrefix && socket.localAddress?.startsWith(podPrefix)) accepts.push({ at, socket, ip: socket.localAddress });
  };
  // The control plane's /scale write (undici, which its REST client uses, publishes these channels).
  const scaleWrites: { at: number }[] = [];
  const workloadCalls: { at: number; call: string }[] = [];
  const onUndiciHeaders = (message: unknown): void => {
    const at = epochMs();
    const { request: req } = message as { request: { method?: string; path?: string } };
    if (!req.path?.includes(`/namespaces/${NS}/deployments/`)) return;
    workloadCalls.push({ at, call: `${req.method} ${req.path.replace(/\?.*$/, '').replace(/^.*\/deployments\//, '…/deployments/')}` });
    if (req.method === 'PATCH' && req.path.includes('/scale')) scaleWrites.push({ at });
  };
  dc.subscribe('http.server.request.start', onRequestStart);
  dc.subscribe('net.server.socket', onSocket);
  dc.subscribe('undici:request:headers', onUndiciHeaders);

  let stack: GatewayStack | undefined;
  const watches: BenchWatch[] = [];
  try {
    o.log('   starting the local Kubernetes control plane, pod servers, control plane (Kubernetes mode) and Envoy');
    stack = await startStack(o.filterWasmPath, cpLog, tuning);
    const s = stack;
    track(s.envoy.pid, s.envoy.exited);
    const podCidr = s.cluster.podCidr;
    podPrefix = `127.${podCidr.split('.')[1]}.`;
    const client = new RestKubeClient(s.cluster.kubeConfig(), 'stz-bench');
    const kubernetesVersion = kubernetesVersionOf(((await client.get('/version')) as unknown as { gitVersion?: string }).gitVersion ?? 'unknown');

    // --- the benchmark's own watches ---
    const podCreated = new Map<string, number>();
    const podScheduled = new Map<string, number>();
    const podReady = new Map<string, number>();
    const livePods = new Set<string>();
    watches.push(
      benchWatch(
        client,
        `/api/v1/namespaces/${NS}/pods`,
        (type, pod, at) => {
          const name = pod.metadata.name;
          if (type === 'DELETED') {
            livePods.delete(name);
            return;
          }
          livePods.add(name);
          if (!podCreated.has(name)) podCreated.set(name, at);
          if ((pod.spec as { nodeName?: string } | undefined)?.nodeName && !podScheduled.has(name)) podScheduled.set(name, at);
          if (isReadyPod(pod) && !podReady.has(name)) podReady.set(name, at);
        },
        () => livePods.clear(),
      ),
    );
    const sliceReady = new Map<string, number>();
    const slicesNow = new Map<string, number>();
    watches.push(
      benchWatch(
        client,
        `/apis/discovery.k8s.io/v1/namespaces/${NS}/endpointslices`,
        (type, slice, at) => {
          const endpoints = type === 'DELETED' ? [] : sliceEndpoints(slice);
          slicesNow.set(slice.metadata.name, endpoints.length);
          for (const e of endpoints) {
            const pod = e.targetRef?.kind === 'Pod' ? e.targetRef.name : undefined;
            if (pod && e.conditions?.ready === true && !sliceReady.has(pod)) {
              sliceReady.set(pod, at);
              loopDelay.reset();
            }
          }
        },
        () => slicesNow.clear(),
      ),
    );
    await withTimeout(Promise.all(watches.map((w) => w.synced)), 20_000, 'the benchmark watches did not list within 20 s');

    // --- listeners on the control plane and the pod servers ---
    const cpSliceReady = new Map<string, number>();
    s.cp.state.informers.endpointSlices.on('change', () => {
      const at = epochMs();
      for (const slice of s.cp.state.informers.endpointSlices.list()) {
        for (const e of sliceEndpoints(slice)) {
          const pod = e.targetRef?.kind === 'Pod' ? e.targetRef.name : undefined;
          if (pod && e.conditions?.ready === true && !cpSliceReady.has(pod)) cpSliceReady.set(pod, at);
        }
      }
    });
    const releasedChanges: { at: number }[] = [];
    s.cp.state.on('changed', (urgent) => {
      if (urgent) releasedChanges.push({ at: epochMs() });
    });
    const verified: { at: number; address: string }[] = [];
    s.cp.state.verifier.on('verified', (_backend, endpoint) => verified.push({ at: epochMs(), address: endpoint.address }));
    const snapshots: { at: number; versions: Readonly<Record<ResourceKind, string>> }[] = [];
    s.cp.events.on('snapshot-set', ({ versions }) => snapshots.push({ at: epochMs(), versions }));
    const responses: { at: number; kind: ResourceKind; version: string }[] = [];
    s.cp.events.on('response', ({ kind, version }) => responses.push({ at: epochMs(), kind, version }));
    const acks: { at: number; kind: ResourceKind; version: string }[] = [];
    s.cp.events.on('ack', ({ kind, version }) => acks.push({ at: epochMs(), kind, version }));
    const listening = new Map<string, number>();
    s.pods.events.on('listening', (info: PodServerInfo) => {
      if (!listening.has(info.pod)) listening.set(info.pod, epochMs());
    });

    // --- the objects ---
    const port = await freePort();
    await s.apply(...objects(port));
    await waitForGatewayPort(s.envoy, port);
    const backend = await withTimeout(
      (async () => {
        for (;;) {
          const found = s.cp.state.scalable().find((v) => v.backend.scaleToZero.workload.kind === 'kubernetes');
          if (found) return found.backend.name;
          await sleep(20);
        }
      })(),
      20_000,
      'the control plane did not list the benchmark backend within 20 s',
    );
    o.log(`   cluster ${kubernetesVersion}, pods on ${podCidr}, gateway port ${port}, backend ${backend}`);

    // Start-up warnings (e.g. 429 "storage is (re)initializing" while the CRDs settle) are counted, not kept.
    const setupWarnings = warnings.length;
    warnings = [];

    const watchDelay = await measureWatchDelay(client);
    // One translation of the whole cluster (what every batch of watch events and every verified endpoint
    // runs), timed through the state's public resync() while nothing else happens.
    const recompute: number[] = [];
    for (let i = 0; i < RECOMPUTE_SAMPLES; i++) {
      const t = epochMs();
      s.cp.state.resync();
      recompute.push(epochMs() - t);
      await sleep(5);
    }
    // Building the xDS snapshot from the desired state (what each publish runs before it sets the cache).
    const build: number[] = [];
    for (let i = 0; i < RECOMPUTE_SAMPLES; i++) {
      const t = epochMs();
      buildSnapshot(s.cp.state.desired());
      build.push(epochMs() - t);
      await sleep(5);
    }
    o.log(`   watch delivery vs. own writes: PATCH sent → event p50 ${watchDelay.sentToEventMs.p50.toFixed(1)} ms, PATCH answered → event p50 ${watchDelay.answeredToEventMs.p50.toFixed(1)} ms`);

    const hostJson = async (): Promise<{ state: string; scaling: { phase: string } | null }> => (await (await s.adminFetch(`/v1/hosts/${backend}`)).json()) as { state: string; scaling: { phase: string } | null };
    /** Scaled to 0 and nothing left: no pod, no endpoint, no pod server, no verified endpoint, host held. */
    const scaleToZeroAndSettle = async (): Promise<void> => {
      const host = await hostJson();
      if (host.scaling?.phase !== 'scaled_to_zero') {
        const res = await s.adminFetch(`/v1/hosts/${backend}/scale-to-zero`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ reason: 'bench round' }),
          signal: AbortSignal.timeout(SETTLE_TIMEOUT_MS),
        });
        if (!res.ok) throw new Error(`scale-to-zero answered ${res.status}: ${await res.text()}`);
      }
      const deadline = Date.now() + SETTLE_TIMEOUT_MS;
      for (;;) {
        const h = await hostJson();
        const leftSlices = [...slicesNow.values()].reduce((a, b) => a + b, 0);
        const done = h.state === 'scaled_to_zero' && h.scaling?.phase === 'scaled_to_zero' && livePods.size === 0 && leftSlices === 0 && s.pods.list(NS).length === 0 && s.cp.state.verifier.verified(backend).length === 0;
        if (done) break;
        if (Date.now() > deadline) {
          throw new Error(`not settled at 0 within ${SETTLE_TIMEOUT_MS} ms: host ${h.state}/${h.scaling?.phase}, pods ${[...livePods].join(',') || 'none'}, slice endpoints ${leftSlices}, pod servers ${s.pods.list(NS).length}`);
        }
        await sleep(20);
      }
      // Let the controllers' trailing status writes (ReplicaSet, Deployment) pass before the next round.
      await sleep(300);
    };

    const rounds: KubeColdStartRound[] = [];
    const discarded: KubeColdStartResult['discarded'] = [];
    // Bounded: warm-up, the rounds, and at most as many again measured anew after a disturbance.
    for (let i = 0; rounds.length < o.rounds && i < warmupRounds + 2 * o.rounds; i++) {
      await scaleToZeroAndSettle();
      const spacing = lastWakeCallAt + WAKE_SPACING_MS - epochMs();
      if (spacing > 0) await sleep(spacing);
      const baseline = s.cp.cache.getSnapshot(DEFAULT_GROUP)?.versions;
      const url = `${PATH_PREFIX}${i}`;
      const foreign = await watchForeignCpu();
      const sentAt = epochMs();
      const reply = await request(port, url);
      const other = await foreign();
      const label = i < warmupRounds ? `warm-up ${i + 1}` : `round ${rounds.length + 1}`;
      if (reply.status !== 200) {
        // What everything looked like when the round failed, so the failure can be told apart from noise.
        const deployment = await client.get(`/apis/apps/v1/namespaces/${NS}/deployments/${APP}`).catch((err: Error) => ({ error: err.message }));
        const dump = {
          host: await hostJson().catch((err: Error) => err.message),
          deployment: { spec: (deployment as { spec?: { replicas?: number } }).spec?.replicas, status: (deployment as { status?: unknown }).status },
          pods: [...livePods].map((name) => ({ name, created: podCreated.get(name), ready: podReady.get(name), sliceReady: sliceReady.get(name), listening: listening.get(name) })),
          sliceEndpoints: Object.fromEntries(slicesNow),
          podServers: s.pods.list(NS).map((x) => `${x.pod}@${x.ip}:${x.port}`),
          verifier: s.cp.state.verifier.describe(backend),
          sentAt,
          wakeCalls: wakeCalls.map((x) => x - sentAt),
          workloadCalls: workloadCalls.map((x) => `${x.call} +${(x.at - sentAt).toFixed(1)}`),
          warnings: warnings.slice(-10),
        };
        throw new Error(`kube cold start ${label}: status ${reply.status}: ${reply.body.slice(0, 300)}\nstate: ${JSON.stringify(dump, null, 1)}`);
      }
      const body = JSON.parse(reply.body) as { pod: string; podIP: string };
      const pod = body.pod;
      const arrival = arrivals.get(url);
      const after = <T extends { at: number }>(list: T[], from: number | null | undefined, pred: (x: T) => boolean = () => true): T | undefined =>
        from === null || from === undefined ? undefined : list.find((x) => x.at >= from && pred(x));
      const v = after(verified, sentAt, (x) => x.address === body.podIP);
      const endpointsSnap = after(snapshots, v?.at, (x) => x.versions.endpoint !== baseline?.endpoint);
      const releaseSnap = after(snapshots, v?.at, (x) => x.versions.extensionConfig !== baseline?.extensionConfig);
      const probe = accepts.find((x) => x.at >= sentAt && x.ip === body.podIP && x.socket !== arrival?.socket);
      const envoyConn = accepts.find((x) => x.at >= sentAt && x.socket === arrival?.socket);
      const m: KubeColdStartMilestones = {
        wakeCall: after(wakeCalls.map((at) => ({ at })), sentAt)?.at ?? null,
        scaledUp: after(scaleWrites, sentAt)?.at ?? null,
        podCreated: podCreated.get(pod) ?? null,
        podScheduled: podScheduled.get(pod) ?? null,
        podReady: podReady.get(pod) ?? null,
        listening: listening.get(pod) ?? null,
        sliceReady: sliceReady.get(pod) ?? null,
        cpSliceReady: cpSliceReady.get(pod) ?? null,
        probeAccepted: probe?.at ?? null,
        verified: v?.at ?? null,
        stateReleased: after(releasedChanges, v?.at)?.at ?? null,
        endpointsPublished: endpointsSnap?.at ?? null,
        endpointsAcked: after(acks, endpointsSnap?.at, (x) => x.kind === 'endpoint' && x.version === endpointsSnap?.versions.endpoint)?.at ?? null,
        releasePublished: releaseSnap?.at ?? null,
        releaseSent: after(responses, releaseSnap?.at, (x) => x.kind === 'extensionConfig' && x.version === releaseSnap?.versions.extensionConfig)?.at ?? null,
        releaseAcked: after(acks, releaseSnap?.at, (x) => x.kind === 'extensionConfig' && x.version === releaseSnap?.versions.extensionConfig)?.at ?? null,
        envoyConnected: envoyConn?.at ?? null,
        atUpstream: arrival?.at ?? null,
        firstByte: reply.firstByteAt,
      };
      const rel = Object.fromEntries(Object.entries(m).map(([k, at]) => [k, at === null ? null : at - sentAt])) as unknown as KubeColdStartMilestones;
      const diff = (a: number | null, b: number | null): number | null => (a === null || b === null ? null : b - a);
      const round: KubeColdStartRound = {
        round: rounds.length + 1,
        pod,
        status: reply.status,
        sliceReadyToAtUpstreamMs: diff(m.sliceReady, m.atUpstream),
        cpSliceReadyToAtUpstreamMs: diff(m.cpSliceReady, m.atUpstream),
        loopDelayMaxMs: loopDelayMaxMs.get(url) ?? null,
        wakeApiCalls: workloadCalls.filter((c) => m.wakeCall !== null && c.at >= m.wakeCall && (m.scaledUp === null || c.at <= m.scaledUp)).map((c) => ({ call: c.call, answeredMs: c.at - m.wakeCall! })),
        listeningToAtUpstreamMs: diff(m.listening, m.atUpstream),
        sliceReadyToFirstByteMs: diff(m.sliceReady, m.firstByte),
        requestToFirstByteMs: reply.firstByteAt - sentAt,
        otherCpuPercent: other.percent,
        milestones: rel,
      };
      const f = (x: number | null): string => (x === null ? '–' : x.toFixed(1));
      o.log(
        `   ${label}: slice ready → at upstream ${f(round.sliceReadyToAtUpstreamMs)} ms, listening → at upstream ${f(round.listeningToAtUpstreamMs)} ms, request → first byte ${round.requestToFirstByteMs.toFixed(0)} ms` +
          ` (pod ${pod}; slice ready at +${f(rel.sliceReady)}, verified +${f(rel.verified)}, endpoints ACK +${f(rel.endpointsAcked)}, release sent +${f(rel.releaseSent)}, at upstream +${f(rel.atUpstream)}; other processes ${other.percent}% CPU)`,
      );
      const extraLeft = i - warmupRounds - rounds.length < o.rounds;
      if (i < warmupRounds) {
        // Not counted.
      } else if (other.percent > DISTURBED_PERCENT && extraLeft) {
        const reason = `other processes used ${other.percent}% CPU during the round (${other.top.map((t) => `${t.comm} ${t.percent}%`).join(', ')})`;
        discarded.push({ result: round, reason });
        o.log(`   ${label} measured again: ${reason}`);
      } else {
        if (other.percent > DISTURBED_PERCENT) o.notes.push(`kube-cold-start: round ${round.round} kept although other processes used ${other.percent}% CPU (no extra rounds left)`);
        rounds.push(round);
      }
      // Keep the per-round lists short.
      wakeCalls.length = 0;
      scaleWrites.length = 0;
      workloadCalls.length = 0;
      accepts.length = 0;
      verified.length = 0;
      releasedChanges.length = 0;
      snapshots.length = 0;
      responses.length = 0;
      acks.length = 0;
    }
    await scaleToZeroAndSettle();

    const present = (key: keyof KubeColdStartRound): number[] => rounds.map((r) => r[key]).filter((x): x is number => typeof x === 'number');
    const must = (key: keyof KubeColdStartRound): number[] => {
      const values = present(key);
      if (values.length === 0) throw new Error(`kube cold start: ${String(key)} was never observed`);
      if (values.length < rounds.length) o.notes.push(`kube-cold-start: ${String(key)} observed in ${values.length} of ${rounds.length} rounds only`);
      return values;
    };
    // 'requestSent' is 0: every milestone is already relative to it.
    const at = (r: KubeColdStartRound, k: StepPoint): number | null => (k === 'requestSent' ? 0 : r.milestones[k]);
    const stepOf = (from: StepPoint, to: StepPoint): KubeColdStartResult['steps'][number] | undefined => {
      const d = rounds.map((r) => (at(r, from) === null || at(r, to) === null ? null : at(r, to)! - at(r, from)!)).filter((x): x is number => x !== null);
      return d.length === 0 ? undefined : { from, to, medianMs: median(d), maxMs: Math.max(...d), rounds: d.length };
    };
    const steps = [...CHAIN.slice(1).map((to, k) => stepOf(CHAIN[k]!, to)), ...SIDE_STEPS.map(([a, b]) => stepOf(a, b))].filter((x) => x !== undefined);
    return {
      settings: {
        envoyConcurrency: 2,
        podCidr,
        warmupRounds,
        kubernetesVersion,
        verifierFirstIntervalMs: DEFAULT_VERIFIER_OPTIONS.firstIntervalMs,
        stateBatchMs: tuning.stateBatchMs ?? STATE_BATCH_MS,
        publisherUrgentQuietMs: tuning.publisherUrgentQuietMs ?? DEFAULT_PUBLISHER_OPTIONS.urgentQuietMs,
        productDefaults: tuning.stateBatchMs === undefined && tuning.publisherUrgentQuietMs === undefined,
        wakeSpacingMs: WAKE_SPACING_MS,
      },
      watchDelay,
      recomputeMs: distribution(recompute),
      snapshotBuildMs: distribution(build),
      rounds,
      sliceReadyToAtUpstreamMs: distribution(must('sliceReadyToAtUpstreamMs')),
      cpSliceReadyToAtUpstreamMs: distribution(must('cpSliceReadyToAtUpstreamMs')),
      listeningToAtUpstreamMs: distribution(must('listeningToAtUpstreamMs')),
      sliceReadyToFirstByteMs: distribution(must('sliceReadyToFirstByteMs')),
      requestToFirstByteMs: distribution(must('requestToFirstByteMs')),
      steps,
      discarded,
      controlPlaneWarnings: warnings.slice(0, 20),
      controlPlaneSetupWarnings: setupWarnings,
    };
  } finally {
    dc.unsubscribe('http.server.request.start', onRequestStart);
    dc.unsubscribe('net.server.socket', onSocket);
    dc.unsubscribe('undici:request:headers', onUndiciHeaders);
    loopDelay.disable();
    for (const w of watches) w.close();
    await stack?.close();
  }
}
