// What every mode shares: the admin server (bound first: the filter's wake calls need its real port), the
// ADS and LRS servers, the snapshot cache and publisher, traffic from load reports, and the backend
// controller. A mode brings only its BackendState (file marks, or the cluster's truth) and its providers.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { generationInVersion } from '../snapshots/build.ts';
import type { ControlPlaneTlsFiles } from '../snapshots/control-plane-tls.ts';
import { modelForGateway } from '../snapshots/gateways.ts';
import { WAKE_PATH_PREFIX } from '../snapshots/names.ts';
import type { WakeTarget } from '../snapshots/desired-state.ts';
import type { FieldError } from '../snapshots/errors.ts';
import { createAdminApp } from './admin/app.ts';
import { StaticTokenAuth, type AdminAuth } from './admin/auth.ts';
import { AdsEvents } from './ads/events.ts';
import { AdsService } from './ads/service.ts';
import type { StreamSessionOptions } from './ads/stream-session.ts';
import { SnapshotCache } from './cache/snapshot-cache.ts';
import type { Logger } from './log.ts';
import { applyAdminServerBounds, DEFAULT_ADMIN_SERVER_BOUNDS, type AdminServerBounds } from './admin/server-bounds.ts';
import { assertReceiveWindow, DEFAULT_GRPC_BOUNDS, grpcServerOptions, openReceiveWindows, StreamGuard, type GrpcBounds } from './grpc-bounds.ts';
import { LoadReportingService } from './load-reports/lrs-service.ts';
import { Metrics } from './metrics.ts';
import { collectStartupGarbage } from './memory-release.ts';
import { warmUpCodec } from './protos/warm-up.ts';
import { createWakeServer } from './security/wake-server.ts';
import type { XdsTls } from './security/xds-tls.ts';
import { DEFAULT_PUBLISHER_OPTIONS, Publisher, type PublisherOptions } from './publisher.ts';
import { BackendController, DEFAULT_SCALING_OPTIONS, type PeerReplicas, type ScalingOptions } from './scaling/backend-controller.ts';
import type { BackendProvider } from './scaling/provider.ts';
import type { ReadySignalResult } from './scaling/process-provider.ts';
import { TrafficMonitor } from './scaling/traffic.ts';
import type { BackendState } from './state/backend-state.ts';
import { ColdStartLog } from './status/cold-starts.ts';
import { HeldReports } from './status/held-reports.ts';
import { StatusFeed } from './status/status-feed.ts';
import { buildStatus, type LastNack } from './status/status-view.ts';

/**
 * How long one Envoy waits before it repeats a wake call for a backend whose requests are still held. Short,
 * so a failed wake is retried while requests wait (the endpoint is idempotent and single-flight per backend).
 */
export const WAKE_LEASE_MS = 1_000;

export interface CoreOptions {
  xdsAddress?: string;
  xdsPort?: number;
  adminAddress?: string;
  adminPort?: number;
  /** A static bearer token for the admin API (file mode). */
  adminToken?: string;
  /** Or any other check of admin callers (Kubernetes mode: TokenReview + SubjectAccessReview); not both. */
  adminAuth?: AdminAuth;
  /** An admin answer that does not match its documented schema: logged (default) or a 500 (tests). */
  adminResponseCheck?: 'log' | 'fail';
  /** Let the filter call the control plane to wake backends (default true). */
  wakeCalls?: boolean;
  /**
   * The address Envoy uses to reach the admin port for wake calls. Defaults to the admin address, or to
   * 127.0.0.1 when that is a wildcard (0.0.0.0 / ::), which no Envoy can call.
   */
  wakeAddress?: string;
  publisher?: Partial<PublisherOptions>;
  scaling?: Partial<ScalingOptions>;
  /** ADS stream behaviour (the backoff of resending rejected configs). */
  ads?: Partial<StreamSessionOptions>;
  /** Bounds on the xDS/LRS port (message size, streams, request rate, keepalive, slow clients, initial syncs). */
  grpcBounds?: Partial<GrpcBounds>;
  /** Bounds on the admin port (slow clients, connections). */
  adminBounds?: Partial<AdminServerBounds>;
  /** Mutual TLS on the xDS/LRS port (security/xds-tls.ts); absent: plaintext. */
  xdsTls?: XdsTls;
  /**
   * With xdsTls: the filter's wake calls go to a separate HTTPS port (mTLS, only the wake route; default: any
   * free port) and Envoy presents the certificate named by these SDS files there.
   */
  wakeTls?: { files: ControlPlaneTlsFiles; port?: number };
}

