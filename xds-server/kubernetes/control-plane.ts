// Kubernetes mode: the cluster is the source (Gateway API objects of our GatewayClass, Services,
// EndpointSlices, ScaleToZeroPolicies) and workloads scale through their /scale subresource. Everything but
// the state and the provider is the shared core.
import { KubeConfig } from '@kubernetes/client-node';
import { startCore, type Core, type CoreOptions } from '../core.ts';
import { createLogger, type Logger } from '../log.ts';
import { systemClock } from '../clock.ts';
import { ManualProvider } from '../scaling/provider.ts';
import { DEFAULT_CONTROLLER_NAME, KubernetesState, type KubernetesStateOptions } from './cluster-state.ts';
import { assignAddresses, keyOf, parsePool } from './address-pool.ts';
import { EventRecorder } from './events.ts';
import { KubernetesProvider } from './kubernetes-provider.ts';
import { KubernetesLeaseStore, LeaderElector, type LeaderElectionTiming } from './leader-election.ts';
import { replicasNotHolding, sharedEvidence, sharedLastTraffic, type TrafficShareTiming } from './traffic-share.ts';
import { TrafficShare } from './traffic-share-sync.ts';
import type { PeerReplicas } from '../scaling/backend-controller.ts';
import { RestKubeClient, type KubeClient } from './rest.ts';
import { ScaleClient } from './scale.ts';
import { StatusWriter } from './status-writer.ts';
import { KubernetesAdminAuth, type KubernetesAdminAuthTiming } from './admin-auth.ts';
import { clusterNamespace } from '../../sources/kubernetes/names.ts';
import { createXdsTls, MemoryCertificateProvider, type XdsTls } from '../security/xds-tls.ts';
import type { ControlPlaneTlsFiles } from '../../snapshots/control-plane-tls.ts';
import { MemoryRelease, RELEASE_SETTLE_MS, ReleaseAfterPush } from '../memory-release.ts';
import { DEFAULT_ENVOY_SDS_DIR, DEFAULT_KUBERNETES_WAKE_PORT, ENVOY_SDS_FILE_NAMES, DEFAULT_XDS_CERTIFICATE_TIMING, GatewayCertificates, loadOrCreateCa, ServerCertificate, type GatewayName, type XdsCertificateTiming } from './xds-certificates.ts';

export interface KubernetesControlPlaneOptions extends CoreOptions {
  /** A kubeconfig file; absent: in-cluster service account, else $KUBECONFIG / ~/.kube/config. */
  kubeconfig?: string;
  /** Or a ready client (tests). */
  client?: KubeClient;
  controllerName?: string;
  filterWasmPath: string;
  /** Listener address for Gateways whose spec.addresses names none (default 127.0.0.1). */
  defaultGatewayAddress?: string;
  /** Instead: a distinct address per Gateway from this loopback range (e.g. 127.50.0.0/16). */
  gatewayAddressPool?: string;
  state?: Partial<Pick<KubernetesStateOptions, 'informer' | 'batchMs'>>;
  /** How often statuses are re-checked and re-written even without a change (default 30 s). */
  resyncMs?: number;
  /**
   * Several replicas: the once-only writes (statuses) are made by the holder of this Lease only. Absent: this
   * process is the only replica and always writes.
   */
  leaderElection?: LeaderElectionOptions;
  /**
   * The admin API asks the cluster who a caller is (TokenReview) and whether RBAC lets it make the call
   * (SubjectAccessReview). Not together with adminToken.
   */
  adminRbac?: { audiences?: string[]; timing?: Partial<KubernetesAdminAuthTiming> };
  /**
   * The xDS mTLS certificates from the cluster (xds-certificates.ts): the CA Secret in `namespace` (created
   * once), this replica's server certificate for `serverNames`, and (the leader) a client certificate Secret
   * per Gateway of our class.
   */
  xdsCertificates?: XdsCertificatesOptions;
  log?: Logger;
}

export interface XdsCertificatesOptions {
  namespace: string;
  /** The names Envoys dial the control plane by (its Services' DNS names; IPs for tests). */
  serverNames: { dnsNames: string[]; ipAddresses?: string[] };
  timing?: Partial<XdsCertificateTiming>;
  /** The SDS files the gateways' Envoys read their certificate through (default under DEFAULT_ENVOY_SDS_DIR). */
  envoySdsFiles?: ControlPlaneTlsFiles;
  /** The mTLS port the filter's wake calls go to (default DEFAULT_KUBERNETES_WAKE_PORT; 0: any free port). */
  wakePort?: number;
}

