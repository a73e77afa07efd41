// Wires the pieces together: config file → store → publisher → cache → ADS streams, plus the admin API.
// Library form, so tests and the stack runner start it in-process; main.ts is the CLI around it.
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import type { GatewayConfig } from '../sources/file/config.ts';
import type { FieldError } from '../snapshots/errors.ts';
import { parseGatewayConfigText } from '../sources/file/parse.ts';
import { createAdminApp } from './admin/app.ts';
import { AdsEvents } from './ads/events.ts';
import { AdsService } from './ads/service.ts';
import { SnapshotCache } from './cache/snapshot-cache.ts';
import { createLogger, type Logger } from './log.ts';
import { Metrics } from './metrics.ts';
import { DEFAULT_PUBLISHER_OPTIONS, Publisher, type PublisherOptions } from './publisher.ts';
import { EventEmitter } from 'node:events';
import { LoadReportingService } from './load-reports/lrs-service.ts';
import { BackendController, DEFAULT_SCALING_OPTIONS, type HostController, type ScalingOptions } from './scaling/backend-controller.ts';
import { ProcessProvider } from './scaling/process-provider.ts';
import { ManualProvider } from './scaling/provider.ts';
import { TrafficMonitor } from './scaling/traffic.ts';
import { loadState } from './state/persistence.ts';
import { GatewayStore } from './state/store.ts';

export interface ControlPlaneOptions {
  configPath: string;
  stateDir: string;
  filterWasmPath: string;
  xdsAddress?: string;
  xdsPort?: number;
  adminAddress?: string;
  adminPort?: number;
  adminToken?: string;
  /** Let the filter call the control plane to wake hosts (default true). */
  wakeCalls?: boolean;
  /**
   * The address Envoy uses to reach the admin port for wake calls. Defaults to the admin address, or to
   * 127.0.0.1 when that is a wildcard (0.0.0.0 / ::), which no Envoy can call.
   */
  wakeAddress?: string;
  publisher?: Partial<PublisherOptions>;
  scaling?: Partial<ScalingOptions>;
  /** How often a waking process host is probed (default 2 ms: it bounds the cold-start delay). */
  probeIntervalMs?: number;
  log?: Logger;
}

export interface ControlPlane {
  xdsPort: number;
  adminPort: number;
  adminUrl: string;
  store: GatewayStore;
  cache: SnapshotCache;
  events: AdsEvents;
  ads: AdsService;
  metrics: Metrics;
  publisher: Publisher;
  hosts: HostController;
  traffic: TrafficMonitor;
  processes: ProcessProvider;
  /** Every line a process host writes: ('line', host, line). */
  hostOutput: EventEmitter<{ line: [string, string] }>;
  reloadConfig(): Promise<{ ok: true } | { ok: false; errors: FieldError[] }>;
  close(): Promise<void>;
}

/**
 * How long one Envoy waits before it repeats a wake call for a host whose requests are still held. Short,
 * so a failed wake is retried while requests wait (the endpoint is idempotent and single-flight per host).
 */
export const WAKE_LEASE_MS = 1_000;

export class ConfigFileError extends Error {
  constructor(
    readonly file: string,
    readonly errors: FieldError[],
  ) {
    super(`${file} is not a valid gateway config:\n${errors.map((e) => `  ${e.path || '/'}: ${e.message}`).join('\n')}`);
  }
}

function callableAddress(bound: string): string {
  return bound === '0.0.0.0' || bound === '::' ? '127.0.0.1' : bound;
}

export async function readGatewayConfig(file: string): Promise<{ ok: true; value: GatewayConfig } | { ok: false; errors: FieldError[] }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    return { ok: false, errors: [{ path: '', message: `cannot read ${file}: ${(err as Error).message}` }] };
  }
  return parseGatewayConfigText(text);
}

