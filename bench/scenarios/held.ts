// What scenarios 2 and 3 share: a gateway (control plane + Envoy, 2 workers) with two hosts, a hold
// client in its own process, and one "hold N, release, measure" round.
//
// The release moment is the control plane's decision: the 'snapshot-set' event of the wake's snapshot,
// stamped with performance.timeOrigin + performance.now() in this process. Arrival at the upstream is
// read in one of two ways, one per host:
//  - host "sleepy" → the demo upstream (upstream/server.ts) in this process. Its `receivedAt` is stamped
//    with the same expression (epochNowMs there) when the request head is parsed: same clock, same process.
//    It is single-threaded Node sharing the 2 cores, so with many requests it is also the bottleneck.
//  - host "sleepy-fast" → an Envoy answering with direct_response that returns its request start time
//    (system clock, µs) in a response header. This shows what the gateway alone does. Its clock is checked
//    against ours at start (clockCheck).
import http from 'node:http';
import type { EnvoyProcess } from '../../envoy-bootstrap/envoy.ts';
import { hostClusterName } from '../../sources/file/to-model.ts';
import type { ResourceKind } from '../../snapshots/type-urls.ts';
import { startUpstream, type ReceivedRequest, type Upstream } from '../../upstream/server.ts';
import { DEFAULT_GROUP } from '../../xds-server/cache/snapshot-cache.ts';
import type { ControlPlaneOptions } from '../../xds-server/control-plane.ts';
import { directResponseBootstrap, gatewayConfig, UPSTREAM_LISTENER, UPSTREAM_START_HEADER } from '../lib/configs.ts';
import { HoldClient } from '../lib/hold-client-driver.ts';
import type { ClockCheck, ReleaseRound, UpstreamKind } from '../lib/model.ts';
import { startGateway, startStaticEnvoy, waitServing, type Gateway } from '../lib/stack.ts';
import { round } from '../lib/stats.ts';
import { epochNowMs, sleep, waitFor, withTimeout } from '../lib/system.ts';

export const HELD_GAUGE = 'wasmcustom.scale_to_zero.held';
export const HOLD_TIMEOUT_MS = 120_000;
export const MAX_HELD_PER_WORKER = 10_000;
export const HELD_ENVOY_CONCURRENCY = 2;

const HOSTS: Record<UpstreamKind, { name: string; domain: string }> = {
  node: { name: 'sleepy', domain: 'sleepy.local' },
  envoy: { name: 'sleepy-fast', domain: 'sleepy-fast.local' },
};

export const UPSTREAM_LABELS: Record<UpstreamKind, string> = {
  node: 'demo upstream (Node, single-threaded, in the measuring process)',
  envoy: 'Envoy direct_response (fast; arrival = its START_TIME header)',
};

/** The gateway's cluster for the host in front of an upstream (sources/file/to-model.ts: hostClusterName). */
export function clusterOf(upstream: UpstreamKind): string {
  return hostClusterName(HOSTS[upstream].name);
}

export interface HeldBench {
  gateway: Gateway;
  client: HoldClient;
  clockCheck: ClockCheck;
  /** Holds `count` requests for the host in front of `upstream`, releases them, and measures; leaves the host ready. */
  holdAndRelease(id: string, count: number, upstream: UpstreamKind, hooks?: { whileHeld?: () => Promise<void>; releasing?: () => void }): Promise<RoundData>;
  close(): Promise<void>;
}

export interface RoundData {
  summary: Omit<ReleaseRound, 'round'>;
  /** Per held request that reached the upstream: decision → arrival, ms. */
  atUpstreamMs: number[];
  /** Per answered request: decision → answer at the hold client, ms. */
  answeredMs: number[];
  /** The release decision (snapshot-set), epoch ms. */
  decisionAt: number;
}

interface Stamp {
  at: number;
  versions: Readonly<Record<ResourceKind, string>>;
}

export interface HeldBenchOptions {
  controlPlane?: Partial<ControlPlaneOptions>;
  envoyLog?: Parameters<typeof startGateway>[0]['envoyLog'];
  /**
   * The Envoy upstream closes each connection after one answer, so every request the gateway sends it opens a
   * new connection: as in front of a backend that has just started, which no connection from before reaches.
   */
  oneRequestPerConnection?: boolean;
}

