// Side by side, one real Envoy (--concurrency 2) each: our control plane and go-control-plane, serving the
// same resources (ours dumps its snapshots, encoded by our codec, and the Go peer loads those bytes).
// Interleaved: each round runs both, the order alternating. Per round, a fresh control-plane process and a
// fresh Envoy: start with 0 hosts, wait until Envoy ACKed everything, then push N hosts and time it until
// Envoy has ACKed all five types (clusters, endpoints, listeners, routes and the filter config over ECDS,
// which the Go peer serves as a TypedExtensionConfig like any other resource). At the change size, one
// host's endpoint is then moved back and forth, each time until Envoy ACKed the new endpoints.
import { copyFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { startEnvoy } from '../../envoy-bootstrap/envoy.ts';
import { renderBootstrap } from '../../envoy-bootstrap/render.ts';
import { KINDS, startPeer, waitAllAcked, type Peer, type PeerName } from '../lib/xds-peer.ts';
import { CHANGE_PORTS, writeXdsConfig } from '../lib/xds-configs.ts';
import { track } from '../lib/stack.ts';
import { epochNowMs, sleep, waitFor, type QuietGate } from '../lib/system.ts';

export interface XdsEnvoyOptions {
  sizes: number[];
  rounds: number;
  changeSize: number;
  changesPerRound: number;
  dir: string;
  filterWasmPath: string;
  gate: QuietGate;
  log: (line: string) => void;
}

export interface XdsEnvoyRound {
  peer: PeerName;
  hosts: number;
  round: number;
  /** Push → the last of the five types ACKed by Envoy. */
  coldMs: number;
  /** Control-plane CPU seconds from the push to all ACKed. */
  coldCpuSeconds: number;
  rssIdleKiB: number;
  rssLoadedKiB: number;
  hwmKiB: number;
  /** Clusters Envoy reports active at the end (N + 2): proof it really took the config. */
  envoyActiveClusters: number;
  /** One host's endpoint changed → EDS ACKed, one sample per change (change size only). */
  changeMs?: number[];
  changeCpuSecondsPerChange?: number;
  /** Other processes' CPU (% of a core) when this round started. */
  foreignPercent: number;
}

interface Files {
  /** Ours loads the config; go-control-plane loads ours' dump of it. */
  ours: string;
  go: string;
}

/** Writes every config and, through one run of ours, its dump for the Go peer. */
export async function prepareXdsFiles(options: { sizes: number[]; changeSize: number; dir: string; filterWasmPath: string }): Promise<{ base: Map<number, Files>; zero: Files; changed: Files }> {
  await mkdir(options.dir, { recursive: true });
  const sizes = [...new Set([0, ...options.sizes, options.changeSize])];
  const zeroConfig = await writeXdsConfig(options.dir, 0);
  const work = path.join(options.dir, 'prepare.json');
  await copyFile(zeroConfig, work);
  const ours = await startPeer('ours', { configFile: work, stateDir: path.join(options.dir, 'prepare-state'), filterWasmPath: options.filterWasmPath, acks: false });
  try {
    const base = new Map<number, Files>();
    for (const n of sizes) {
      const config = await writeXdsConfig(options.dir, n);
      await ours.load(config);
      const dump = path.join(options.dir, `dump-${n}-${CHANGE_PORTS[0]}.json`);
      await ours.dump(dump);
      base.set(n, { ours: config, go: dump });
    }
    const changedConfig = await writeXdsConfig(options.dir, options.changeSize, CHANGE_PORTS[1]);
    await ours.load(changedConfig);
    const changedDump = path.join(options.dir, `dump-${options.changeSize}-${CHANGE_PORTS[1]}.json`);
    await ours.dump(changedDump);
    return { base, zero: base.get(0)!, changed: { ours: changedConfig, go: changedDump } };
  } finally {
    await ours.stop();
  }
}

export async function runXdsEnvoy(options: XdsEnvoyOptions): Promise<XdsEnvoyRound[]> {
  const files = await prepareXdsFiles(options);
  const results: XdsEnvoyRound[] = [];
  let serial = 0;
  for (const hosts of options.sizes) {
    for (let round = 0; round < options.rounds; round++) {
      const order: PeerName[] = round % 2 === 0 ? ['ours', 'go-control-plane'] : ['go-control-plane', 'ours'];
      for (const peerName of order) {
        const quiet = await options.gate.wait(`${peerName} at ${hosts} hosts`);
        const result = await oneRound(peerName, hosts, round, files, options, serial++);
        result.foreignPercent = quiet.percent;
        results.push(result);
        const change = result.changeMs ? `, one-host change p50 ${median(result.changeMs).toFixed(1)} ms` : '';
        options.log(`  ${peerName.padEnd(16)} ${String(hosts).padStart(6)} hosts round ${round + 1}: cold ${result.coldMs.toFixed(1)} ms, RSS ${(result.rssLoadedKiB / 1024).toFixed(0)} MiB${change}`);
      }
    }
  }
  return results;
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)]!;
}

