// `npm run conformance`: the upstream Gateway API conformance suite (sigs.k8s.io/gateway-api v1.4.0, built
// by scripts/conformance-tools.sh) against our controller and the real Envoy, on a local real Kubernetes
// control plane (test/support/kube/cluster.ts). kwok runs no containers, so the suite's echo backends are
// served by test/support/kube/pod-servers.ts on their pods' loopback IPs. Each Gateway gets its own
// loopback address from 127.50.0.0/16 (Envoy binds its listeners there, port 80 included), reported in its
// status, which is where the suite sends its requests.
//   --profiles GATEWAY-HTTP,GATEWAY-GRPC   --run-test NAME   --skip-tests A,B   --report FILE   --debug
import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT, startEnvoy } from '../envoy-bootstrap/envoy.ts';
import { renderBootstrap } from '../envoy-bootstrap/render.ts';
import { startKubeCluster, KUBE_BIN_DIR } from '../test/support/kube/cluster.ts';
import { startPodServers } from '../test/support/kube/pod-servers.ts';
import { FILTER_WASM } from '../test/support/stack.ts';
import { DEFAULT_CONTROLLER_NAME } from '../xds-server/kubernetes/cluster-state.ts';
import { startKubernetesControlPlane } from '../xds-server/kubernetes/control-plane.ts';
import { RestKubeClient } from '../xds-server/kubernetes/rest.ts';
import { createLogger } from '../xds-server/log.ts';

/** Core features, then the extended ones we implement (each passes in the report). */
const SUPPORTED_FEATURES = [
  'Gateway',
  'HTTPRoute',
  'GRPCRoute',
  'ReferenceGrant',
  'HTTPRouteBackendProtocolH2C',
  'HTTPRouteBackendTimeout',
  'HTTPRoutePathRedirect',
  'HTTPRoutePortRedirect',
  'HTTPRouteRequestTimeout',
  'HTTPRouteSchemeRedirect',
].join(',');

const { values } = parseArgs({
  options: {
    profiles: { type: 'string', default: 'GATEWAY-HTTP,GATEWAY-GRPC' },
    'supported-features': { type: 'string', default: SUPPORTED_FEATURES },
    'run-test': { type: 'string' },
    'skip-tests': { type: 'string' },
    report: { type: 'string', default: path.join(REPO_ROOT, 'conformance', 'report.yaml') },
    debug: { type: 'boolean', default: false },
  },
});

const GATEWAY_CLASS = 'scale-to-zero';
const logDir = path.join(REPO_ROOT, '.cache', 'conformance');
mkdirSync(logDir, { recursive: true });
const cpLog = createWriteStream(path.join(logDir, 'control-plane.log'));
const say = (line: string): void => void process.stderr.write(`[conformance] ${line}\n`);

/** The suite's Gateways listen on ports 80 and 443: say so plainly when this process may not bind them. */
async function assertLowPortsBindable(): Promise<void> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new Error(`cannot bind 127.50.0.1:80 (${err.code}): the conformance suite's Gateways use ports 80 and 443; run as root, grant CAP_NET_BIND_SERVICE, or lower net.ipv4.ip_unprivileged_port_start`)),
    );
    server.listen(80, '127.50.0.1', () => resolve());
  });
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

async function main(): Promise<number> {
  await assertLowPortsBindable();
  const started = Date.now();
  const cluster = await startKubeCluster({ log: (l) => cpLog.write(`${l}\n`) });
  const cleanup: (() => Promise<unknown>)[] = [() => cluster.stop()];
  // Ctrl-C (or a CI timeout) stops the suite and everything the harness started.
  let suite: ReturnType<typeof spawn> | undefined;
  const stop = (): void => {
    suite?.kill('SIGTERM');
    void (async () => {
      for (const c of [...cleanup].reverse()) await c().catch(() => {});
      process.exit(130);
    })();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    await cluster.applyCrds();
    const client = new RestKubeClient(cluster.kubeConfig(), 'stz-conformance');
    const pods = startPodServers({ kubeConfig: cluster.kubeConfig(), log: (l) => cpLog.write(`${l}\n`) });
    cleanup.push(() => pods.stop());
    await pods.synced;
    // The suite installs no policy CRD; ours must exist for the controller to start.
    await cluster.applyCrds(path.join(REPO_ROOT, 'deploy', 'crds'));
    const cp = await startKubernetesControlPlane({
      client,
      filterWasmPath: FILTER_WASM,
      gatewayAddressPool: '127.50.0.0/16',
      log: createLogger({ level: values.debug ? 'debug' : 'info', write: (l) => cpLog.write(`${l}\n`) }),
    });
    cleanup.push(() => cp.close());
    const envoy = await startEnvoy({
      bootstrap: renderBootstrap({ nodeId: 'conformance-envoy', xdsAddress: '127.0.0.1', xdsPort: cp.xdsPort }),
      concurrency: 2,
      logLevel: 'warning',
    });
    cleanup.push(() => envoy.stop());
    await client.request('PATCH', `/apis/gateway.networking.k8s.io/v1/gatewayclasses/${GATEWAY_CLASS}?fieldManager=stz-conformance&force=true`, {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'GatewayClass',
      metadata: { name: GATEWAY_CLASS },
      spec: { controllerName: DEFAULT_CONTROLLER_NAME, description: 'envoy-scale-to-zero under the conformance suite' },
    }, 'application/apply-patch+yaml');
    say(`harness up in ${((Date.now() - started) / 1000).toFixed(1)} s; running the suite (logs: ${logDir})`);

    // The suite runs in the log directory: a relative report path is the caller's, resolved here.
    const report = path.resolve(values.report);
    mkdirSync(path.dirname(report), { recursive: true });
    const args = [
      '-test.v',
      '-test.timeout=90m',
      `-kubeconfig=${cluster.kubeconfigPath}`,
      `-gateway-class=${GATEWAY_CLASS}`,
      `-conformance-profiles=${values.profiles}`,
      `-supported-features=${values['supported-features']}`,
      `-report-output=${report}`,
      '-organization=envoy-scale-to-zero',
      '-project=envoy-scale-to-zero',
      '-url=https://example.invalid/envoy-scale-to-zero',
      '-version=0.1.0',
      '-contact=the envoy-scale-to-zero maintainers',
      ...(values['run-test'] ? [`-run-test=${values['run-test']}`] : []),
      ...(values['skip-tests'] ? [`-skip-tests=${values['skip-tests']}`] : []),
      ...(values.debug ? ['-debug'] : []),
    ];
    const suiteLog = createWriteStream(path.join(logDir, 'suite.log'));
    const code = await new Promise<number>((resolve) => {
      const child = spawn(path.join(KUBE_BIN_DIR, 'gateway-conformance.test'), args, { cwd: logDir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, KUBECONFIG: cluster.kubeconfigPath } });
      suite = child;
      for (const s of [child.stdout, child.stderr]) {
        s.on('data', (chunk: Buffer) => {
          suiteLog.write(chunk);
          process.stdout.write(chunk);
        });
      }
      child.once('exit', (c) => resolve(c ?? 1));
    });
    say(`suite finished with exit code ${code} after ${((Date.now() - started) / 1000).toFixed(0)} s; report: ${report}`);
    return code;
  } finally {
    for (const c of cleanup.reverse()) await c().catch(() => {});
  }
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    say(err.stack ?? err.message);
    process.exit(1);
  },
);
