// `npm run kube:up`: a local Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler, kwok) on loopback with the Gateway API CRDs, plus in-process servers for every Ready pod
// (pod IPs are 127.x loopback addresses). Prints the kubeconfig and runs until Ctrl-C.
//   KUBE_POD_CIDR   pod IP range inside 127.0.0.0/8 (default: a free 127.X.0.1/16, X in 100..250)
//   KUBE_NODES      fake nodes (default 2)
//   STZ_KUBE_KEEP_DIR=1  keep the temp dir (logs, etcd data) after stopping
import { startKubeCluster, type KubeCluster } from '../test/support/kube/cluster.ts';
import { startPodServers, type PodServers } from '../test/support/kube/pod-servers.ts';

const log = (line: string): void => console.error(line);

async function main(): Promise<void> {
  let cluster: KubeCluster | undefined;
  let pods: PodServers | undefined;
  let stopping = false;
  const stop = async (code: number): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log('[kube] stopping');
    await pods?.stop().catch((err: unknown) => log(`[kube] pod servers: ${(err as Error).message}`));
    await cluster?.stop().catch((err: unknown) => log(`[kube] cluster: ${(err as Error).message}`));
    process.exit(code);
  };
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));

  const started = Date.now();
  try {
    cluster = await startKubeCluster({
      ...(process.env.KUBE_POD_CIDR ? { podCidr: process.env.KUBE_POD_CIDR } : {}),
      nodes: Number(process.env.KUBE_NODES ?? 2),
      log,
    });
    const crds = await cluster.applyCrds();
    log(`[kube] Gateway API CRDs Established: ${crds.join(', ')}`);
    pods = startPodServers({ kubeConfig: cluster.kubeConfig(), log });
    pods.events.on('error', (err: Error) => log(`[pod-servers] ${err.message}`));
    await pods.synced;
  } catch (err) {
    log(`[kube] ${(err as Error).message}`);
    await stop(1);
    return;
  }
  console.log(`
Kubernetes is up in ${((Date.now() - started) / 1000).toFixed(1)} s (API ${cluster.server}, pod IPs from ${cluster.podCidr}).
  kubeconfig: ${cluster.kubeconfigPath}
  logs:       ${cluster.dir}/logs
Ready pods get an HTTP/1.1 + h2c server on podIP:containerPort in this process. Ctrl-C stops everything.

export KUBECONFIG=${cluster.kubeconfigPath}
`);
}

void main();