export async function startControlPlane(options: ControlPlaneOptions): Promise<ControlPlane> {
  const log = options.log ?? createLogger({ module: 'control-plane' });
  const initial = await readGatewayConfig(options.configPath);
  if (!initial.ok) throw new ConfigFileError(options.configPath, initial.errors);

  // The admin server binds first: the filter's wake calls need its real port in the snapshot.
  let handler: http.RequestListener = (_req, res) => res.writeHead(503).end();
  const adminServer = http.createServer((req, res) => handler(req, res));
  const adminAddress = options.adminAddress ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    adminServer.once('error', reject);
    adminServer.listen(options.adminPort ?? 0, adminAddress, () => resolve());
  });
  const adminPort = (adminServer.address() as AddressInfo).port;

  const events = new AdsEvents();
  const cache = new SnapshotCache(events);
  const metrics = new Metrics(events);
  const store = new GatewayStore(initial.value, await loadState(options.stateDir), {
    stateDir: options.stateDir,
    filterWasmPath: options.filterWasmPath,
    ...(options.wakeCalls === false ? {} : { wake: { address: options.wakeAddress ?? callableAddress(adminAddress), port: adminPort, leaseMs: WAKE_LEASE_MS, timeoutMs: 2_000 } }),
  });
  const hostOutput = new EventEmitter<{ line: [string, string] }>();
  const processes = new ProcessProvider(log.child('process'), (host, line) => hostOutput.emit('line', host, line), { probeIntervalMs: options.probeIntervalMs ?? 2 });
  // A process host whose process is not running (none is at start-up; a reload may add one) is held, so
  // its first request wakes it instead of meeting a closed port.
  const holdStoppedProcessHosts = async (why: string): Promise<void> => {
    for (const h of store.hosts()) {
      if (h.config.scaler.kind === 'process' && !h.scaledToZero && !processes.isRunning(h.config.name)) await store.setScaledToZero(h.config.name, true, why);
    }
  };
  await holdStoppedProcessHosts('control plane started; the process is not running');
  const publisher = new Publisher(() => store.desired(), cache, log.child('publisher'), { ...DEFAULT_PUBLISHER_OPTIONS, ...options.publisher });
  await publisher.publishNow();
  const scalingOptions = { ...DEFAULT_SCALING_OPTIONS, ...options.scaling };
  const traffic = new TrafficMonitor();
  const lrs = new LoadReportingService(scalingOptions.loadReportIntervalMs, log.child('lrs'));
  lrs.on('report', (r) => traffic.record(r));
  lrs.on('stream-close', (reporter) => traffic.forgetReporter(reporter));
  const ads = new AdsService(cache, events, log.child('ads'));
  const hosts = new BackendController(
    {
      state: store,
      publisher,
      cache,
      traffic,
      providers: { manual: new ManualProvider(), process: processes },
      metrics,
      log: log.child('scaling'),
      connectedNodes: () => ads.connected.map((s) => s.nodeId),
    },
    scalingOptions,
  );
  metrics.gauge('stz_hosts_scaled_to_zero', () => store.hosts().filter((h) => h.scaledToZero).length);
  metrics.gauge('stz_filter_generation', () => store.currentGeneration);

  metrics.gauge('stz_xds_connected_streams', () => ads.connected.length);
  const grpcServer = new grpc.Server({ 'grpc.keepalive_time_ms': 30_000, 'grpc.max_receive_message_length': 16 * 1024 * 1024 });
  ads.register(grpcServer);
  lrs.register(grpcServer);
  const xdsAddress = options.xdsAddress ?? '127.0.0.1';
  const xdsPort = await new Promise<number>((resolve, reject) =>
    grpcServer.bindAsync(`${xdsAddress}:${options.xdsPort ?? 0}`, grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
  );

  const reloadConfig = async (): Promise<{ ok: true } | { ok: false; errors: FieldError[] }> => {
    const next = await readGatewayConfig(options.configPath);
    if (!next.ok) {
      log.error('config reload refused; the previous config stays in force', { file: options.configPath, errors: next.errors });
      return next;
    }
    const kept = new Set(next.value.hosts.map((h) => h.name));
    const removed = store.hosts().filter((h) => !kept.has(h.config.name));
    await store.replaceConfig(next.value);
    await holdStoppedProcessHosts('added by a config reload; the process is not running');
    await publisher.schedule();
    for (const h of removed) await processes.stop(h.config);
    log.info('config reloaded', { file: options.configPath, hosts: next.value.hosts.length });
    return { ok: true };
  };

  const app = createAdminApp({
    store,
    hosts,
    sessions: () => ads.connected,
    cache,
    metrics,
    reloadConfig,
    log: log.child('admin'),
    ...(options.adminToken ? { token: options.adminToken } : {}),
  });
  handler = app.callback();
  log.info('control plane started', { xds: `${xdsAddress}:${xdsPort}`, admin: `http://${adminAddress}:${adminPort}`, hosts: store.hosts().length });

  return {
    xdsPort,
    adminPort,
    adminUrl: `http://${adminAddress}:${adminPort}`,
    store,
    cache,
    events,
    ads,
    metrics,
    publisher,
    hosts,
    traffic,
    processes,
    hostOutput,
    reloadConfig,
    async close() {
      await hosts.close();
      await processes.close();
      publisher.close();
      grpcServer.forceShutdown();
      adminServer.closeAllConnections();
      await new Promise<void>((resolve) => adminServer.close(() => resolve()));
    },
  };
}