export interface LeaderElectionOptions {
  /** Where the Lease lives (the control plane's own namespace). */
  namespace: string;
  /** Default scale-to-zero-control-plane. */
  name?: string;
  /** Unique per replica (the pod name). */
  identity: string;
  /** The replica's Pod uid: its traffic record is then owned by the Pod and goes with it. */
  podUid?: string;
  timing?: Partial<LeaderElectionTiming>;
  /** How replicas share their Envoys' load reports (defaults in traffic-share.ts). */
  trafficShare?: Partial<TrafficShareTiming>;
}

export const DEFAULT_LEASE_NAME = 'scale-to-zero-control-plane';

export interface KubernetesControlPlane extends Core {
  state: KubernetesState;
  /** With xdsCertificates: this replica's server certificate and the leader's gateway certificate loop. */
  certificates?: { server: ServerCertificate; gateways: GatewayCertificates; caCertPem: string };
  statusWriter: StatusWriter;
  client: KubeClient;
  /** True while this replica takes the once-only decisions (always, without leader election). */
  isLeader(): boolean;
  elector?: LeaderElector;
}

export function kubeClientFrom(kubeconfig: string | undefined): RestKubeClient {
  const config = new KubeConfig();
  if (kubeconfig) config.loadFromFile(kubeconfig);
  else config.loadFromDefault();
  return new RestKubeClient(config);
}