export async function startHeldBench(filterWasmPath: string, label: string, options: HeldBenchOptions = {}): Promise<HeldBench> {
  const { controlPlane, envoyLog } = options;
  // Arrivals are recorded through the 'request' event; the upstream's own list only must not grow without
  // bound over 10,000-request rounds.
  const nodeUpstream = await startUpstream({ id: `bench-${label}`, maxRecorded: 100 });
  let envoyUpstream: { envoy: EnvoyProcess; port: number } | undefined;
  let gateway: Gateway | undefined;
  let client: HoldClient | undefined;
  try {
    envoyUpstream = await startStaticEnvoy(directResponseBootstrap({ stampStart: true, oneRequestPerConnection: options.oneRequestPerConnection ?? false }), UPSTREAM_LISTENER, 1);
    const buffer = { holdTimeoutMs: HOLD_TIMEOUT_MS, maxHeld: MAX_HELD_PER_WORKER, retryAfterSeconds: 5 };
    gateway = await startGateway({
      config: gatewayConfig([
        { ...HOSTS.node, port: nodeUpstream.httpPort, initialState: 'ready', buffer },
        { ...HOSTS.envoy, port: envoyUpstream.port, initialState: 'ready', buffer },
      ]),
      filterWasmPath,
      concurrency: HELD_ENVOY_CONCURRENCY,
      nodeId: `bench-${label}-${process.pid}`,
      ...(controlPlane ? { controlPlane } : {}),
      ...(envoyLog ? { envoyLog } : {}),
    });
    client = HoldClient.start();
    await waitServing(gateway.port, HOSTS.node.domain);
    await waitServing(gateway.port, HOSTS.envoy.domain);
    const clockCheck = await checkClock(envoyUpstream.port);
    return makeBench(gateway, nodeUpstream, envoyUpstream, client, clockCheck);
  } catch (err) {
    await client?.close();
    await gateway?.close();
    await envoyUpstream?.envoy.stop();
    await nodeUpstream.close();
    throw err;
  }
}

function makeBench(gateway: Gateway, nodeUpstream: Upstream, envoyUpstream: { envoy: EnvoyProcess; port: number }, client: HoldClient, clockCheck: ClockCheck): HeldBench {
  const { cp, envoy, port } = gateway;
  const decisions: Stamp[] = [];
  const pushes = new Map<string, number>();
  const acks = new Map<string, number>();
  cp.events.on('snapshot-set', (e) => decisions.push({ at: epochNowMs(), versions: e.versions }));
  cp.events.on('response', (e) => {
    if (e.kind === 'extensionConfig' && !pushes.has(e.version)) pushes.set(e.version, epochNowMs());
  });
  cp.events.on('ack', (e) => {
    if (e.kind === 'extensionConfig' && !acks.has(e.version)) acks.set(e.version, epochNowMs());
  });
  // Arrivals keyed by the round's path prefix, so a straggler of one round can never count for another.
  const arrivals = new Map<string, number[]>();
  nodeUpstream.events.on('request', (r: ReceivedRequest) => {
    arrivals.get(r.path.slice(0, r.path.lastIndexOf('/') + 1))?.push(r.receivedAt);
  });

  const heldGauge = async (): Promise<number> => (await envoy.stats('scale_to_zero')).get(HELD_GAUGE) ?? 0;

  /** Marks the host scaled to zero and waits until Envoy has applied it (ACK + a moment for the workers). */
  const scaleToZero = async (host: string): Promise<void> => {
    const change = await cp.hosts.scaleToZero(host, 'bench: hold the next requests');
    if (change.snapshot) {
      const v = change.snapshot.versions;
      const settled = await cp.cache.waitUntilSettled(DEFAULT_GROUP, { route: v.route, extensionConfig: v.extensionConfig }, 10_000);
      if (!settled.settled || settled.notApplied.length > 0) throw new Error('Envoy did not ACK the scale-to-zero config within 10 s');
    }
    // The ACK comes from Envoy's main thread; workers get the new config a moment later.
    await sleep(50);
  };

  return {
    gateway,
    client,
    clockCheck,
    async holdAndRelease(id, count, upstream, hooks) {
      const host = HOSTS[upstream];
      await scaleToZero(host.name);
      const prefix = `/${id}/`;
      const got: number[] = [];
      arrivals.set(prefix, got);
      try {
        const handle = client.hold({ id, port, host: host.domain, path: prefix, count, timeoutMs: HOLD_TIMEOUT_MS + 30_000 });
        const sent = await withTimeout(handle.sent, 120_000, `${id}: the hold client did not send ${count} requests within 120 s`);
        if (sent.failed > 0) throw new Error(`${id}: ${sent.failed} of ${count} connections failed before the request was written`);
        await waitFor(`${id}: held gauge = ${count}`, async () => ((await heldGauge()) === count ? true : undefined), { timeoutMs: 60_000, intervalMs: count > 100 ? 50 : 5 });
        if (got.length > 0) throw new Error(`${id}: ${got.length} requests reached the upstream before the release`);
        await hooks?.whileHeld?.();

        const seen = decisions.length;
        const waking = cp.hosts.wake(host.name, 'bench: release');
        hooks?.releasing?.();
        const change = await waking;
        const version = change.snapshot?.versions.extensionConfig;
        const decision = decisions.slice(seen).find((d) => d.versions.extensionConfig === version);
        if (!change.changed || !decision) throw new Error(`${id}: the wake did not publish a releasing snapshot (${JSON.stringify({ changed: change.changed, error: change.error })})`);

        const done = await withTimeout(handle.done, HOLD_TIMEOUT_MS + 60_000, `${id}: the hold client did not finish`);
        const answered200 = done.statuses['200'] ?? 0;
        let arrived: number[];
        if (upstream === 'node') {
          // Every 200 went through the upstream; wait (bounded) for the last 'request' events.
          await waitFor(`${id}: ${answered200} arrivals at the upstream`, async () => (got.length >= answered200 ? true : undefined), { timeoutMs: 10_000 });
          arrived = got;
        } else {
          arrived = done.upstreamStartAt;
          if (arrived.length !== answered200) throw new Error(`${id}: ${answered200} answers but ${arrived.length} carried ${UPSTREAM_START_HEADER}`);
        }

        const atUpstreamMs = arrived.map((t) => t - decision.at);
        const answeredMs = done.answeredAt.map((t) => t - decision.at);
        const pushAt = version ? pushes.get(version) : undefined;
        const ackAt = version ? acks.get(version) : undefined;
        return {
          summary: {
            held: count,
            pushSentMs: pushAt === undefined ? null : round(pushAt - decision.at),
            ackMs: ackAt === undefined ? null : round(ackAt - decision.at),
            firstAtUpstreamMs: extreme(atUpstreamMs, Math.min),
            lastAtUpstreamMs: extreme(atUpstreamMs, Math.max),
            largestGapMs: largestGap(atUpstreamMs),
            lastAnsweredMs: extreme(answeredMs, Math.max),
            statuses: done.statuses,
            clientErrors: done.errors,
            failures: done.failures,
          },
          atUpstreamMs,
          answeredMs,
          decisionAt: decision.at,
        };
      } finally {
        arrivals.delete(prefix);
      }
    },
    async close() {
      await client.close();
      await gateway.close();
      await envoyUpstream.envoy.stop();
      await nodeUpstream.close();
    },
  };
}

