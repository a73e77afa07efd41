// deploy/: what a user applies to run the gateway on a cluster. Checked three ways:
//  1. statically: the Envoy bootstrap in the ConfigMap is the renderer's output, the names and ports the
//     files share agree, the ClusterRole is exactly what the control plane's code does, the control plane
//     image copies everything main.ts imports;
//  2. by a real API server: every manifest (deploy/ via kustomize, deploy/examples/) passes server-side
//     dry-run with strict field validation, and broken copies do not; `kubectl apply -k deploy` rolls out
//     pods that the restricted Pod Security Standard admits; the ServiceAccount's token is allowed exactly
//     what the control plane needs (SelfSubjectAccessReview) and denied the rest;
//  3. by running the control plane with that ServiceAccount's token: in-process, it syncs, writes statuses,
//     wakes the example app 0 -> 1 through /scale (pods served by pod-servers.ts on loopback), records the
//     Event and scales it back to 0; then its CLI (the image's entrypoint) with the Deployment's own args.
// Needs `bash scripts/k8s-tools.sh` (kube binaries and kubectl) and `bash scripts/setup.sh` (Envoy, filter).
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import {
  ADMIN_PORT,
  CONTROL_PLANE_DNS,
  CONTROL_PLANE_SERVICE,
  CONTROL_PLANE_XDS_DNS,
  CONTROL_PLANE_XDS_SERVICE,
  DEPLOY_DIR,
  ENVOY_ADMIN_PORT,
  ENVOY_BOOTSTRAP_DIR,
  EXAMPLE_GATEWAY,
  GATEWAY_SDS_FILES,
  gatewaySdsTexts,
  XDS_CLIENT_SECRET_DIR,
  WAKE_PORT,
  FILTER_WASM_IN_IMAGE,
  GATEWAY_BOOTSTRAP,
  GATEWAY_BOOTSTRAP_FILE,
  gatewayBootstrapText,
  NAMESPACE,
  XDS_PORT,
} from '../../deploy/render-bootstrap.ts';
import { ENVOY_BIN, REPO_ROOT } from '../../envoy-bootstrap/envoy.ts';
import { renderBootstrap } from '../../envoy-bootstrap/render.ts';
import { BUFFER_FILTER_NAME, CONTROL_PLANE_CLUSTER } from '../../snapshots/names.ts';
import { TYPE_URLS } from '../../snapshots/type-urls.ts';
import { DEFAULT_CONTROLLER_NAME, WATCHED } from '../../xds-server/kubernetes/cluster-state.ts';
import { startKubernetesControlPlane, type KubernetesControlPlane } from '../../xds-server/kubernetes/control-plane.ts';
import { LEASE_VERBS } from '../../xds-server/kubernetes/leader-election.ts';
import { ADMIN_AUTH_PERMISSIONS } from '../../xds-server/kubernetes/admin-auth.ts';
import { CA_SECRET_NAME, CERTIFICATE_SECRET_VERBS, gatewaySecretName } from '../../xds-server/kubernetes/xds-certificates.ts';
import { createCertificateAuthority, gatewayIdentity, identityUris, issueCertificate } from '../../xds-server/security/pki.ts';
import { TRAFFIC_RECORD_VERBS } from '../../xds-server/kubernetes/traffic-share-sync.ts';
import { RestKubeClient, type KubeObject } from '../../xds-server/kubernetes/rest.ts';
import { FIELD_MANAGER } from '../../xds-server/kubernetes/scale.ts';
import { statusPath } from '../../xds-server/kubernetes/status-writer.ts';
import { createLogger } from '../../xds-server/log.ts';
import { eventually } from '../support/eventually.ts';
import { KUBE_BIN_DIR, startKubeCluster, type KubeCluster } from '../support/kube/cluster.ts';
import { startPodServers, type PodServers } from '../support/kube/pod-servers.ts';
import { freePort } from '../support/ports.ts';
import { asServiceAccount, canI, describeQuestion, writeTokenKubeconfig, type ResourceQuestion, type ServiceAccountIdentity } from '../support/kube/service-account.ts';
import { assertFilterBuilt, FILTER_WASM } from '../support/stack.ts';

const KUBECTL = path.join(KUBE_BIN_DIR, 'kubectl');
const EXAMPLES_DIR = path.join(DEPLOY_DIR, 'examples');
const EXAMPLE_FILES = ['gateway.yaml', 'app.yaml'];
const SERVICE_ACCOUNT = 'envoy-scale-to-zero';
const APP_NS = 'demo';
const APP = 'hello';
/** <namespace>-<service>-<port> of the example's Service port 80. */
const BACKEND = `${APP_NS}-${APP}-80`;

// --- helpers ----------------------------------------------------------------------------------------------

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], options: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: REPO_ROOT, env: options.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
  });
}

function objectsOf(text: string): KubeObject[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as KubeObject | null)
    .filter((o): o is KubeObject => o !== null && typeof o === 'object' && typeof o.kind === 'string');
}

async function kustomizeBuild(dir: string): Promise<KubeObject[]> {
  const r = await run(KUBECTL, ['kustomize', dir]);
  if (r.code !== 0) throw new Error(`kubectl kustomize ${dir} failed: ${r.stderr}`);
  return objectsOf(r.stdout);
}

const exampleObjects = (): KubeObject[] => EXAMPLE_FILES.flatMap((f) => objectsOf(readFileSync(path.join(EXAMPLES_DIR, f), 'utf8')));

const id = (o: KubeObject): string => `${o.kind}/${o.metadata.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata.name}`;

function find(objects: KubeObject[], kind: string, name: string): KubeObject {
  const o = objects.find((x) => x.kind === kind && (x.metadata.name === name || (kind === 'ConfigMap' && x.metadata.name.startsWith(`${name}-`))));
  if (!o) throw new Error(`no ${kind} ${name} in ${objects.map(id).join(', ')}`);
  return o;
}

interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  ports?: { name?: string; containerPort: number }[];
  env?: { name: string; valueFrom?: unknown }[];
  volumeMounts?: { name: string; mountPath: string }[];
  securityContext?: Record<string, unknown>;
  readinessProbe?: { exec?: { command: string[] } };
}
interface PodSpec {
  serviceAccountName?: string;
  automountServiceAccountToken?: boolean;
  securityContext?: Record<string, unknown>;
  containers: Container[];
  volumes?: { name: string; configMap?: { name: string }; secret?: { secretName: string; defaultMode?: number } }[];
}
const podSpec = (deployment: KubeObject): PodSpec => (deployment.spec as { template: { spec: PodSpec } }).template.spec;
const servicePorts = (svc: KubeObject): { name: string; port: number; targetPort: number | string }[] => (svc.spec as { ports: { name: string; port: number; targetPort: number | string }[] }).ports;

/** --flag=value args of a container, as a map (flags without a value map to ''). */
function flags(args: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const a of args) {
    const m = /^--([^=]+)(?:=(.*))?$/.exec(a);
    if (m) out.set(m[1]!, m[2] ?? '');
  }
  return out;
}

/** Top-level repo dirs of every relative module reachable from `entry` (type-only imports included: a superset). */
function importedDirs(entry: string): Set<string> {
  const seen = new Set<string>();
  const stack = [path.resolve(REPO_ROOT, entry)];
  while (stack.length > 0) {
    const file = stack.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)'(\.{1,2}\/[^']+)'/g)) {
      const target = path.resolve(path.dirname(file), m[1]!);
      if (existsSync(target)) stack.push(target);
    }
  }
  return new Set([...seen].map((f) => path.relative(REPO_ROOT, f).split(path.sep)[0]!));
}

interface Condition {
  type: string;
  status: string;
  reason: string;
}
const condition = (conditions: Condition[] | undefined, type: string): Condition | undefined => conditions?.find((c) => c.type === type);