/** What a mode hands the core, built once the wake target (the admin port) is known. */
export interface ModeParts {
  state: BackendState;
  providers: Partial<Record<BackendProvider['kind'], BackendProvider>>;
  reloadConfig?: () => Promise<{ ok: true } | { ok: false; errors: FieldError[] }>;
  /** Runs after the first publish, with the live pieces (a Kubernetes state starts pushing changes here). */
  started?: (core: Core) => void | Promise<void>;
  close?: () => Promise<void>;
  /** Other replicas of this control plane (Kubernetes mode with leader election). */
  peers?: PeerReplicas;
  /** A process's readiness signal (POST /v1/ready/{name}); file mode's process hosts. */
  readySignal?: (host: string, token: string) => ReadySignalResult;
  /** The namespace a host belongs to (Kubernetes mode), for namespaced admin API permissions. */
  hostNamespace?: (host: string) => string | undefined;
}

export interface Core {
  xdsPort: number;
  adminPort: number;
  /** The mTLS wake port; undefined when wake calls go to the admin port (plaintext mode). */
  wakePort: number | undefined;
  adminUrl: string;
  cache: SnapshotCache;
  events: AdsEvents;
  ads: AdsService;
  metrics: Metrics;
  publisher: Publisher;
  hosts: BackendController;
  traffic: TrafficMonitor;
  /** The status page's live document (GET /v1/status, /v1/status/events). */
  status: StatusFeed;
  coldStarts: ColdStartLog;
  held: HeldReports;
  close(): Promise<void>;
}

function callableAddress(bound: string): string {
  return bound === '0.0.0.0' || bound === '::' ? '127.0.0.1' : bound;
}

