// `npm run kube:up`: the whole system in Kubernetes mode, on loopback. A real local Kubernetes control plane
// (etcd, kube-apiserver, kube-controller-manager, kube-scheduler from pinned Go modules; kwok for nodes and
// pods, with 127.x pod IPs), an in-process server for every Ready pod (kwok runs no containers), our control
// plane in Kubernetes mode (the real CLI, `xds-server/main.ts --kubernetes`), the real Envoy, and the example
// in deploy/examples applied with kubectl (the Gateway on port 10080 instead of 80, and a 60 s idle time so
// the Deployment visibly goes 0 -> 1 -> 0). Ctrl-C stops everything.
//   KUBE_GATEWAY_PORT (10080)  KUBE_IDLE_MS (60000)  KUBE_XDS_PORT (18100)  KUBE_ADMIN_PORT (9912)  KUBE_ENVOY_ADMIN_PORT (9911)
//   KUBE_POD_CIDR (a free 127.X.0.1/16)  STZ_KUBE_KEEP_DIR=1 keeps the cluster's logs and data
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { REPO_ROOT, startEnvoy, type EnvoyProcess } from '../envoy-bootstrap/envoy.ts';
import { renderBootstrap } from '../envoy-bootstrap/render.ts';
import { startKubeCluster, KUBE_BIN_DIR, type KubeCluster } from '../test/support/kube/cluster.ts';
import { startPodServers, type PodServers } from '../test/support/kube/pod-servers.ts';
import { forEachLine } from '../xds-server/stream-lines.ts';

const env = (name: string, fallback: number): number => Number(process.env[name] ?? fallback);
const gatewayPort = env('KUBE_GATEWAY_PORT', 10080);
const idleMs = env('KUBE_IDLE_MS', 60_000);
const xdsPort = env('KUBE_XDS_PORT', 18100);
const adminPort = env('KUBE_ADMIN_PORT', 9912);
const envoyAdminPort = env('KUBE_ENVOY_ADMIN_PORT', 9911);
const kubectl = path.join(KUBE_BIN_DIR, 'kubectl');
const say = (who: string, line: string): void => {
  if (line.trim() !== '') process.stdout.write(`[${who}] ${line}\n`);
};

/** deploy/examples, with the Gateway's port and the policy's idle time made local-friendly. */
function examples(): string {
  const docs: unknown[] = [];
  for (const file of ['gateway.yaml', 'app.yaml']) {
    for (const doc of parseAllDocuments(readFileSync(path.join(REPO_ROOT, 'deploy', 'examples', file), 'utf8'))) {
      const obj = doc.toJS() as { kind?: string; metadata?: { namespace?: string }; spec?: Record<string, unknown> } | null;
      if (!obj?.kind) continue;
      if (obj.kind === 'Gateway') for (const l of obj.spec!.listeners as { port: number }[]) l.port = gatewayPort;
      if (obj.kind === 'ScaleToZeroPolicy') obj.spec!.idleAfterMs = idleMs;
      docs.push(obj);
    }
  }
  const namespace = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'scale-to-zero-system' } };
  return [namespace, ...docs].map((d) => stringify(d)).join('---\n');
}

async function main(): Promise<void> {
  let cluster: KubeCluster | undefined;
  let pods: PodServers | undefined;
  let cp: ChildProcess | undefined;
  let envoy: EnvoyProcess | undefined;
  let stopping = false;
  const stop = async (code: number): Promise<void> => {
    if (stopping) return;
    stopping = true;
    say('kube', 'stopping');
    await envoy?.stop().catch(() => {});
    if (cp && cp.exitCode === null) {
      cp.kill('SIGTERM');
      await new Promise((r) => cp!.once('exit', r));
    }
    await pods?.stop().catch(() => {});
    await cluster?.stop().catch(() => {});
    process.exit(code);
  };
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));

  const started = Date.now();
  try {
    cluster = await startKubeCluster({ ...(process.env.KUBE_POD_CIDR ? { podCidr: process.env.KUBE_POD_CIDR } : {}), log: (l) => say('kube', l) });
    await cluster.applyCrds();
    await cluster.applyCrds(path.join(REPO_ROOT, 'deploy', 'crds'));
    pods = startPodServers({ kubeConfig: cluster.kubeConfig(), log: (l) => say('pods', l) });
    pods.events.on('error', (err: Error) => say('pods', err.message));
    await pods.synced;

    cp = spawn(process.execPath, ['--import', 'tsx', 'xds-server/main.ts', '--kubernetes', '--kubeconfig', cluster.kubeconfigPath, '--xds-port', String(xdsPort), '--admin-port', String(adminPort), '--insecure-xds-plaintext'], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    for (const s of [cp.stdout!, cp.stderr!]) forEachLine(s, (l) => say('control-plane', l));
    cp.once('exit', (code) => {
      if (!stopping) {
        say('kube', `the control plane exited (${code}); stopping`);
        void stop(1);
      }
    });
    envoy = await startEnvoy({
      bootstrap: renderBootstrap({ nodeId: 'kube-up-envoy', xdsAddress: '127.0.0.1', xdsPort, adminPort: envoyAdminPort }),
      concurrency: 2,
      logLevel: 'warning',
    });

    const manifest = path.join(cluster.dir, 'examples.yaml');
    writeFileSync(manifest, examples());
    const applied = spawnSync(kubectl, ['apply', '-f', manifest], { env: { ...process.env, KUBECONFIG: cluster.kubeconfigPath }, encoding: 'utf8' });
    for (const l of `${applied.stdout}${applied.stderr}`.split('\n')) say('kubectl', l);
    if (applied.status !== 0) throw new Error('kubectl apply of deploy/examples failed');
  } catch (err) {
    say('kube', (err as Error).message);
    await stop(1);
    return;
  }
  console.log(`
Kubernetes mode is up in ${((Date.now() - started) / 1000).toFixed(1)} s: API ${cluster.server}, Envoy on 127.0.0.1:${gatewayPort},
control plane admin http://127.0.0.1:${adminPort}, pod IPs from ${cluster.podCidr}. Ctrl-C stops everything.

  export KUBECONFIG=${cluster.kubeconfigPath}
  alias kubectl=${kubectl}
  kubectl -n demo get deployment hello -w                   # 0 now; 1 after the request; 0 again ${idleMs / 1000} s after the last one
  curl -H 'Host: hello.example.com' http://127.0.0.1:${gatewayPort}/hostname   # held while the Deployment wakes
  kubectl -n demo get scaletozeropolicy,httproute hello      # status: Accepted, ResolvedRefs
  kubectl -n demo get events                                 # ScaledUpFromZero, ScaledToZero
  # the admin API takes a Kubernetes token and asks RBAC (this is the cluster admin's; see deploy/rbac.yaml):
  curl -H 'Authorization: Bearer ${cluster.token}' http://127.0.0.1:${adminPort}/v1/hosts   # phase, wakeCount, lastError
`);
}

void main();