/** `group|resource|verb` for every permission a ClusterRole grants. */
function grants(role: KubeObject): string[] {
  const rules = (role.rules ?? []) as { apiGroups?: string[]; resources?: string[]; verbs?: string[]; resourceNames?: string[]; nonResourceURLs?: string[] }[];
  const out: string[] = [];
  for (const r of rules) {
    expect(r.nonResourceURLs, 'no nonResourceURLs').to.equal(undefined);
    expect(r.resourceNames, 'no resourceNames').to.equal(undefined);
    for (const g of r.apiGroups ?? []) for (const res of r.resources ?? []) for (const v of r.verbs ?? []) out.push(`${g}|${res}|${v}`);
  }
  return out.sort();
}

/** What xds-server/kubernetes/ does, derived from its own constants. */
function permissionsTheCodeNeeds(): string[] {
  const out: string[] = [];
  // Informers: list + watch of every WATCHED collection.
  for (const p of Object.values(WATCHED)) {
    const m = /^\/(?:api\/v1|apis\/([^/]+)\/[^/]+)\/([^/]+)$/.exec(p);
    if (!m) throw new Error(`unexpected watch path ${p}`);
    for (const verb of ['list', 'watch']) out.push(`${m[1] ?? ''}|${m[2]}|${verb}`);
  }
  // StatusWriter: merge patch of each kind's status subresource.
  const statusKinds = [
    { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GatewayClass' },
    { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', namespace: 'ns' },
    { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', namespace: 'ns' },
    { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GRPCRoute', namespace: 'ns' },
    { apiVersion: 'scaletozero.dev/v1alpha1', kind: 'ScaleToZeroPolicy', namespace: 'ns' },
  ];
  for (const k of statusKinds) {
    const m = /^\/apis\/([^/]+)\/[^/]+(?:\/namespaces\/[^/]+)?\/([^/]+)\/[^/]+\/status$/.exec(statusPath({ ...k, name: 'x' }));
    if (!m) throw new Error(`unexpected status path for ${k.kind}`);
    out.push(`${m[1]}|${m[2]}/status|patch`);
  }
  // ScaleClient: GET + guarded merge PATCH of the built-in workloads' /scale.
  for (const res of ['deployments/scale', 'statefulsets/scale']) for (const verb of ['get', 'patch']) out.push(`apps|${res}|${verb}`);
  // EventRecorder: POST /api/v1/namespaces/<ns>/events.
  out.push('|events|create');
  // The admin API's callers (admin-auth.ts): TokenReview and SubjectAccessReview.
  out.push(...ADMIN_AUTH_PERMISSIONS);
  return out.sort();
}

// --- 1. static ---------------------------------------------------------------------------------------------

describe('deploy/: the manifests, read', function () {
  this.timeout(60_000);
  let objects: KubeObject[];

  before(async () => {
    if (!existsSync(KUBECTL)) throw new Error(`${KUBECTL} is missing: run \`bash scripts/k8s-tools.sh\``);
    objects = await kustomizeBuild(DEPLOY_DIR);
  });

  it('kustomize builds the namespace, our CRD, the ServiceAccount and its RBAC, the control plane and the gateway', () => {
    expect(objects.map((o) => `${o.kind}/${o.metadata.name.replace(/^gateway-bootstrap-.*/, 'gateway-bootstrap-<hash>')}`).sort()).to.deep.equal(
      [
        'Namespace/scale-to-zero-system',
        'CustomResourceDefinition/scaletozeropolicies.scaletozero.dev',
        'ServiceAccount/envoy-scale-to-zero',
        'ClusterRole/envoy-scale-to-zero',
        'ClusterRole/envoy-scale-to-zero-admin-viewer',
        'ClusterRole/envoy-scale-to-zero-host-operator',
        'ClusterRoleBinding/envoy-scale-to-zero',
        'Role/envoy-scale-to-zero-leader-election',
        'RoleBinding/envoy-scale-to-zero-leader-election',
        'Role/envoy-scale-to-zero-xds-certificates',
        'RoleBinding/envoy-scale-to-zero-xds-certificates',
        'ConfigMap/gateway-bootstrap-<hash>',
        'Deployment/control-plane',
        'Service/control-plane',
        'Service/control-plane-xds',
        'PodDisruptionBudget/control-plane',
        'Deployment/gateway',
        'Service/gateway',
        'NetworkPolicy/control-plane',
      ].sort(),
    );
    for (const o of objects) {
      if (['Namespace', 'CustomResourceDefinition', 'ClusterRole', 'ClusterRoleBinding'].includes(o.kind!)) expect(o.metadata.namespace, id(o)).to.equal(undefined);
      else expect(o.metadata.namespace, id(o)).to.equal(NAMESPACE);
    }
    // The CRD is the checked-in file, only labelled by kustomize.
    const crd = find(objects, 'CustomResourceDefinition', 'scaletozeropolicies.scaletozero.dev');
    const file = parseYaml(readFileSync(path.join(DEPLOY_DIR, 'crds', 'scaletozero.dev_scaletozeropolicies.yaml'), 'utf8')) as KubeObject;
    expect(crd.spec).to.deep.equal(file.spec);
  });

  it('deploy/gateway-bootstrap.yaml equals the renderer\'s output (run "npx tsx deploy/render-bootstrap.ts" after changing render.ts)', () => {
    expect(readFileSync(GATEWAY_BOOTSTRAP_FILE, 'utf8')).to.equal(gatewayBootstrapText());
    // Every replica, by the headless Service's DNS name: the renderer makes that a STRICT_DNS cluster, which
    // has one endpoint per ready pod.
    const rendered = renderBootstrap(GATEWAY_BOOTSTRAP) as { static_resources: { clusters: { type: string; load_assignment: unknown }[] } };
    expect(rendered.static_resources.clusters[0]!.type).to.equal('STRICT_DNS');
    expect(JSON.stringify(rendered.static_resources.clusters[0]!.load_assignment)).to.include(`"address":"${CONTROL_PLANE_XDS_DNS}","port_value":${XDS_PORT}`);
    // Mutual TLS: the SDS files (in the same ConfigMap) name the mounted Secret's files and watch its directory.
    expect(JSON.stringify(rendered.static_resources.clusters[0])).to.include(`"path":"${ENVOY_BOOTSTRAP_DIR}/${GATEWAY_SDS_FILES.certificate.key}"`);
    const sds = gatewaySdsTexts();
    expect(readFileSync(GATEWAY_SDS_FILES.certificate.file, 'utf8')).to.equal(sds.certificate);
    expect(readFileSync(GATEWAY_SDS_FILES.ca.file, 'utf8')).to.equal(sds.ca);
  });

  it('the gateway Deployment mounts the generated ConfigMap, whose bootstrap.yaml is that file', () => {
    const cm = find(objects, 'ConfigMap', 'gateway-bootstrap');
    expect((cm.data as Record<string, string>)['bootstrap.yaml']).to.equal(readFileSync(GATEWAY_BOOTSTRAP_FILE, 'utf8'));
    const spec = podSpec(find(objects, 'Deployment', 'gateway'));
    const volume = spec.volumes?.find((v) => v.configMap);
    expect(volume?.configMap?.name).to.equal(cm.metadata.name);
    const envoy = spec.containers[0]!;
    const mount = envoy.volumeMounts?.find((m) => m.name === volume!.name);
    const args = envoy.args!;
    expect(path.join(mount!.mountPath, 'bootstrap.yaml')).to.equal(args[args.indexOf('--config-path') + 1]);
    // A node id of its own per pod.
    expect(args[args.indexOf('--service-node') + 1]).to.equal('$(POD_NAME)');
    expect(envoy.env?.find((e) => e.name === 'POD_NAME')?.valueFrom).to.deep.equal({ fieldRef: { fieldPath: 'metadata.name' } });
    // The probes talk to the bootstrap's admin port.
    expect(envoy.readinessProbe?.exec?.command.join(' ')).to.include(`/dev/tcp/127.0.0.1/${ENVOY_ADMIN_PORT}`);
    // The SDS files are in the ConfigMap, under the keys the bootstrap names.
    expect(mount!.mountPath).to.equal(ENVOY_BOOTSTRAP_DIR);
    const sds = gatewaySdsTexts();
    expect((cm.data as Record<string, string>)[GATEWAY_SDS_FILES.certificate.key]).to.equal(sds.certificate);
    expect((cm.data as Record<string, string>)[GATEWAY_SDS_FILES.ca.key]).to.equal(sds.ca);
    // The example Gateway's certificate Secret, mounted where the SDS files point, readable by Envoy's group only.
    const secretVolume = spec.volumes?.find((v) => v.secret);
    expect(secretVolume?.secret).to.deep.equal({ secretName: gatewaySecretName(EXAMPLE_GATEWAY), defaultMode: 0o440 });
    expect(envoy.volumeMounts?.find((m) => m.name === secretVolume!.name)?.mountPath).to.equal(XDS_CLIENT_SECRET_DIR);
    expect(spec.securityContext?.fsGroup).to.equal(spec.securityContext?.runAsGroup);
    const exampleGateway = exampleObjects().find((o) => o.kind === 'Gateway')!;
    expect({ namespace: exampleGateway.metadata.namespace, name: exampleGateway.metadata.name }).to.deep.equal(EXAMPLE_GATEWAY);
  });

  it('the bootstrap passes "envoy --mode validate" with the pod\'s flags (validate mode stubs DNS: nothing is resolved; the SDS files and a certificate Secret in a temp dir stand in for the pod\'s mounts)', async function () {
    if (!existsSync(ENVOY_BIN)) this.skip();
    const dir = await mkdtemp(path.join(os.tmpdir(), 'stz-deploy-validate-'));
    try {
      // The same rendering with the two mount points moved into the temp dir.
      const secretDir = path.join(dir, 'secret');
      await mkdir(secretDir);
      const ca = await createCertificateAuthority({ commonName: 'validate', validForMs: 3600_000 });
      const leaf = await issueCertificate(ca, { commonName: 'validate', role: 'client', uris: [gatewayIdentity(EXAMPLE_GATEWAY.namespace, EXAMPLE_GATEWAY.name)], validForMs: 3600_000 });
      await writeFile(path.join(secretDir, 'tls.crt'), leaf.certPem);
      await writeFile(path.join(secretDir, 'tls.key'), leaf.keyPem);
      await writeFile(path.join(secretDir, 'ca.crt'), ca.certPem);
      const sds = gatewaySdsTexts(secretDir);
      await writeFile(path.join(dir, GATEWAY_SDS_FILES.certificate.key), sds.certificate);
      await writeFile(path.join(dir, GATEWAY_SDS_FILES.ca.key), sds.ca);
      const bootstrap = path.join(dir, 'bootstrap.yaml');
      await writeFile(bootstrap, readFileSync(GATEWAY_BOOTSTRAP_FILE, 'utf8').split(`${ENVOY_BOOTSTRAP_DIR}/`).join(`${dir}/`));
      const r = await run(ENVOY_BIN, ['--mode', 'validate', '--config-path', bootstrap, '--service-node', 'gateway-7d9f-abcde', '--concurrency', '2', '--log-level', 'warn']);
      expect(r.code, r.stdout + r.stderr).to.equal(0);
      expect(r.stdout + r.stderr).to.match(/OK/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('names and ports agree: wake address, xDS address, Services, the filter path the Envoy image provides, the example Gateway\'s port', () => {
    const cpDeploy = find(objects, 'Deployment', 'control-plane');
    const cp = podSpec(cpDeploy).containers[0]!;
    const f = flags(cp.args!);
    expect(f.has('kubernetes')).to.equal(true);
    expect(f.get('xds-address')).to.equal('0.0.0.0');
    expect(f.get('admin-address')).to.equal('0.0.0.0');
    expect(f.get('wake-address')).to.equal(CONTROL_PLANE_DNS);
    expect(f.get('xds-port')).to.equal(String(XDS_PORT));
    expect(f.get('admin-port')).to.equal(String(ADMIN_PORT));
    expect(f.get('filter')).to.equal(FILTER_WASM_IN_IMAGE);
    expect(f.get('controller-name') ?? DEFAULT_CONTROLLER_NAME).to.equal(DEFAULT_CONTROLLER_NAME);
    expect(podSpec(cpDeploy).serviceAccountName).to.equal(SERVICE_ACCOUNT);
    // Two replicas, a rollout that adds before it removes, and a budget that keeps one through drains.
    expect(cpDeploy.spec).to.deep.include({ replicas: 2, strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } } });
    const pdb = find(objects, 'PodDisruptionBudget', 'control-plane');
    const podLabels = (cpDeploy.spec as { template: { metadata: { labels: Record<string, string> } } }).template.metadata.labels;
    expect((pdb.spec as { minAvailable: number }).minAvailable).to.equal(1);
    for (const [k, v] of Object.entries((pdb.spec as { selector: { matchLabels: Record<string, string> } }).selector.matchLabels)) expect(podLabels[k], k).to.equal(v);
    // The headless Service the bootstrap names selects the same pods and exposes xDS.
    expect(CONTROL_PLANE_XDS_DNS.startsWith(`${CONTROL_PLANE_XDS_SERVICE}.${NAMESPACE}.svc`)).to.equal(true);
    const xdsSvc = find(objects, 'Service', CONTROL_PLANE_XDS_SERVICE);
    expect((xdsSvc.spec as { clusterIP: string }).clusterIP).to.equal('None');
    for (const [k, v] of Object.entries((xdsSvc.spec as { selector: Record<string, string> }).selector)) expect(podLabels[k], k).to.equal(v);
    const xdsPort = servicePorts(xdsSvc).find((x) => x.port === XDS_PORT);
    expect(xdsPort?.targetPort).to.equal('xds');
    // The Service the DNS name points at exposes the ports under the same numbers (the wake cluster uses the wake port).
    expect(CONTROL_PLANE_DNS.startsWith(`${CONTROL_PLANE_SERVICE}.${NAMESPACE}.svc`)).to.equal(true);
    const cpSvc = find(objects, 'Service', CONTROL_PLANE_SERVICE);
    const containerPort = (name: string | number): number | undefined => (typeof name === 'number' ? name : cp.ports?.find((p) => p.name === name)?.containerPort);
    expect(f.get('wake-port')).to.equal(String(WAKE_PORT));
    expect(f.get('envoy-sds-dir')).to.equal(ENVOY_BOOTSTRAP_DIR);
    for (const want of [XDS_PORT, ADMIN_PORT, WAKE_PORT]) {
      const p = servicePorts(cpSvc).find((x) => x.port === want);
      expect(p, `control-plane Service port ${want}`).to.not.equal(undefined);
      expect(containerPort(p!.targetPort)).to.equal(want);
    }
    // Envoy's image has the filter where --filter says.
    const dockerfile = readFileSync(path.join(DEPLOY_DIR, 'images', 'envoy.Dockerfile'), 'utf8');
    expect(dockerfile).to.match(/^FROM envoyproxy\/envoy:v1\.40\.0$/m);
    expect(dockerfile).to.match(new RegExp(`^COPY --from=filter /src/filter/build/filter\\.wasm ${FILTER_WASM_IN_IMAGE.replace(/\./g, '\\.')}$`, 'm'));
    // Every example Gateway listener port is a port of the gateway Service, sent to the same port in the pod.
    const gwSvc = find(objects, 'Service', 'gateway');
    const envoy = podSpec(find(objects, 'Deployment', 'gateway')).containers[0]!;
    for (const gw of exampleObjects().filter((o) => o.kind === 'Gateway')) {
      for (const l of (gw.spec as { listeners: { port: number }[] }).listeners) {
        const p = servicePorts(gwSvc).find((x) => x.port === l.port);
        expect(p, `gateway Service port ${l.port}`).to.not.equal(undefined);
        expect(p!.targetPort).to.equal(l.port);
        expect(envoy.ports?.some((c) => c.containerPort === l.port)).to.equal(true);
      }
    }
    const gatewayClass = exampleObjects().find((o) => o.kind === 'GatewayClass')!;
    expect((gatewayClass.spec as { controllerName: string }).controllerName).to.equal(DEFAULT_CONTROLLER_NAME);
  });

  it('NetworkPolicy: the control plane\'s xDS and wake ports only from the gateway\'s Envoy pods; its admin port only from pods labelled scaletozero.dev/admin-api-client=true (kwok does not enforce policies: this checks what they say)', () => {
    const policy = find(objects, 'NetworkPolicy', 'control-plane');
    interface Peer {
      podSelector?: { matchLabels?: Record<string, string> };
      namespaceSelector?: { matchLabels?: Record<string, string> };
    }
    const spec = policy.spec as { podSelector: { matchLabels: Record<string, string> }; policyTypes: string[]; ingress: { from: Peer[]; ports: { port: string | number; protocol: string }[] }[] };
    const labelsOf = (name: string): Record<string, string> => (find(objects, 'Deployment', name).spec as { template: { metadata: { labels: Record<string, string> } } }).template.metadata.labels;
    const selects = (selector: Record<string, string> | undefined, labels: Record<string, string>): boolean => Object.entries(selector ?? {}).every(([k, v]) => labels[k] === v);
    // It selects exactly the control plane's pods, and only ingress is restricted.
    expect(selects(spec.podSelector.matchLabels, labelsOf('control-plane'))).to.equal(true);
    expect(selects(spec.podSelector.matchLabels, labelsOf('gateway'))).to.equal(false);
    expect(spec.policyTypes).to.deep.equal(['Ingress']);
    // Named ports resolve to the container's xDS and admin ports.
    const container = podSpec(find(objects, 'Deployment', 'control-plane')).containers[0]!;
    const portNumber = (p: string | number): number | undefined => (typeof p === 'number' ? p : container.ports?.find((c) => c.name === p)?.containerPort);
    /** Which ports a pod with these labels (in this or another namespace) may reach. */
    const reachable = (labels: Record<string, string>, sameNamespace: boolean): number[] => {
      const out = new Set<number>();
      for (const rule of spec.ingress) {
        const admitted = rule.from.some((peer) => (peer.namespaceSelector !== undefined ? Object.keys(peer.namespaceSelector.matchLabels ?? {}).length === 0 : sameNamespace) && selects(peer.podSelector?.matchLabels, labels));
        if (admitted) for (const p of rule.ports) out.add(portNumber(p.port)!);
      }
      return [...out].sort((a, b) => a - b);
    };
    expect(reachable(labelsOf('gateway'), true), 'the gateway Envoys').to.deep.equal([XDS_PORT, WAKE_PORT].sort((a, b) => a - b));
    expect(reachable(labelsOf('gateway'), false), 'gateway-labelled pods of another namespace').to.deep.equal([]);
    expect(reachable({ 'scaletozero.dev/admin-api-client': 'true' }, false), 'a labelled admin client anywhere').to.deep.equal([ADMIN_PORT]);
    expect(reachable({ app: 'anything' }, true), 'any other pod').to.deep.equal([]);
    expect(reachable({ 'app.kubernetes.io/component': 'gateway' }, true), 'a pod with only some of the gateway labels').to.deep.equal([]);
    for (const rule of spec.ingress) for (const p of rule.ports) expect(p.protocol).to.equal('TCP');
  });

  it('both pods: non-root, read-only root filesystem, every capability dropped, no privilege escalation; Envoy gets no API token', () => {
    for (const name of ['control-plane', 'gateway']) {
      const spec = podSpec(find(objects, 'Deployment', name));
      expect(spec.securityContext?.runAsNonRoot, name).to.equal(true);
      expect(spec.securityContext?.seccompProfile, name).to.deep.equal({ type: 'RuntimeDefault' });
      for (const c of spec.containers) {
        expect(c.securityContext?.readOnlyRootFilesystem, name).to.equal(true);
        expect(c.securityContext?.allowPrivilegeEscalation, name).to.equal(false);
        expect(c.securityContext?.capabilities, name).to.deep.equal({ drop: ['ALL'] });
      }
    }
    expect(podSpec(find(objects, 'Deployment', 'gateway')).automountServiceAccountToken).to.equal(false);
  });

  it('the ClusterRole grants exactly what the control plane\'s code does (informers, status writer, scale client, events)', () => {
    const role = find(objects, 'ClusterRole', 'envoy-scale-to-zero');
    expect(grants(role)).to.deep.equal(permissionsTheCodeNeeds());
    const binding = find(objects, 'ClusterRoleBinding', 'envoy-scale-to-zero');
    expect(binding.roleRef).to.deep.equal({ apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'envoy-scale-to-zero' });
    expect(binding.subjects).to.deep.equal([{ kind: 'ServiceAccount', name: SERVICE_ACCOUNT, namespace: NAMESPACE }]);
    // The Lease, in the control plane's own namespace only.
    const leaseRole = find(objects, 'Role', 'envoy-scale-to-zero-leader-election');
    expect(leaseRole.metadata.namespace).to.equal(NAMESPACE);
    expect(grants(leaseRole)).to.deep.equal([...LEASE_VERBS.map((v) => `coordination.k8s.io|leases|${v}`), ...TRAFFIC_RECORD_VERBS.map((v) => `|configmaps|${v}`)].sort());
    const leaseBinding = find(objects, 'RoleBinding', 'envoy-scale-to-zero-leader-election');
    expect(leaseBinding.roleRef).to.deep.equal({ apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'envoy-scale-to-zero-leader-election' });
    expect(leaseBinding.subjects).to.deep.equal([{ kind: 'ServiceAccount', name: SERVICE_ACCOUNT, namespace: NAMESPACE }]);
    // No other binding: the ServiceAccount has these and the defaults every authenticated user has. The two
    // example roles for the admin API's callers are bound to nobody.
    expect(objects.filter((o) => /Role(Binding)?$/.test(o.kind!)).map(id).sort()).to.deep.equal([
      'ClusterRole/envoy-scale-to-zero',
      'ClusterRole/envoy-scale-to-zero-admin-viewer',
      'ClusterRole/envoy-scale-to-zero-host-operator',
      'ClusterRoleBinding/envoy-scale-to-zero',
      `Role/${NAMESPACE}/envoy-scale-to-zero-leader-election`,
      `Role/${NAMESPACE}/envoy-scale-to-zero-xds-certificates`,
      `RoleBinding/${NAMESPACE}/envoy-scale-to-zero-leader-election`,
      `RoleBinding/${NAMESPACE}/envoy-scale-to-zero-xds-certificates`,
    ]);
    // The xDS certificates' Secrets, in its own namespace only: a get of the CA Secret alone, create and update.
    const certRole = find(objects, 'Role', 'envoy-scale-to-zero-xds-certificates');
    expect(certRole.metadata.namespace).to.equal(NAMESPACE);
    expect(certRole.rules).to.deep.equal([
      { apiGroups: [''], resources: ['secrets'], resourceNames: [CA_SECRET_NAME], verbs: ['get'] },
      { apiGroups: [''], resources: ['secrets'], verbs: [...CERTIFICATE_SECRET_VERBS] },
    ]);
    const certBinding = find(objects, 'RoleBinding', 'envoy-scale-to-zero-xds-certificates');
    expect(certBinding.roleRef).to.deep.equal({ apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'envoy-scale-to-zero-xds-certificates' });
    expect(certBinding.subjects).to.deep.equal([{ kind: 'ServiceAccount', name: SERVICE_ACCOUNT, namespace: NAMESPACE }]);
  });

  it('the control plane image copies every directory xds-server/main.ts imports, bundles it and runs the bundle', () => {
    const dockerfile = readFileSync(path.join(DEPLOY_DIR, 'images', 'control-plane.Dockerfile'), 'utf8');
    const copied = new Set([...dockerfile.matchAll(/^COPY (\S+) \.\/\1$/gm)].map((m) => m[1]!));
    const needed = [...importedDirs('xds-server/main.ts')].sort();
    expect(needed).to.include.members(['xds-server', 'snapshots', 'sources']);
    for (const dir of needed) expect(copied.has(dir), `COPY ${dir} ./${dir}`).to.equal(true);
    expect(dockerfile).to.match(/^RUN node --import tsx scripts\/build\.ts /m);
    expect(dockerfile).to.match(/^COPY --from=build \/src\/dist \.\/dist$/m);
    // The ENTRYPOINT's flags: test/unit/build.test.ts.
    expect(dockerfile).to.match(/^ENTRYPOINT \["node", .*"dist\/xds-server\/main\.mjs"\]$/m);
    expect(dockerfile).to.match(/^COPY package\.json package-lock\.json \.\/$/m);
    expect(dockerfile).to.match(/^USER 1000:1000$/m);
    const cp = podSpec(find(objects, 'Deployment', 'control-plane'));
    expect(cp.securityContext?.runAsUser).to.equal(1000);
    expect(cp.containers[0]!.volumeMounts?.some((m) => m.mountPath === '/tmp')).to.equal(true);
  });
});

// --- 2 + 3. a real API server -----------------------------------------------------------------------------

describe('deploy/ on a real API server (kubectl, RBAC as the ServiceAccount, the control plane with its token)', function () {
  this.timeout(180_000);
  let cluster: KubeCluster;
  let admin: RestKubeClient;
  let tmp: string;
  let cacheCount = 0;
  let deployObjects: KubeObject[];
  let sa: ServiceAccountIdentity;
  let pods: PodServers | undefined;
  let cp: KubernetesControlPlane | undefined;
  let cli: ChildProcess | undefined;
  const cpLog: string[] = [];

  const kubectl = (args: string[], input?: string): Promise<RunResult> =>
    run(KUBECTL, ['--kubeconfig', cluster.kubeconfigPath, '--cache-dir', path.join(tmp, `cache-${cacheCount++}`), ...args], {
      ...(input !== undefined ? { input } : {}),
      env: { ...process.env, HOME: tmp, KUBECONFIG: cluster.kubeconfigPath },
    });

  /** `kubectl apply --dry-run=server --validate=strict` of one object. */
  const dryRun = (obj: KubeObject): Promise<RunResult> => kubectl(['apply', '--dry-run=server', '--validate=strict', '-f', '-'], JSON.stringify(obj));

  async function expectDryRunPasses(objects: KubeObject[]): Promise<void> {
    // Cluster-scoped objects first (each a genuine create); then the namespaces for real (namespaced objects
    // cannot be dry-run into a namespace that does not exist); then the namespaced objects.
    const clusterScoped = objects.filter((o) => !o.metadata.namespace);
    const namespaced = objects.filter((o) => o.metadata.namespace);
    for (const obj of clusterScoped) {
      const r = await dryRun(obj);
      expect(r.code, `${id(obj)}: ${r.stderr}`).to.equal(0);
      expect(r.stdout, id(obj)).to.match(/created \(server dry run\)|configured \(server dry run\)|unchanged \(server dry run\)/);
      expect(r.stderr, id(obj)).to.not.match(/Warning/);
    }
    for (const ns of objects.filter((o) => o.kind === 'Namespace')) {
      const r = await kubectl(['apply', '-f', '-'], JSON.stringify(ns));
      expect(r.code, r.stderr).to.equal(0);
    }
    for (const obj of namespaced) {
      const r = await dryRun(obj);
      expect(r.code, `${id(obj)}: ${r.stderr}`).to.equal(0);
      expect(r.stdout, id(obj)).to.match(/created \(server dry run\)/);
      // e.g. "Warning: would violate PodSecurity "restricted:latest"" for a Deployment's pod template.
      expect(r.stderr, id(obj)).to.not.match(/Warning/);
    }
  }

  before(async function () {
    this.timeout(240_000);
    assertFilterBuilt();
    tmp = await mkdtemp(path.join(os.tmpdir(), 'stz-deploy-test-'));
    cluster = await startKubeCluster();
    admin = new RestKubeClient(cluster.kubeConfig(), 'stz-test');
    await cluster.applyCrds();
    deployObjects = await kustomizeBuild(DEPLOY_DIR);
  });

  after(async function () {
    this.timeout(60_000);
    if (cli && cli.exitCode === null && cli.signalCode === null) {
      cli.kill('SIGKILL');
    }
    await cp?.close().catch(() => {});
    await pods?.stop().catch(() => {});
    await cluster?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('every object of deploy/ (kubectl kustomize) passes server-side dry-run with strict field validation, without warnings', async () => {
    await expectDryRunPasses(deployObjects);
  });

  it('the same dry-run refuses broken copies: an unknown field, an invalid value, a root pod in the restricted namespace', async () => {
    const deployment = find(deployObjects, 'Deployment', 'control-plane');
    const typo = structuredClone(deployment);
    (podSpec(typo).containers[0] as unknown as Record<string, unknown>).imagePullPolcy = 'Always';
    let r = await dryRun(typo);
    expect(r.code).to.not.equal(0);
    expect(r.stderr).to.match(/unknown field "spec\.template\.spec\.containers\[0\]\.imagePullPolcy"/);

    const badPort = structuredClone(deployment);
    podSpec(badPort).containers[0]!.ports![0]!.containerPort = 70_000;
    r = await dryRun(badPort);
    expect(r.code).to.not.equal(0);
    expect(r.stderr).to.match(/Invalid value: 70000/);

    // The namespace enforces the restricted Pod Security Standard: the gateway's pod running as root is refused.
    const rootSpec = structuredClone(podSpec(find(deployObjects, 'Deployment', 'gateway')));
    rootSpec.securityContext = {};
    rootSpec.containers[0]!.securityContext = { runAsUser: 0 };
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'root', namespace: NAMESPACE }, spec: rootSpec } as unknown as KubeObject;
    r = await dryRun(pod);
    expect(r.code).to.not.equal(0);
    expect(r.stderr).to.match(/violates PodSecurity "restricted/);
  });

  it('kubectl apply -k deploy (what a user runs) creates it all; the pods pass the restricted Pod Security Standard and both Deployments become available', async () => {
    const r = await kubectl(['apply', '-k', DEPLOY_DIR]);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stderr).to.not.match(/Warning/);
    for (const o of deployObjects) expect(r.stdout).to.include(`/${o.metadata.name} `);
    await eventually(
      async () => {
        const crd = await admin.get('/apis/apiextensions.k8s.io/v1/customresourcedefinitions/scaletozeropolicies.scaletozero.dev');
        expect(condition((crd.status as { conditions?: Condition[] }).conditions, 'Established')?.status).to.equal('True');
        for (const name of ['control-plane', 'gateway']) {
          const d = await admin.get(`/apis/apps/v1/namespaces/${NAMESPACE}/deployments/${name}`);
          const status = d.status as { availableReplicas?: number; conditions?: Condition[] };
          expect(status.availableReplicas, `${name}: ${JSON.stringify(status.conditions)}`).to.equal((d.spec as { replicas: number }).replicas);
        }
      },
      { timeoutMs: 60_000, intervalMs: 200, what: 'CRD established and both Deployments available' },
    );
    // Applying again changes nothing.
    const pdbPath = `/apis/policy/v1/namespaces/${NAMESPACE}/poddisruptionbudgets/control-plane`;
    const pdbBefore = (await admin.get(pdbPath)).metadata.generation;
    const again = await kubectl(['apply', '-k', DEPLOY_DIR]);
    expect(again.code, again.stderr).to.equal(0);
    // kubectl always reports a PodDisruptionBudget "configured": its selector's patch strategy is "replace",
    // so the patch it sends is never empty. What counts is that the object does not change.
    const changed = again.stdout.split('\n').filter((l) => / configured| created/.test(l) && !l.startsWith('poddisruptionbudget.policy/control-plane '));
    expect(changed, 'a second apply changes nothing').to.deep.equal([]);
    expect((await admin.get(pdbPath)).metadata.generation).to.equal(pdbBefore);
    // The NetworkPolicy is stored as written (the API server validated it; kwok enforces none).
    const stored = await admin.get(`/apis/networking.k8s.io/v1/namespaces/${NAMESPACE}/networkpolicies/control-plane`);
    expect(stored.spec).to.deep.equal(find(deployObjects, 'NetworkPolicy', 'control-plane').spec);
  });

  it('every object of deploy/examples passes server-side dry-run', async () => {
    const examples = exampleObjects();
    expect(examples.map(id).sort()).to.deep.equal(
      ['GatewayClass/scale-to-zero', `Gateway/${NAMESPACE}/public`, `Namespace/${APP_NS}`, `Deployment/${APP_NS}/${APP}`, `Service/${APP_NS}/${APP}`, `HTTPRoute/${APP_NS}/${APP}`, `ScaleToZeroPolicy/${APP_NS}/${APP}`].sort(),
    );
    await expectDryRunPasses(examples);
    const policy = structuredClone(examples.find((o) => o.kind === 'ScaleToZeroPolicy')!);
    (policy.spec as { wakeReplicas: number }).wakeReplicas = 0;
    const r = await dryRun(policy);
    expect(r.code).to.not.equal(0);
    expect(r.stderr).to.match(/wakeReplicas: Invalid value: 0/);
  });

  it('the ServiceAccount\'s token (TokenRequest) is allowed everything the control plane does, asked with SelfSubjectAccessReview', async () => {
    sa = await asServiceAccount(cluster, NAMESPACE, SERVICE_ACCOUNT, 'envoy-scale-to-zero');
    const who = await sa.client.request('POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews', { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' });
    expect((who.status as { userInfo: { username: string } }).userInfo.username).to.equal(`system:serviceaccount:${NAMESPACE}:${SERVICE_ACCOUNT}`);
    const questions: ResourceQuestion[] = [];
    for (const p of permissionsTheCodeNeeds()) {
      const [group, res, verb] = p.split('|') as [string, string, string];
      const [resource, subresource] = res.split('/') as [string, string | undefined];
      const q: ResourceQuestion = { verb, group, resource, ...(subresource ? { subresource } : {}) };
      // Informers list and watch across all namespaces; writes happen in an app's namespace.
      questions.push(verb === 'list' || verb === 'watch' ? q : { ...q, namespace: APP_NS, name: APP });
    }
    expect(questions.length).to.equal(permissionsTheCodeNeeds().length);
    // Leader election: the Lease in the control plane's own namespace.
    for (const verb of LEASE_VERBS) questions.push({ verb, group: 'coordination.k8s.io', resource: 'leases', namespace: NAMESPACE, name: 'scale-to-zero-control-plane' });
    // Traffic records of the replicas: ConfigMaps in the same namespace.
    for (const verb of TRAFFIC_RECORD_VERBS) questions.push({ verb, group: '', resource: 'configmaps', namespace: NAMESPACE });
    // xDS certificates: the CA Secret read, Secrets created and updated in its own namespace.
    questions.push({ verb: 'get', group: '', resource: 'secrets', namespace: NAMESPACE, name: CA_SECRET_NAME });
    for (const verb of CERTIFICATE_SECRET_VERBS) questions.push({ verb, group: '', resource: 'secrets', namespace: NAMESPACE, name: 'xds-client-demo.public' });
    const refused: string[] = [];
    for (const q of questions) if (!(await canI(sa.client, q)).allowed) refused.push(describeQuestion(q));
    // API discovery of a workload's group/version (how the scale client finds a /scale): system:discovery.
    for (const p of ['/apis/apps/v1', '/api/v1', '/apis']) if (!(await canI(sa.client, { verb: 'get', path: p })).allowed) refused.push(`get ${p}`);
    expect(refused, 'refused').to.deep.equal([]);
  });

  it('...and denied what it must not do: a get of a Secret other than the xDS CA (list/watch is allowed, for HTTPS certificates), Secret writes outside its namespace, Secret deletes and patches, deletes, workload writes other than /scale, route specs, ConfigMaps, RBAC, other API groups', async () => {
    const ns = APP_NS;
    const mustNot: ResourceQuestion[] = [
      // Secrets: list + watch only (the informer of HTTPS listeners' certificateRefs); never a single get, never a write.
      { verb: 'get', group: '', resource: 'secrets', namespace: ns },
      { verb: 'get', group: '', resource: 'secrets', namespace: NAMESPACE, name: 'control-plane-admin-token' },
      { verb: 'create', group: '', resource: 'secrets', namespace: ns },
      { verb: 'patch', group: '', resource: 'secrets', namespace: ns },
      { verb: 'update', group: '', resource: 'secrets', namespace: ns },
      { verb: 'delete', group: '', resource: 'secrets', namespace: ns },
      { verb: 'delete', group: '', resource: 'secrets', namespace: NAMESPACE },
      { verb: 'patch', group: '', resource: 'secrets', namespace: NAMESPACE },
      { verb: 'get', group: '', resource: 'secrets', namespace: NAMESPACE, name: 'xds-client-demo.public' },
      { verb: 'delete', group: 'apps', resource: 'deployments', namespace: ns },
      { verb: 'delete', group: 'apps', resource: 'statefulsets', namespace: ns },
      { verb: 'patch', group: 'apps', resource: 'deployments', namespace: ns },
      { verb: 'update', group: 'apps', resource: 'deployments', namespace: ns },
      { verb: 'create', group: 'apps', resource: 'deployments', namespace: ns },
      { verb: 'get', group: 'apps', resource: 'deployments', namespace: ns },
      { verb: 'update', group: 'apps', resource: 'deployments', subresource: 'scale', namespace: ns },
      { verb: 'patch', group: 'apps', resource: 'replicasets', subresource: 'scale', namespace: ns },
      { verb: 'patch', group: 'apps', resource: 'statefulsets', namespace: ns },
      { verb: 'create', group: '', resource: 'pods', namespace: ns },
      { verb: 'delete', group: '', resource: 'pods', namespace: ns },
      { verb: 'list', group: '', resource: 'pods' },
      { verb: 'create', group: '', resource: 'pods', subresource: 'exec', namespace: ns },
      { verb: 'update', group: 'gateway.networking.k8s.io', resource: 'httproutes', namespace: ns },
      { verb: 'patch', group: 'gateway.networking.k8s.io', resource: 'httproutes', namespace: ns },
      { verb: 'create', group: 'gateway.networking.k8s.io', resource: 'httproutes', namespace: ns },
      { verb: 'delete', group: 'gateway.networking.k8s.io', resource: 'httproutes', namespace: ns },
      { verb: 'update', group: 'gateway.networking.k8s.io', resource: 'httproutes', subresource: 'status', namespace: ns },
      { verb: 'get', group: 'gateway.networking.k8s.io', resource: 'gateways', namespace: NAMESPACE },
      { verb: 'patch', group: 'gateway.networking.k8s.io', resource: 'gateways', namespace: NAMESPACE },
      { verb: 'patch', group: 'gateway.networking.k8s.io', resource: 'gatewayclasses' },
      { verb: 'delete', group: 'gateway.networking.k8s.io', resource: 'gatewayclasses' },
      { verb: 'patch', group: 'gateway.networking.k8s.io', resource: 'referencegrants', namespace: ns },
      { verb: 'update', group: 'scaletozero.dev', resource: 'scaletozeropolicies', namespace: ns },
      { verb: 'delete', group: 'scaletozero.dev', resource: 'scaletozeropolicies', namespace: ns },
      { verb: 'patch', group: '', resource: 'configmaps', namespace: NAMESPACE },
      { verb: 'delete', group: '', resource: 'configmaps', namespace: NAMESPACE },
      { verb: 'get', group: '', resource: 'configmaps', namespace: ns },
      { verb: 'update', group: '', resource: 'configmaps', namespace: ns },
      { verb: 'patch', group: '', resource: 'services', namespace: ns },
      { verb: 'delete', group: '', resource: 'namespaces' },
      { verb: 'patch', group: 'discovery.k8s.io', resource: 'endpointslices', namespace: ns },
      { verb: 'delete', group: '', resource: 'events', namespace: ns },
      // Leases: only in its own namespace, never deleted (another controller's Lease is not ours to take).
      { verb: 'update', group: 'coordination.k8s.io', resource: 'leases', namespace: ns },
      { verb: 'create', group: 'coordination.k8s.io', resource: 'leases', namespace: 'kube-system' },
      { verb: 'delete', group: 'coordination.k8s.io', resource: 'leases', namespace: NAMESPACE },
      { verb: 'patch', group: '', resource: 'events', namespace: ns },
      { verb: 'create', group: 'events.k8s.io', resource: 'events', namespace: ns },
      { verb: 'create', group: '', resource: 'serviceaccounts', subresource: 'token', namespace: NAMESPACE, name: SERVICE_ACCOUNT },
      { verb: 'impersonate', group: '', resource: 'serviceaccounts', namespace: NAMESPACE },
      { verb: 'impersonate', group: '', resource: 'users' },
      { verb: 'create', group: 'rbac.authorization.k8s.io', resource: 'clusterrolebindings' },
      { verb: 'get', group: 'rbac.authorization.k8s.io', resource: 'roles', namespace: ns },
      { verb: 'escalate', group: 'rbac.authorization.k8s.io', resource: 'clusterroles' },
      { verb: 'bind', group: 'rbac.authorization.k8s.io', resource: 'clusterroles' },
      { verb: 'create', group: 'apiextensions.k8s.io', resource: 'customresourcedefinitions' },
      { verb: 'patch', group: '', resource: 'nodes' },
      // A custom resource's /scale needs the extra grant documented in deploy/rbac.yaml.
      { verb: 'patch', group: 'argoproj.io', resource: 'rollouts', subresource: 'scale', namespace: ns },
    ];
    const allowed: string[] = [];
    for (const q of mustNot) if ((await canI(sa.client, q)).allowed) allowed.push(describeQuestion(q));
    expect(allowed, 'allowed but must not be').to.deep.equal([]);
    // And for real, not only as a question: the API answers 403.
    for (const p of [`/api/v1/namespaces/${NAMESPACE}/secrets/control-plane-admin-token`, `/apis/apps/v1/namespaces/${NAMESPACE}/deployments/gateway`]) {
      const err = await sa.client.get(p).then(
        () => undefined,
        (e: unknown) => e as { status?: number },
      );
      expect(err?.status, p).to.equal(403);
    }
  });

  it('in-process with the ServiceAccount\'s client: it syncs and writes statuses (GatewayClass and route Accepted, policy Accepted)', async () => {
    const applied = await kubectl(['apply', '-f', path.join(EXAMPLES_DIR, 'gateway.yaml'), '-f', path.join(EXAMPLES_DIR, 'app.yaml')]);
    expect(applied.code, applied.stderr).to.equal(0);
    pods = startPodServers({ kubeConfig: cluster.kubeConfig(), namespaces: [APP_NS] });
    await pods.synced;
    const cpContainer = podSpec(find(deployObjects, 'Deployment', 'control-plane')).containers[0]!;
    const cpArgs = flags(cpContainer.args!);
    // As in the pod: its namespace and name from the downward API turn leader election on (main.ts).
    const fieldRefs = Object.fromEntries((cpContainer.env ?? []).map((e) => [e.name, (e.valueFrom as { fieldRef?: { fieldPath?: string } } | undefined)?.fieldRef?.fieldPath]));
    expect(fieldRefs).to.include({ POD_NAMESPACE: 'metadata.namespace', POD_NAME: 'metadata.name', POD_UID: 'metadata.uid' });
    cp = await startKubernetesControlPlane({
      leaderElection: { namespace: NAMESPACE, identity: 'control-plane-test-pod' },
      // Mutual TLS on xDS as the CLI turns it on in the pod: the CA Secret and the Gateways' Secrets, with the
      // ServiceAccount's RBAC (a refusal would be logged and fail the check below).
      xdsCertificates: { namespace: NAMESPACE, serverNames: { dnsNames: [CONTROL_PLANE_XDS_DNS] }, wakePort: 0 },
      client: sa.client,
      filterWasmPath: FILTER_WASM,
      wakeAddress: cpArgs.get('wake-address')!,
      controllerName: cpArgs.get('controller-name') ?? DEFAULT_CONTROLLER_NAME,
      defaultGatewayAddress: '127.0.0.1',
      log: createLogger({
        level: 'info',
        write: (line) => {
          cpLog.push(line);
          if (process.env.STZ_TEST_LOG) process.stderr.write(`${line}\n`);
        },
      }),
    });
    expect(cp.state.scalable().map((v) => v.backend.name)).to.include(BACKEND);
    await eventually(
      async () => {
        const gc = await admin.get('/apis/gateway.networking.k8s.io/v1/gatewayclasses/scale-to-zero');
        expect(condition((gc.status as { conditions?: Condition[] })?.conditions, 'Accepted')?.status).to.equal('True');
        const gw = await admin.get(`/apis/gateway.networking.k8s.io/v1/namespaces/${NAMESPACE}/gateways/public`);
        expect(condition((gw.status as { conditions?: Condition[] })?.conditions, 'Accepted')?.status).to.equal('True');
        const route = await admin.get(`/apis/gateway.networking.k8s.io/v1/namespaces/${APP_NS}/httproutes/${APP}`);
        const parent = (route.status as { parents?: { controllerName: string; conditions: Condition[] }[] } | undefined)?.parents?.find((p) => p.controllerName === DEFAULT_CONTROLLER_NAME);
        expect(condition(parent?.conditions, 'Accepted')?.status).to.equal('True');
        expect(condition(parent?.conditions, 'ResolvedRefs')?.status).to.equal('True');
        const pol = await admin.get(`/apis/scaletozero.dev/v1alpha1/namespaces/${APP_NS}/scaletozeropolicies/${APP}`);
        const ancestors = (pol.status as { ancestors?: { conditions: Condition[] }[] } | undefined)?.ancestors ?? [];
        expect(condition(ancestors[0]?.conditions, 'Accepted')?.status).to.equal('True');
      },
      { timeoutMs: 30_000, intervalMs: 100, what: 'statuses written by the ServiceAccount' },
    );
    // Written by this control plane (nothing else that writes statuses has run yet), as the Lease's holder.
    expect(cp.isLeader()).to.equal(true);
    const lease = await admin.get(`/apis/coordination.k8s.io/v1/namespaces/${NAMESPACE}/leases/scale-to-zero-control-plane`);
    expect((lease.spec as { holderIdentity: string }).holderIdentity).to.equal('control-plane-test-pod');
    // Its traffic record for the other replicas, written with the ServiceAccount's rights.
    await eventually(async () => {
      const record = await admin.get(`/api/v1/namespaces/${NAMESPACE}/configmaps/scale-to-zero-traffic-control-plane-test-pod`);
      expect(record.metadata.labels).to.include({ 'scaletozero.dev/traffic-record': 'true' });
    }, { what: 'the traffic record ConfigMap' });
    expect(cp.statusWriter.stats.writes).to.be.greaterThanOrEqual(4);
    expect(cp.statusWriter.stats.failures).to.equal(0);
  });

  it(`wakes ${BACKEND}: the Deployment goes 0 -> 1 through /scale, the pod answers, an Event ScaledUpFromZero is recorded`, async () => {
    const deploymentPath = `/apis/apps/v1/namespaces/${APP_NS}/deployments/${APP}`;
    expect(((await admin.get(deploymentPath)).spec as { replicas: number }).replicas).to.equal(0);
    const change = await cp!.hosts.wake(BACKEND, 'test', 'admin');
    expect(change.error, cp!.state.describeEndpoints(BACKEND)).to.equal(undefined);
    expect(change.changed).to.equal(true);
    const after = await admin.get(deploymentPath);
    expect((after.spec as { replicas: number }).replicas).to.equal(1);
    const managers = (after.metadata as { managedFields?: { manager: string; subresource?: string }[] }).managedFields ?? [];
    expect(managers.some((m) => m.manager === FIELD_MANAGER && m.subresource === 'scale')).to.equal(true);
    expect(pods!.list(APP_NS).map((s) => s.pod)).to.have.length(1);
    expect(cp!.state.find(BACKEND)?.held).to.equal(false);
    await eventually(
      async () => {
        const events = await admin.list(`/api/v1/namespaces/${APP_NS}/events?fieldSelector=${encodeURIComponent('reason=ScaledUpFromZero')}`);
        const e = events.items.find((x) => (x.involvedObject as { kind: string; name: string }).name === APP);
        expect(e, 'Event ScaledUpFromZero').to.not.equal(undefined);
        expect(e!.involvedObject).to.include({ kind: 'Deployment', name: APP, namespace: APP_NS });
        expect((e!.source as { component: string }).component).to.equal('envoy-scale-to-zero');
      },
      { timeoutMs: 10_000, what: 'the ScaledUpFromZero Event' },
    );
  });

  it(`scales ${BACKEND} back to 0 through /scale and records ScaledToZero`, async () => {
    const change = await cp!.hosts.scaleToZero(BACKEND, 'test');
    expect(change.error).to.equal(undefined);
    expect(change.changed).to.equal(true);
    expect(((await admin.get(`/apis/apps/v1/namespaces/${APP_NS}/deployments/${APP}`)).spec as { replicas: number }).replicas).to.equal(0);
    expect(cp!.state.find(BACKEND)?.held).to.equal(true);
    await eventually(
      async () => {
        const events = await admin.list(`/api/v1/namespaces/${APP_NS}/events?fieldSelector=${encodeURIComponent('reason=ScaledToZero')}`);
        expect(events.items.some((x) => (x.involvedObject as { name: string }).name === APP)).to.equal(true);
      },
      { timeoutMs: 10_000, what: 'the ScaledToZero Event' },
    );
    await pods!.waitFor((all) => all.every((s) => s.namespace !== APP_NS), 30_000, 'the woken pod gone');
  });

  it('logged no RBAC refusal and no failed write all along', () => {
    const problems = cpLog.filter((l) => /"level":"(warn|error)"/.test(l));
    expect(problems.filter((l) => /forbidden|unauthorized/i.test(l)), 'RBAC refusals').to.deep.equal([]);
    // The API server may answer 429 while a resource's watch cache (re)initializes (fresh CRDs): retried.
    const transient = (l: string): boolean => /list\/watch failed; retrying/.test(l) && /429 TooManyRequests/.test(l);
    expect(problems.filter((l) => !transient(l)), 'warnings and errors').to.deep.equal([]);
    expect(cp!.statusWriter.stats.failures).to.equal(0);
  });

  it('closes cleanly', async () => {
    await cp!.close();
    cp = undefined;
  });

  it('the control plane CLI (the image\'s entrypoint) with the Deployment\'s args and --kubeconfig for the ServiceAccount, syncs and announces the image\'s filter path and a DNS wake cluster', async () => {
    const kubeconfig = path.join(tmp, 'sa.kubeconfig');
    await writeTokenKubeconfig(cluster, sa.token, kubeconfig);
    const [xdsPort, adminPort, wakePort] = [await freePort(), await freePort(), await freePort()];
    // The Deployment's args, with every address on loopback and free ports (this test binds nothing else).
    const local: Record<string, string> = { 'xds-address': '127.0.0.1', 'admin-address': '127.0.0.1', 'gateway-address': '127.0.0.1', 'xds-port': String(xdsPort), 'admin-port': String(adminPort), 'wake-port': String(wakePort) };
    const deployArgs = podSpec(find(deployObjects, 'Deployment', 'control-plane')).containers[0]!.args!;
    const args = deployArgs.map((a) => {
      const m = /^--([^=]+)=/.exec(a);
      return m && local[m[1]!] !== undefined ? `--${m[1]}=${local[m[1]!]}` : a;
    });
    // As in the pod: POD_NAMESPACE (downward API) turns on leader election and mutual TLS on xDS, with the CA
    // and the Gateways' certificate Secrets in that namespace (created with the ServiceAccount's RBAC).
    const env: NodeJS.ProcessEnv = { ...process.env, POD_NAMESPACE: NAMESPACE, POD_NAME: 'control-plane-cli-test' };
    delete env.STZ_ADMIN_TOKEN;
    delete env.KUBECONFIG;
    // The admin API asks the cluster (TokenReview + SubjectAccessReview, made with the ServiceAccount's
    // token, so its ClusterRole must allow them): the cluster admin's token may do everything, none may nothing.
    const auth = { headers: { authorization: `Bearer ${cluster.token}` } };
    let output = '';
    cli = spawn(process.execPath, ['--import', 'tsx', 'xds-server/main.ts', ...args, `--kubeconfig=${kubeconfig}`], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    cli.stdout!.on('data', (c: Buffer) => (output += c.toString('utf8')));
    cli.stderr!.on('data', (c: Buffer) => (output += c.toString('utf8')));
    const exited = new Promise<number | null>((resolve) => cli!.once('exit', (code) => resolve(code)));
    const adminUrl = `http://127.0.0.1:${adminPort}`;
    try {
      await eventually(
        async () => {
          if (cli!.exitCode !== null) throw new Error(`exited with ${cli!.exitCode}`);
          const r = await fetch(`${adminUrl}/healthz`);
          expect(r.status).to.equal(200);
          const hosts = (await (await fetch(`${adminUrl}/v1/hosts`, auth)).json()) as { hosts: { name: string }[] };
          expect(hosts.hosts.map((h) => h.name)).to.include(BACKEND);
        },
        { timeoutMs: 60_000, intervalMs: 200, what: 'the CLI control plane healthy and seeing the example backend' },
      );
      expect((await fetch(`${adminUrl}/v1/hosts`)).status).to.equal(401);
      // The leader wrote the example Gateway's client certificate (issued by the CA it created) into its Secret.
      await eventually(
        async () => {
          const secret = await admin.get(`/api/v1/namespaces/${NAMESPACE}/secrets/${gatewaySecretName(EXAMPLE_GATEWAY)}`);
          const cert = Buffer.from((secret.data as Record<string, string>)['tls.crt']!, 'base64').toString('utf8');
          expect(identityUris(cert)).to.deep.equal([gatewayIdentity(EXAMPLE_GATEWAY.namespace, EXAMPLE_GATEWAY.name)]);
          await admin.get(`/api/v1/namespaces/${NAMESPACE}/secrets/${CA_SECRET_NAME}`);
        },
        { timeoutMs: 30_000, what: 'the example Gateway\'s certificate Secret' },
      );
      const refused = await fetch(`${adminUrl}/v1/hosts/${BACKEND}/wake`, { method: 'POST', headers: { authorization: `Bearer ${cluster.restrictedToken}` } });
      expect(refused.status).to.equal(403);
      const snap = (await (await fetch(`${adminUrl}/v1/snapshot`, auth)).json()) as { snapshot: { resources: Record<string, { name: string; typed_config?: unknown; type?: string; load_assignment?: unknown }[]> } };
      const ecds = snap.snapshot.resources[TYPE_URLS.extensionConfig]!.find((r) => r.name === BUFFER_FILTER_NAME)!;
      expect(JSON.stringify(ecds.typed_config)).to.include(`"filename":"${FILTER_WASM_IN_IMAGE}"`);
      const wake = snap.snapshot.resources[TYPE_URLS.cluster]!.find((r) => r.name === CONTROL_PLANE_CLUSTER)!;
      expect(wake.type).to.equal('STRICT_DNS');
      expect(JSON.stringify(wake.load_assignment)).to.include(`"address":"${CONTROL_PLANE_DNS}","port_value":${wakePort}`);
      // Over mutual TLS, with the certificate the gateway pod's SDS files name.
      expect(JSON.stringify(wake)).to.include(`"path":"${ENVOY_BOOTSTRAP_DIR}/${GATEWAY_SDS_FILES.certificate.key}"`);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- control plane output ---\n${output.slice(-4000)}`);
    } finally {
      cli.kill('SIGTERM');
    }
    expect(await exited, output.slice(-2000)).to.equal(0);
    expect(output).to.not.match(/forbidden/i);
  });
});