export async function startKubernetesControlPlane(options: KubernetesControlPlaneOptions): Promise<KubernetesControlPlane> {
  const log = options.log ?? createLogger({ module: 'control-plane' });
  const client = options.client ?? kubeClientFrom(options.kubeconfig);
  const controllerName = options.controllerName ?? DEFAULT_CONTROLLER_NAME;
  let state!: KubernetesState;
  let statusWriter!: StatusWriter;
  let resync: NodeJS.Timeout | undefined;
  const electionStop = new AbortController();
  let electionDone: Promise<void> | undefined;
  const elector = options.leaderElection
    ? new LeaderElector({
        identity: options.leaderElection.identity,
        store: new KubernetesLeaseStore(client, options.leaderElection.namespace, options.leaderElection.name ?? DEFAULT_LEASE_NAME),
        clock: systemClock,
        log: log.child('leader-election'),
        ...(options.leaderElection.timing ? { timing: options.leaderElection.timing } : {}),
        // A new leader writes every status it computes now; one that stopped leading has already stopped writing.
        onChange: (leading) => {
          if (leading && state) state.resync();
          if (leading) void gatewayCerts?.kick();
        },
      })
    : undefined;
  const isLeader = (): boolean => elector?.isLeader() ?? true;
  // With replicas, idle scale-downs are the leader's, judged from every replica's Envoys (traffic-share.ts).
  let share: TrafficShare | undefined;
  const peers: PeerReplicas | undefined = elector
    ? {
        isLeader,
        lastTrafficAt: (cluster) => (share ? sharedLastTraffic(cluster, share.others()) : undefined),
        notHolding: (backends, now) => (share ? replicasNotHolding(backends, share.others(), now, share.timing) : []),
        evidence: (since, now) => {
          // Not started yet: nothing is known about the others, so nothing may be taken for idleness.
          if (!share) return { ok: false, cause: 'the traffic records of the other replicas are not read yet', reporters: 0 };
          const others = share.others();
          return { ...sharedEvidence(others, since, now, share.timing), reporters: others.reduce((n, o) => n + o.record.reporters, 0) };
        },
      }
    : undefined;

  if (options.adminRbac && options.adminToken) throw new Error('the admin API is checked with Kubernetes RBAC or with a static token, not both');
  const adminAuth = options.adminRbac
    ? new KubernetesAdminAuth({
        client,
        clock: systemClock,
        log: log.child('admin-auth'),
        ...(options.adminRbac.audiences ? { audiences: options.adminRbac.audiences } : {}),
        ...(options.adminRbac.timing ? { timing: options.adminRbac.timing } : {}),
      })
    : undefined;

  // The CA and this replica's server certificate exist before the xDS server starts.
  let gatewayCerts: GatewayCertificates | undefined;
  let certificates: KubernetesControlPlane['certificates'];
  const xc = options.xdsCertificates;
  const certLog = log.child('xds-certificates');
  const ca = xc ? await loadOrCreateCa(client, xc.namespace, systemClock, certLog, { caValidForMs: xc.timing?.caValidForMs ?? DEFAULT_XDS_CERTIFICATE_TIMING.caValidForMs }) : undefined;
  // The xDS port serves this replica's certificate; a renewed one reaches new connections without a rebind.
  const provider = new MemoryCertificateProvider();
  const serverCert = ca && xc ? new ServerCertificate(ca, xc.serverNames, systemClock, certLog, xc.timing, (pair) => provider.set({ ca: ca.certPem, cert: pair.certPem, key: pair.keyPem })) : undefined;
  const first = await serverCert?.init();
  let xdsTls: XdsTls | undefined;
  if (ca && first) {
    provider.set({ ca: ca.certPem, cert: first.certPem, key: first.keyPem });
    xdsTls = createXdsTls(provider, log.child('xds-tls'));
  } else {
    log.warn('xDS and load reports are served in PLAINTEXT: any pod that can reach the xDS port gets every Gateway\'s config and can send load reports that change scaling decisions');
  }

  const core = await startCoreOrStop(() => serverCert?.close(), () => startCore({ ...options, ...(adminAuth ? { adminAuth } : {}), ...(xdsTls && xc ? { xdsTls, wakeTls: { files: xc.envoySdsFiles ?? defaultEnvoySdsFiles(), port: xc.wakePort ?? DEFAULT_KUBERNETES_WAKE_PORT } } : {}) }, log, async (wake) => {
    const pool = options.gatewayAddressPool ? parsePool(options.gatewayAddressPool) : undefined;
    state = new KubernetesState(client, log.child('kubernetes'), {
      controllerName,
      filterWasmPath: options.filterWasmPath,
      ...(wake ? { wake } : {}),
      gatewayAddress: (gw, all) => (pool ? assignAddresses(pool, all).get(keyOf(gw)) : (options.defaultGatewayAddress ?? '127.0.0.1')),
      ...(options.state?.informer ? { informer: options.state.informer } : {}),
      ...(options.state?.batchMs !== undefined ? { batchMs: options.state.batchMs } : {}),
    });
    statusWriter = new StatusWriter(client, (u) => state.informers[informerOf(u.kind)].get(u.namespace, u.name), log.child('status'), isLeader);
    state.on('statuses', (updates) => statusWriter.offer(updates));
    try {
      await state.start();
    } catch (err) {
      state.stop();
      throw err;
    }
    const events = new EventRecorder(client, log.child('events'));
    const provider = new KubernetesProvider(new ScaleClient(client), state, events, log.child('kubernetes-provider'));
    return {
      state,
      providers: { kubernetes: provider, manual: new ManualProvider() },
      ...(peers ? { peers } : {}),
      hostNamespace: (host) => {
        const backend = state.find(host)?.backend;
        return backend ? clusterNamespace(backend.clusterName) : undefined;
      },
      started: (c) => {
        // A large change's garbage (a resync or a first sync of thousands of routes) goes back once every Envoy
        // applied it, as after a large file reload (memory-release.ts); a small one rarely grows the heap enough.
        const release = new ReleaseAfterPush(new MemoryRelease(), c.cache, RELEASE_SETTLE_MS);
        state.on('changed', (urgent) =>
          void c.publisher
            .schedule({ urgent })
            .then((published) => void release.pushed(published.groups))
            .catch((err: Error) => log.error('publish failed', { error: err.message })),
        );
        state.on('observed', (name, event, why) => c.hosts.observe(name, event, why));
        // Anything that changed between the first translation and now.
        void c.publisher.schedule();
        resync = setInterval(() => state.resync(), options.resyncMs ?? 30_000);
        resync.unref();
        if (elector && options.leaderElection) {
          electionDone = elector.run(electionStop.signal);
          share = new TrafficShare({
            client,
            namespace: options.leaderElection.namespace,
            identity: options.leaderElection.identity,
            ...(options.leaderElection.podUid ? { podUid: options.leaderElection.podUid } : {}),
            clock: systemClock,
            log: log.child('traffic-share'),
            ...(options.leaderElection.trafficShare ? { timing: options.leaderElection.trafficShare } : {}),
            local: () => ({ ...c.traffic.localView(), ...heldApplied(c, state) }),
          });
          share.start();
        }
        if (ca && xc && serverCert) {
          gatewayCerts = new GatewayCertificates({
            client,
            namespace: xc.namespace,
            ca,
            clock: systemClock,
            log: certLog,
            gateways: () => ourGateways(state, controllerName),
            secret: (ns, name) => state.informers.secrets.get(ns, name),
            isLeader,
            ...(xc.timing ? { timing: xc.timing } : {}),
          });
          certificates = { server: serverCert, gateways: gatewayCerts, caCertPem: ca.certPem };
          gatewayCerts.start();
          // A new Gateway gets its certificate without waiting for the next check.
          state.on('changed', () => void gatewayCerts?.kick());
        }
      },
      close: async () => {
        clearInterval(resync);
        serverCert?.close();
        await gatewayCerts?.close();
        // Stop acting first, then hand the Lease over (released), so a successor need not wait out its duration.
        electionStop.abort();
        await electionDone;
        await share?.close();
        statusWriter.close();
        state.stop();
      },
    };
  }));
  log.info('watching the cluster', {
    controllerName,
    backends: state.scalable().length,
    adminApi: adminAuth ? 'Kubernetes RBAC (TokenReview + SubjectAccessReview)' : options.adminToken ? 'static token' : 'open (no token)',
    leaderElection: options.leaderElection ? `${options.leaderElection.namespace}/${options.leaderElection.name ?? DEFAULT_LEASE_NAME} as ${options.leaderElection.identity}` : 'off (single replica)',
  });
  return { ...core, state, statusWriter, client, isLeader, ...(elector ? { elector } : {}), ...(certificates ? { certificates } : {}) };
}

