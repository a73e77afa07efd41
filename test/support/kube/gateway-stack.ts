// Kubernetes mode end to end: a real local Kubernetes control plane (test/support/kube/cluster.ts), "the
// pods" as local servers on their loopback pod IPs (pod-servers.ts), our control plane in Kubernetes mode
// (in-process), and the real Envoy. Objects are applied server-side, as a user's `kubectl apply` would.
import path from 'node:path';
import { REPO_ROOT, startEnvoy, type EnvoyProcess } from '../../../envoy-bootstrap/envoy.ts';
import { renderBootstrap } from '../../../envoy-bootstrap/render.ts';
import { startKubernetesControlPlane, type KubernetesControlPlane, type KubernetesControlPlaneOptions } from '../../../xds-server/kubernetes/control-plane.ts';
import { RestKubeClient, type KubeClient, type KubeObject } from '../../../xds-server/kubernetes/rest.ts';
import { createLogger, silentLogger } from '../../../xds-server/log.ts';
import { eventually } from '../eventually.ts';
import { assertFilterBuilt, defaultAdsApi, FILTER_WASM } from '../stack.ts';
import { startKubeCluster, type KubeCluster } from './cluster.ts';
import { startPodServers, type PodServers } from './pod-servers.ts';

export const OUR_CRD_DIR = path.join(REPO_ROOT, 'deploy', 'crds');
export const CONTROLLER_NAME = 'scaletozero.dev/gateway-controller';

export interface GatewayStack {
  cluster: KubeCluster;
  client: RestKubeClient;
  pods: PodServers;
  cp: KubernetesControlPlane;
  envoy: EnvoyProcess;
  /** Server-side apply, field manager "stz-test". */
  apply(...objects: KubeObject[]): Promise<void>;
  get(path: string): Promise<KubeObject>;
  remove(path: string): Promise<void>;
  adminFetch(pathAndQuery: string, init?: RequestInit): Promise<Response>;
  close(): Promise<void>;
}

export interface GatewayStackOptions {
  /** Default: a free range the cluster harness picks. */
  podCidr?: string;
  controlPlane?: Partial<KubernetesControlPlaneOptions>;
  /** The stack Envoy's node.metadata (e.g. the gateway it serves); default none: every gateway. */
  envoyMetadata?: Record<string, string>;
  /** The stack Envoy's ADS variant; default $STZ_E2E_ADS_API, else state of the world. */
  adsApi?: 'GRPC' | 'DELTA_GRPC';
}

const testLog = process.env.STZ_TEST_LOG ? createLogger({ level: 'debug' }) : silentLogger;

const PLURAL: Record<string, string> = {
  Namespace: 'namespaces',
  Service: 'services',
  Deployment: 'deployments',
  StatefulSet: 'statefulsets',
  GatewayClass: 'gatewayclasses',
  Gateway: 'gateways',
  HTTPRoute: 'httproutes',
  GRPCRoute: 'grpcroutes',
  ReferenceGrant: 'referencegrants',
  Secret: 'secrets',
  ScaleToZeroPolicy: 'scaletozeropolicies',
  EndpointSlice: 'endpointslices',
  HorizontalPodAutoscaler: 'horizontalpodautoscalers',
};

export function objectPath(obj: Pick<KubeObject, 'apiVersion' | 'kind' | 'metadata'>): string {
  const plural = PLURAL[obj.kind!];
  if (!plural) throw new Error(`objectPath: unknown kind ${obj.kind}`);
  const base = obj.apiVersion!.includes('/') ? `/apis/${obj.apiVersion}` : `/api/${obj.apiVersion}`;
  const ns = obj.metadata.namespace ? `/namespaces/${obj.metadata.namespace}` : '';
  return `${base}${ns}/${plural}/${obj.metadata.name}`;
}

/** Server-side apply with field manager "stz-test", as a user's `kubectl apply --server-side` would. */
export async function applyObjects(client: KubeClient, ...objects: KubeObject[]): Promise<void> {
  for (const obj of objects) await client.request('PATCH', `${objectPath(obj)}?fieldManager=stz-test&force=true`, obj, 'application/apply-patch+yaml');
}

/** A local cluster with the Gateway API CRDs and ours, an admin client, and "the pods" served (synced). */
export async function startClusterWithPods(): Promise<{ cluster: KubeCluster; client: RestKubeClient; pods: PodServers }> {
  const cluster = await startKubeCluster();
  try {
    await cluster.applyCrds();
    await cluster.applyCrds(OUR_CRD_DIR);
    const pods = startPodServers({ kubeConfig: cluster.kubeConfig() });
    await pods.synced;
    return { cluster, client: new RestKubeClient(cluster.kubeConfig(), 'stz-test'), pods };
  } catch (err) {
    await cluster.stop();
    throw err;
  }
}

export async function startGatewayStack(options: GatewayStackOptions): Promise<GatewayStack> {
  assertFilterBuilt();
  const cluster = await startKubeCluster(options.podCidr ? { podCidr: options.podCidr } : {});
  const cleanup: (() => Promise<void>)[] = [() => cluster.stop()];
  const closeAll = async (): Promise<void> => {
    for (const c of cleanup.reverse()) await c().catch(() => {});
  };
  try {
    await cluster.applyCrds();
    await cluster.applyCrds(OUR_CRD_DIR);
    const client = new RestKubeClient(cluster.kubeConfig(), 'stz-test');
    const pods = startPodServers({ kubeConfig: cluster.kubeConfig() });
    cleanup.push(() => pods.stop());
    await pods.synced;
    const cp = await startKubernetesControlPlane({
      client,
      filterWasmPath: FILTER_WASM,
      log: testLog,
      ...options.controlPlane,
    });
    cleanup.push(() => cp.close());
    const envoy = await startEnvoy({
      bootstrap: renderBootstrap({ nodeId: `kube-test-${process.pid}-${Date.now()}`, xdsAddress: '127.0.0.1', xdsPort: cp.xdsPort, ...(options.envoyMetadata ? { metadata: options.envoyMetadata } : {}), apiType: options.adsApi ?? defaultAdsApi() }),
      concurrency: 2,
      logLevel: 'warning',
    });
    cleanup.push(() => envoy.stop());
    const apply = (...objects: KubeObject[]): Promise<void> => applyObjects(client, ...objects);
    return {
      cluster,
      client,
      pods,
      cp,
      envoy,
      apply,
      get: (p) => client.get(p),
      remove: async (p) => void (await client.request('DELETE', p, undefined)),
      adminFetch: (p, init) => fetch(cp.adminUrl + p, init),
      close: closeAll,
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

/** Waits until Envoy has an active listener on the port (it binds only once routes and the filter config arrived). */
export async function waitForGatewayPort(envoy: EnvoyProcess, port: number): Promise<void> {
  await eventually(
    async () => {
      const listeners = (await (await fetch(`${envoy.adminUrl}/listeners?format=json`)).json()) as { listener_statuses?: { local_address?: { socket_address?: { port_value?: number } } }[] };
      if (!listeners.listener_statuses?.some((l) => l.local_address?.socket_address?.port_value === port)) throw new Error(`no listener on ${port} yet`);
      const stats = await envoy.stats('listener_manager.total_listeners');
      if (stats.get('listener_manager.total_listeners_warming') !== 0) throw new Error('a listener is still warming');
    },
    { timeoutMs: 20_000, what: `Envoy listening on ${port}` },
  );
}