export async function startCore(
  options: CoreOptions,
  log: Logger,
  buildMode: (wake: WakeTarget | undefined, admin: { callableUrl: string }) => Promise<ModeParts>,
): Promise<Core & { mode: ModeParts }> {
  if (options.adminToken && options.adminAuth) throw new Error('the admin API takes a static token or another check (adminAuth), not both');
  const adminAuth = options.adminAuth ?? (options.adminToken ? new StaticTokenAuth(options.adminToken) : undefined);
  log.debug('protobuf encoders written before the first push', { ms: Math.round(warmUpCodec()) });
  const starting = JSON.stringify({ error: 'starting', message: 'the control plane is starting; retry in a moment' });
  let handler: http.RequestListener = (_req, res) => res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' }).end(starting);
  const adminBounds = { ...DEFAULT_ADMIN_SERVER_BOUNDS, ...options.adminBounds };
  // With mTLS on xDS the filter's wake calls have a port of their own (security/wake-server.ts); the admin
  // port, which has no client certificates, no longer takes them (404, as for a route that is not here).
  const wakeOnTlsPort = options.xdsTls !== undefined && options.wakeTls !== undefined && options.wakeCalls !== false;
  // Timeouts are checked on this interval: a fraction of the shortest one, so they hold to about that.
  const adminServer = http.createServer({ connectionsCheckingInterval: Math.max(100, Math.min(adminBounds.headersTimeoutMs, adminBounds.requestTimeoutMs) / 4) }, (req, res) => {
    if (wakeOnTlsPort && req.method === 'POST' && req.url?.startsWith(WAKE_PATH_PREFIX)) {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'not_found', message: "wake calls are served on the control plane's mutual-TLS wake port, not on the admin port" }));
      return;
    }
    handler(req, res);
  });
  // What never reaches the app is answered in JSON too: CONNECT (Node hands it to this event, and drops
  // the connection when nobody listens) and requests Node's parser refuses (its default answer is bare).
  const rawJson = (socket: import('node:stream').Duplex, status: string, headers: string, error: string, message: string): void => {
    const body = JSON.stringify({ error, message });
    if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\ncontent-type: application/json\r\n${headers}content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    else socket.destroy();
  };
  adminServer.on('connect', (_req, socket: import('node:stream').Duplex) =>
    rawJson(socket, '405 Method Not Allowed', 'allow: GET, HEAD, POST, OPTIONS\r\n', 'method_not_allowed', 'CONNECT is not served here; GET /openapi.json lists the routes'),
  );
  adminServer.on('clientError', (err: NodeJS.ErrnoException, socket: import('node:stream').Duplex) => {
    if (err.code === 'HPE_HEADER_OVERFLOW') rawJson(socket, '431 Request Header Fields Too Large', '', 'headers_too_large', 'the request line and headers are larger than 16 KiB');
    else if (err.code === 'ECONNRESET') socket.destroy();
    else if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') rawJson(socket, '408 Request Timeout', '', 'request_timeout', `the request did not arrive in time (headers within ${adminBounds.headersTimeoutMs} ms, all of it within ${adminBounds.requestTimeoutMs} ms)`);
    else rawJson(socket, '400 Bad Request', '', 'invalid_request', `not a valid HTTP request: ${err.code ?? err.message}`);
  });
  const dropped = applyAdminServerBounds(adminServer, adminBounds, log.child('admin'));
  const adminAddress = options.adminAddress ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    adminServer.once('error', reject);
    adminServer.listen(options.adminPort ?? 0, adminAddress, () => resolve());
  });
  const adminPort = (adminServer.address() as AddressInfo).port;
  // A late-bound view of the state for the wake port's routing check (the mode builds the state below).
  let stateRef: BackendState | undefined;
  let wakeServer: import('node:https').Server | undefined;
  if (wakeOnTlsPort && options.xdsTls) {
    wakeServer = createWakeServer({
      tls: options.xdsTls,
      routes: (gateway, host) => {
        const backend = stateRef?.find(host)?.backend.name;
        // An unknown host passes: the admin app answers it (404) as it does on the admin port.
        return backend === undefined || stateRef === undefined || modelForGateway(stateRef.desired().model, gateway).backends.some((b) => b.name === backend);
      },
      forward: () => handler,
    });
    const ws = wakeServer;
    await new Promise<void>((resolve, reject) => {
      ws.once('error', reject);
      ws.listen(options.wakeTls?.port ?? 0, adminAddress, () => resolve());
    });
  }
  const wakePort = wakeServer ? (wakeServer.address() as AddressInfo).port : adminPort;
  const wake =
    options.wakeCalls === false
      ? undefined
      : { address: options.wakeAddress ?? callableAddress(adminAddress), port: wakePort, leaseMs: WAKE_LEASE_MS, timeoutMs: 2_000, ...(wakeServer && options.wakeTls ? { tls: options.wakeTls.files } : {}) };

  let mode: ModeParts;
  try {
    mode = await buildMode(wake, { callableUrl: `http://${callableAddress(adminAddress)}:${adminPort}` });
  } catch (err) {
    adminServer.close();
    wakeServer?.close();
    throw err;
  }
  const { state } = mode;
  stateRef = state;
  const events = new AdsEvents();
  const cache = new SnapshotCache(events);
  const metrics = new Metrics(events);
  dropped.count = () => metrics.inc('stz_admin_connections_refused_total');
  const grpcBounds: GrpcBounds = { ...DEFAULT_GRPC_BOUNDS, ...options.grpcBounds };
  assertReceiveWindow(grpcBounds.receiveWindowBytes);
  const guard = new StreamGuard(grpcBounds, metrics, log.child('grpc-bounds'));
  const publisher = new Publisher(() => state.desired(), cache, log.child('publisher'), { ...DEFAULT_PUBLISHER_OPTIONS, ...options.publisher });
  await publisher.publishNow();
  const scalingOptions = { ...DEFAULT_SCALING_OPTIONS, ...options.scaling };
  const traffic = new TrafficMonitor();
  const lrs = new LoadReportingService(scalingOptions.loadReportIntervalMs, log.child('lrs'), guard);
  lrs.on('stream-open', (reporter, nodeId) => traffic.openReporter(reporter, nodeId));
  lrs.on('report', (r) => traffic.record(r));
  lrs.on('stream-close', (reporter) => traffic.forgetReporter(reporter));
  // `state` is known here: a client reconnecting with a filter config of a higher generation gets nothing
  // until the raised one below is published, so it is never sent a config older than its own.
  const ads = new AdsService(cache, events, log.child('ads'), {
    ...options.ads,
    holdsNewer: (kind, clientVersion) => kind === 'extensionConfig' && (generationInVersion(clientVersion) ?? -Infinity) > state.currentGeneration,
  }, guard);

  // What the status page and the operator metrics see (status/): cold starts, requests held now, NACKs.
  let statusFeed: StatusFeed | undefined;
  const statusChanged = (): void => statusFeed?.changed();
  // A wake call repeats about once per lease while requests are held: a report older than 2.5 leases is gone.
  const held = new HeldReports(2.5 * WAKE_LEASE_MS);
  const coldStarts = new ColdStartLog(metrics, (host) => state.find(host)?.backend.clusterName, statusChanged);
  const lastNacks = new Map<number, LastNack>();
  events.on('nack', (e) => lastNacks.set(e.streamId, { type: e.kind, version: e.rejectedVersion, message: e.message, at: new Date().toISOString() }));
  events.on('stream-close', (e) => lastNacks.delete(e.streamId));
  for (const name of ['stream-open', 'stream-close', 'ack', 'nack', 'response'] as const) events.on(name, statusChanged);
  lrs.on('report', (r) => coldStarts.loadReport(r));
  lrs.on('report', statusChanged);
  lrs.on('stream-close', statusChanged);
  const hosts = new BackendController(
    {
      state,
      publisher,
      cache,
      traffic,
      providers: mode.providers,
      metrics,
      log: log.child('scaling'),
      // Only clients that route a host (subscribe to its cluster) can see its traffic.
      routingClients: (cluster) => ads.connected.filter((s) => s.subscribesTo('cluster', cluster)).map((s) => ({ nodeId: s.nodeId, connectedAt: s.connectedAtMs })),
      ...(mode.peers ? { peers: mode.peers } : {}),
      observer: {
        wakeStarted: (h, source, reason) => coldStarts.wakeStarted(h, source, reason),
        wakeSpawned: (h) => coldStarts.wakeSpawned(h),
        wakeReady: (h, by) => coldStarts.wakeReady(h, by),
        releasePushed: (h) => coldStarts.releasePushed(h),
        released: (h, n) => coldStarts.released(h, n),
        wakeFailed: (h, reason, message) => coldStarts.wakeFailed(h, reason, message),
        phaseChanged: (h, status) => {
          // Released (ready) or answered (failed): the filter holds nothing for the host any more.
          if (status.phase === 'ready' || status.phase === 'failed') held.clear(h);
          statusChanged();
        },
      },
    },
    scalingOptions,
  );
  // An Envoy that reconnects names the filter config it holds. If that came from a higher generation (another
  // replica, or this one before a restart with its clock set back), our configs would be ignored by its filter,
  // releases included: go above it and push again.
  events.on('request', (e) => {
    if (e.kind !== 'extensionConfig' || e.verdict.kind !== 'initial' || e.clientVersion === '') return;
    const theirs = generationInVersion(e.clientVersion);
    // Equal is fine (the filter applies a config of the generation it holds): a client reconnecting to us.
    if (theirs === undefined || theirs <= state.currentGeneration) return;
    log.info('a reconnecting client holds a newer filter generation; raising ours above it', { node: e.nodeId, theirs, ours: state.currentGeneration });
    state.advanceGeneration(theirs + 1);
    void publisher.schedule({ urgent: true }).catch((err: Error) => log.error('publish failed', { error: err.message }));
  });
  statusFeed = new StatusFeed(() =>
    buildStatus({
      state,
      hosts,
      sessions: () => ads.connected,
      traffic,
      held,
      coldStarts,
      lastNack: (id) => lastNacks.get(id),
      loadReportIntervalMs: scalingOptions.loadReportIntervalMs,
    }),
  );
  const status = statusFeed;
  metrics.gauge('stz_hosts_scaled_to_zero', () => state.scalable().filter((h) => h.held).length);
  metrics.gauge('stz_filter_generation', () => state.currentGeneration);
  metrics.gauge('stz_xds_connected_streams', () => ads.connected.length);
  metrics.gaugeFamily('stz_xds_connected_clients', () =>
    (['envoy', 'grpc', 'xds-client'] as const).map((kind) => [{ kind }, ads.connected.filter((s) => s.clientKind === kind).length]),
  );
  metrics.gauge('stz_lrs_connected_streams', () => traffic.reporterCount());
  metrics.gaugeFamily('stz_requests_held', () => state.scalable().map((v) => [{ host: v.backend.name }, held.total(v.backend.name)]));

  metrics.gauge('stz_xds_initial_syncs_waiting', () => ads.initialSyncs.waiting);
  metrics.gauge('stz_grpc_open_streams', () => guard.openStreams);
  if (options.xdsTls) {
    const tls = options.xdsTls;
    tls.onRefused((reason, detail) => metrics.inc('stz_xds_tls_refused_total', { reason, port: detail.port === 'wake' ? 'wake' : 'xds' }));
    ads.requireClientCertificates(tls);
    lrs.requireClientCertificates(tls, (gateway) => new Set(modelForGateway(state.desired().model, gateway).backends.map((b) => b.clusterName)));
  }
  const grpcServer = new grpc.Server(grpcServerOptions(grpcBounds));
  ads.register(grpcServer);
  lrs.register(grpcServer);
  const xdsAddress = options.xdsAddress ?? '127.0.0.1';
  const collected = collectStartupGarbage();
  if (collected !== undefined) log.debug('start-up garbage collected before serving xDS', { ms: Math.round(collected) });
  const xdsPort = await new Promise<number>((resolve, reject) =>
    grpcServer.bindAsync(`${xdsAddress}:${options.xdsPort ?? 0}`, options.xdsTls?.credentials ?? grpc.ServerCredentials.createInsecure(), (err, port) => {
      if (err) return reject(err);
      if (!openReceiveWindows(grpcServer, grpcBounds.receiveWindowBytes)) log.warn('cannot set the HTTP/2 receive windows of the xDS port (grpc-js internals changed): Node\'s 64 KiB windows apply');
      resolve(port);
    }),
  );
  options.xdsTls?.observe(grpcServer);

  const app = createAdminApp({
    store: state,
    hosts,
    sessions: () => ads.connected,
    cache,
    metrics,
    status,
    held,
    statusChanged,
    reloadConfig: mode.reloadConfig ?? (async () => ({ ok: false, errors: [{ path: '', message: 'this control plane reads no config file (Kubernetes mode): change the Gateway API objects instead' }] })),
    log: log.child('admin'),
    ...(adminAuth ? { auth: adminAuth } : {}),
    ...(mode.hostNamespace ? { hostNamespace: mode.hostNamespace } : {}),
    ...(options.adminResponseCheck ? { responseCheck: options.adminResponseCheck } : {}),
    ...(mode.readySignal ? { readySignal: mode.readySignal } : {}),
  });
  const core: Core = {
    xdsPort,
    adminPort,
    wakePort: wakeServer ? wakePort : undefined,
    adminUrl: `http://${adminAddress}:${adminPort}`,
    cache,
    events,
    ads,
    metrics,
    publisher,
    hosts,
    traffic,
    status,
    coldStarts,
    held,
    async close() {
      status.stop();
      await hosts.close();
      await mode.close?.();
      publisher.close();
      grpcServer.forceShutdown();
      adminServer.closeAllConnections();
      wakeServer?.closeAllConnections();
      await Promise.all([
        new Promise<void>((resolve) => adminServer.close(() => resolve())),
        ...(wakeServer ? [new Promise<void>((resolve) => wakeServer!.close(() => resolve()))] : []),
      ]);
    },
  };
  await mode.started?.(core);
  handler = app.callback();
  log.info('control plane started', {
    xds: `${xdsAddress}:${xdsPort}`,
    xdsTransport: options.xdsTls ? 'mutual TLS' : 'plaintext',
    ...(wakeServer ? { wake: `https://${adminAddress}:${wakePort} (mutual TLS)` } : {}),
    admin: `http://${adminAddress}:${adminPort}`,
    backends: state.scalable().length,
  });
  return { ...core, mode };
}