function defaultEnvoySdsFiles(): ControlPlaneTlsFiles {
  return { certificateSds: `${DEFAULT_ENVOY_SDS_DIR}/${ENVOY_SDS_FILE_NAMES.certificate}`, caSds: `${DEFAULT_ENVOY_SDS_DIR}/${ENVOY_SDS_FILE_NAMES.ca}` };
}

async function startCoreOrStop<T>(stop: () => void, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (err) {
    stop();
    throw err;
  }
}

/** The Gateways whose GatewayClass names our controller. */
function ourGateways(state: KubernetesState, controllerName: string): GatewayName[] {
  const classes = new Set(
    state.informers.gatewayClasses
      .list()
      .filter((c) => (c.spec as { controllerName?: string } | undefined)?.controllerName === controllerName)
      .map((c) => c.metadata.name),
  );
  return state.informers.gateways
    .list()
    .filter((g) => classes.has((g.spec as { gatewayClassName?: string } | undefined)?.gatewayClassName ?? ''))
    .map((g) => ({ namespace: g.metadata.namespace ?? 'default', name: g.metadata.name }));
}

function informerOf(kind: string): 'gatewayClasses' | 'gateways' | 'httpRoutes' | 'grpcRoutes' | 'policies' {
  switch (kind) {
    case 'GatewayClass':
      return 'gatewayClasses';
    case 'Gateway':
      return 'gateways';
    case 'HTTPRoute':
      return 'httpRoutes';
    case 'GRPCRoute':
      return 'grpcRoutes';
    default:
      return 'policies';
  }
}

/**
 * The backends held in the filter config every connected client of this replica has applied, or nothing when
 * one has not applied the latest (the leader then keeps waiting before it stops the workload).
 */
function heldApplied(c: Core, state: KubernetesState): { heldApplied?: string[] } {
  for (const session of c.ads.connected) {
    const snapshot = c.cache.getSnapshot(session.group);
    const types = session.status().types;
    if (!snapshot || !types.extensionConfig) continue;
    if (types.extensionConfig.ackedVersion !== snapshot.versions.extensionConfig) return {};
  }
  return { heldApplied: [...state.desired().held].sort() };
}