async function oneRound(
  peerName: PeerName,
  hosts: number,
  round: number,
  files: { base: Map<number, Files>; zero: Files; changed: Files },
  options: XdsEnvoyOptions,
  serial: number,
): Promise<XdsEnvoyRound> {
  const pick = (f: Files): string => (peerName === 'ours' ? f.ours : f.go);
  const roundDir = path.join(options.dir, `round-${serial}`);
  await mkdir(roundDir, { recursive: true });
  const configFile = path.join(roundDir, 'gateway.json');
  await copyFile(files.zero.ours, configFile);
  const peer: Peer = await startPeer(peerName, { configFile, stateDir: path.join(roundDir, 'state'), filterWasmPath: options.filterWasmPath, acks: true });
  let envoy: Awaited<ReturnType<typeof startEnvoy>> | undefined;
  try {
    // Ours starts with the 0-host config already; loading it again only reports its versions.
    const zeroTarget = await peer.load(pick(files.zero));
    envoy = await startEnvoy({ bootstrap: renderBootstrap({ nodeId: `bench-xds-${serial}`, xdsAddress: '127.0.0.1', xdsPort: peer.port }), concurrency: 2, logLevel: 'error' });
    track(envoy.pid, envoy.exited);
    // With no hosts there are no clusters, so Envoy asks for no endpoints.
    await waitAllAcked(peer, zeroTarget, 0, 30_000, KINDS.filter((k) => k !== 'endpoint'));
    await sleep(300);
    const rssIdleKiB = await peer.rssKiB();
    const cpu0 = await peer.cpuSeconds();
    const t0 = epochNowMs();
    const target = await peer.load(pick(files.base.get(hosts)!));
    const done = await waitAllAcked(peer, target, t0, 300_000);
    const coldMs = done - t0;
    const coldCpuSeconds = (await peer.cpuSeconds()) - cpu0;
    await sleep(300);
    const rssLoadedKiB = await peer.rssKiB();
    const result: XdsEnvoyRound = { peer: peerName, hosts, round, coldMs, coldCpuSeconds, rssIdleKiB, rssLoadedKiB, hwmKiB: 0, envoyActiveClusters: 0, foreignPercent: 0 };
    if (hosts === options.changeSize) {
      const changeMs: number[] = [];
      const c0 = await peer.cpuSeconds();
      for (let i = 0; i < options.changesPerRound; i++) {
        const file = i % 2 === 0 ? pick(files.changed) : pick(files.base.get(hosts)!);
        // Spread the changes off any timer the control planes run on.
        await sleep(100 + Math.random() * 50);
        const start = epochNowMs();
        const t = await peer.load(file);
        changeMs.push((await waitAllAcked(peer, t, start, 60_000)) - start);
      }
      result.changeMs = changeMs;
      result.changeCpuSecondsPerChange = ((await peer.cpuSeconds()) - c0) / options.changesPerRound;
    }
    result.hwmKiB = await peer.hwmKiB();
    const live = envoy;
    result.envoyActiveClusters = await waitFor('Envoy cluster_manager.active_clusters', async () => (await live.stats('cluster_manager.active_clusters')).get('cluster_manager.active_clusters'), { timeoutMs: 10_000 });
    // One cluster per host, plus the bootstrap's xDS cluster and the snapshot's control-plane cluster.
    if (result.envoyActiveClusters !== hosts + 2) throw new Error(`${peerName}: Envoy has ${result.envoyActiveClusters} active clusters, expected ${hosts + 2}`);
    return result;
  } catch (err) {
    const tail = envoy?.logTail(20);
    throw new Error(`${(err as Error).message}${tail ? `\nEnvoy log:\n${tail}` : ''}`);
  } finally {
    await envoy?.stop();
    await peer.stop();
  }
}
