// 500 simulated Envoys (bench/lib/sim-envoy.ts, in the benchmark process) against one control-plane
// process serving 1,000 hosts: cold load to all-ACKed, one-host changes to all-ACKed, and a reconnect storm
// (every client drops its stream and all reconnect at once), with the control plane's RSS and CPU.
// Run for ours and, as the reference, for the go-control-plane peer with the same bytes.
import { copyFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { ResourceKind } from '../../snapshots/type-urls.ts';
import { SimEnvoy, probeDelta, type SimMode } from '../lib/sim-envoy.ts';
import { KINDS, startPeer, type Peer, type PeerName, type Versions } from '../lib/xds-peer.ts';
import { epochNowMs, readCpuSeconds, sleep, type QuietGate } from '../lib/system.ts';
import type { prepareXdsFiles } from './xds-envoy.ts';

type Files = Awaited<ReturnType<typeof prepareXdsFiles>>;

export interface XdsFleetOptions {
  /** Each control plane with each ADS variant, in this order; a delta run is skipped (and said so) where the server has no delta ADS. */
  runs: { peer: PeerName; mode: SimMode }[];
  clients: number;
  hosts: number;
  changes: number;
  files: Files;
  dir: string;
  filterWasmPath: string;
  gate: QuietGate;
  log: (line: string) => void;
}

export interface FleetPhase {
  /** Start → the last client ACKed the target versions of every type. */
  allAckedMs: number;
  /** Per client: start → that client ACKed everything (its own completion time). */
  perClientMs: number[];
  cpuSeconds: number;
  /** The benchmark process's own CPU (the simulated Envoys decode there) over the same time. */
  simCpuSeconds: number;
  rssAfterKiB: number;
}

export interface XdsFleetResult {
  peer: PeerName;
  mode: SimMode;
  clients: number;
  hosts: number;
  rssIdleKiB: number;
  cold: FleetPhase;
  /** One per change: start → all clients ACKed the new endpoints. */
  changes: FleetPhase[];
  storm: FleetPhase;
  hwmKiB: number;
  clientErrors: string[];
  foreignPercent: number;
}

export async function runXdsFleet(options: XdsFleetOptions): Promise<{ results: XdsFleetResult[]; skipped: string[] }> {
  const results: XdsFleetResult[] = [];
  const skipped: string[] = [];
  for (const run of options.runs) {
    const quiet = await options.gate.wait(`${options.clients} simulated Envoys on ${run.peer} (${run.mode})`);
    const r = await runOne(run.peer, run.mode, options);
    if (!r) {
      skipped.push(`${run.peer} answers no delta ADS (DeltaAggregatedResources: UNIMPLEMENTED), so its delta fleet run was skipped`);
      options.log(`  ${run.peer}: no delta ADS; skipped`);
      continue;
    }
    r.foreignPercent = quiet.percent;
    results.push(r);
  }
  return { results, skipped };
}

async function runOne(peerName: PeerName, mode: SimMode, o: XdsFleetOptions): Promise<XdsFleetResult | undefined> {
  const pick = (f: { ours: string; go: string }): string => (peerName === 'ours' ? f.ours : f.go);
  const dir = path.join(o.dir, `fleet-${peerName}-${mode}`);
  await mkdir(dir, { recursive: true });
  const configFile = path.join(dir, 'gateway.json');
  await copyFile(o.files.zero.ours, configFile);
  const peer = await startPeer(peerName, { configFile, stateDir: path.join(dir, 'state'), filterWasmPath: o.filterWasmPath, acks: false });
  let clients: SimEnvoy[] = [];
  const connect = (): SimEnvoy[] => {
    const fleet = Array.from({ length: o.clients }, (_, i) => new SimEnvoy(`sim-${i}`, peer.port, mode));
    for (const c of fleet) c.start();
    return fleet;
  };
  try {
    const zero = await peer.load(pick(o.files.zero));
    if (mode === 'delta' && !(await probeDelta(peer.port))) return undefined;
    clients = connect();
    await allAcked(clients, zero, 0, 120_000, KINDS.filter((k) => k !== 'endpoint'));
    await sleep(500);
    const rssIdleKiB = await peer.rssKiB();
    o.log(`  ${peerName} ${mode}: ${o.clients} simulated Envoys connected (0 hosts); RSS ${(rssIdleKiB / 1024).toFixed(0)} MiB`);

    const cold = await phase(peer, clients, async () => peer.load(pick(o.files.base.get(o.hosts)!)), KINDS);
    o.log(`  ${peerName} ${mode}: cold load of ${o.hosts} hosts to ${o.clients} clients all ACKed in ${cold.allAckedMs.toFixed(0)} ms`);

    const changes: FleetPhase[] = [];
    for (let i = 0; i < o.changes; i++) {
      await sleep(200 + Math.random() * 50);
      const file = i % 2 === 0 ? pick(o.files.changed) : pick(o.files.base.get(o.hosts)!);
      changes.push(await phase(peer, clients, async () => peer.load(file), ['endpoint']));
    }
    const sorted = changes.map((c) => c.allAckedMs).sort((a, b) => a - b);
    o.log(`  ${peerName} ${mode}: one-host change to all ${o.clients} ACKed: p50 ${sorted[Math.floor(sorted.length / 2)]!.toFixed(0)} ms, max ${sorted.at(-1)!.toFixed(0)} ms`);

    // The storm: every stream drops; all clients reconnect at once.
    const target = await peer.load(pick(o.files.base.get(o.hosts)!));
    for (const c of clients) c.close();
    await sleep(1_000);
    const storm = await phase(peer, [], async () => {
      clients = connect();
      return target;
    }, KINDS, () => clients);
    o.log(`  ${peerName} ${mode}: reconnect storm of ${o.clients} to all ACKed in ${storm.allAckedMs.toFixed(0)} ms`);

    const clientErrors = [...new Set(clients.map((c) => c.error).filter((e): e is string => e !== undefined))].slice(0, 5);
    return { peer: peerName, mode, clients: o.clients, hosts: o.hosts, rssIdleKiB, cold, changes, storm, hwmKiB: await peer.hwmKiB(), clientErrors, foreignPercent: 0 };
  } finally {
    for (const c of clients) c.close();
    await peer.stop();
  }
}

async function phase(peer: Peer, fleet: SimEnvoy[], act: () => Promise<Versions>, kinds: readonly ResourceKind[], current: () => SimEnvoy[] = () => fleet): Promise<FleetPhase> {
  const cpu0 = await peer.cpuSeconds();
  const sim0 = await readCpuSeconds(process.pid);
  const t0 = epochNowMs();
  const target = await act();
  const perClient = await allAcked(current(), target, t0, 300_000, kinds);
  const cpuSeconds = (await peer.cpuSeconds()) - cpu0;
  const simCpuSeconds = (await readCpuSeconds(process.pid)) - sim0;
  const perClientMs = perClient.map((t) => t - t0);
  return { allAckedMs: Math.max(...perClientMs), perClientMs, cpuSeconds, simCpuSeconds, rssAfterKiB: await peer.rssKiB() };
}

/** Waits (bounded) until every client ACKed `target` for `kinds`; returns each client's completion time. */
async function allAcked(clients: SimEnvoy[], target: Versions, sinceMs: number, timeoutMs: number, kinds: readonly ResourceKind[]): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pending = clients.filter((c) => !kinds.every((k) => c.ackedVersion(k) === target[k]));
    if (pending.length === 0) {
      return clients.map((c) => Math.max(sinceMs, ...kinds.map((k) => c.ackedAt(k, target[k]) ?? sinceMs)));
    }
    if (Date.now() > deadline) {
      const errors = [...new Set(clients.map((c) => c.error).filter(Boolean))].slice(0, 3);
      throw new Error(`${pending.length} of ${clients.length} simulated Envoys had not ACKed within ${timeoutMs} ms${errors.length ? `; errors: ${errors.join('; ')}` : ''}`);
    }
    await sleep(5);
  }
}