/**
 * The Envoy upstream's START_TIME (system clock) is compared with this process's epochNowMs: each of a few
 * direct requests must have been started by Envoy after we sent it and before we got the answer. The
 * smallest margins say how far the two clocks can disagree (negative = they do).
 */
async function checkClock(port: number): Promise<ClockCheck> {
  let minLeadMs = Infinity;
  let minLagMs = Infinity;
  const samples = 20;
  for (let i = 0; i < samples; i++) {
    const sentAt = epochNowMs();
    const { start, answeredAt } = await new Promise<{ start: number; answeredAt: number }>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/clock-check', agent: false, timeout: 5_000 }, (res) => {
        const answeredAt = epochNowMs();
        res.resume();
        res.on('end', () => resolve({ start: Number(res.headers[UPSTREAM_START_HEADER]) * 1000, answeredAt }));
      });
      req.on('timeout', () => req.destroy(new Error('clock check: no answer in 5 s')));
      req.on('error', reject);
    });
    minLeadMs = Math.min(minLeadMs, start - sentAt);
    minLagMs = Math.min(minLagMs, answeredAt - start);
  }
  return { samples, minLeadMs: round(minLeadMs), minLagMs: round(minLagMs), consistent: minLeadMs > -0.1 && minLagMs > -0.1 };
}

/** Min or max of a sample, or null for an empty one (no request got through). */
function extreme(values: number[], pick: (...v: number[]) => number): number | null {
  return values.length === 0 ? null : round(values.reduce((acc, v) => pick(acc, v)));
}

function largestGap(values: number[]): number | null {
  if (values.length < 2) return null;
  const sorted = [...values].sort((a, b) => a - b);
  let gap = 0;
  for (let i = 1; i < sorted.length; i++) gap = Math.max(gap, sorted[i]! - sorted[i - 1]!);
  return round(gap);
}
