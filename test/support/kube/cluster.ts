// A real, local Kubernetes control plane for tests: etcd 3.6, kube-apiserver, kube-controller-manager,
// kube-scheduler and kwok (fake nodes whose pods get loopback IPs), all from .cache/k8s/bin (built by
// scripts/k8s-tools.sh), all on 127.0.0.1 with free ports, in a fresh temp dir. Nothing here listens on or
// dials a non-loopback address: pod IPs come from a 127.x/16 the caller picks; ClusterIPs are data only.
import { type ChildProcess, spawn } from 'node:child_process';
import { generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import * as https from 'node:https';
import * as http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';
import { RestKubeClient } from '../../../xds-server/kubernetes/rest.ts';
import { parseAllDocuments, stringify } from 'yaml';
import { freePort } from '../ports.ts';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const KUBE_BIN_DIR = path.join(REPO_ROOT, '.cache/k8s/bin');
export const GATEWAY_API_CRD_DIR = path.join(REPO_ROOT, '.cache/k8s/gateway-api-crds');
const BINARIES = ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kwok'] as const;
type Component = (typeof BINARIES)[number];

/** Data only: the API server allocates ClusterIPs from it; nothing ever dials them. */
const SERVICE_CLUSTER_IP_RANGE = '10.96.0.0/16';
const SA_ISSUER = 'https://kubernetes.default.svc.cluster.local';
const FIELD_MANAGER = 'stz-test-cluster';

export interface KubeClusterOptions {
  /**
   * Where kwok allocates pod IPs, as `127.X.Y.Z/N`: the first pod gets 127.X.Y.Z. Must lie inside
   * 127.0.0.0/8 and not contain 127.0.0.1. Default: a free 127.X.0.1/16 with X in 100..250.
   * Each cluster claims the 127.X it covers in a lock dir under the OS temp dir until stop(), so two
   * clusters on one machine (other test runs, other users of this checkout) never share pod IPs: an
   * explicit range that a live cluster already holds is an error.
   */
  podCidr?: string;
  /** Where the binaries are; default .cache/k8s/bin. */
  binDir?: string;
  /** Fake nodes to create (named kwok-node-0..). Default 1. */
  nodes?: number;
  /** Overall bound for start(); default 120 s. */
  startTimeoutMs?: number;
  /** Keep the temp dir (logs, etcd data) after stop() or a failed start. Also: STZ_KUBE_KEEP_DIR=1. */
  keepDir?: boolean;
  /** Progress lines; default silent. */
  log?: (line: string) => void;
}

export interface KubeCluster {
  readonly dir: string;
  /** Admin (system:masters) kubeconfig file, server https://127.0.0.1:<port> with the API server's CA. */
  readonly kubeconfigPath: string;
  readonly server: string;
  /** Static bearer token of user `admin` in group system:masters. */
  readonly token: string;
  /** Static bearer token of user `nobody`: authenticated, bound to nothing (RBAC answers 403). */
  readonly restrictedToken: string;
  /** PEM file of the CA that signed the API server's serving certificate. */
  readonly caPath: string;
  readonly podCidr: string;
  readonly nodeNames: readonly string[];
  /** Log file of each process. */
  readonly logs: Readonly<Record<Component, string>>;
  /** A client config for the admin token, or for another token (e.g. restrictedToken). */
  kubeConfig(token?: string): k8s.KubeConfig;
  /** Applies (server-side) every manifest in .cache/k8s/gateway-api-crds, waits until each CRD is Established; returns the CRD names. */
  applyCrds(dir?: string): Promise<string[]>;
  /** Components that exited on their own since start (empty while healthy). */
  exited(): string[];
  /**
   * Kills kube-apiserver (SIGKILL: every watch is cut mid-stream, as in a crash) and starts it again with the
   * same flags and certificates; resolves once /readyz answers. `whileDown` runs in between.
   */
  restartApiServer(whileDown?: () => Promise<void>): Promise<void>;
  stop(): Promise<void>;
}

interface Proc {
  name: Component;
  child: ChildProcess;
  logPath: string;
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  exited: Promise<void>;
}

/** Every live process we started, for the last-resort kill at process exit. */
const livePids = new Set<number>();
/** Pod-range claims (lock files) this process holds. */
const heldClaims = new Set<string>();
const CLAIM_DIR = path.join(os.tmpdir(), 'stz-kube-pod-cidrs');
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const pid of livePids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    for (const file of heldClaims) releaseClaim(file);
  });
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Claims 127.<octet>.x.x for this process; false if a live cluster (here or in another process) holds it. */
function claimOctet(octet: number): string | undefined {
  mkdirSync(CLAIM_DIR, { recursive: true });
  const file = path.join(CLAIM_DIR, `127.${octet}`);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, String(process.pid), { flag: 'wx' });
      heldClaims.add(file);
      return file;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      let holder = NaN;
      try {
        holder = Number(readFileSync(file, 'utf8').trim());
      } catch {
        // vanished in between: retry
      }
      if (holder === process.pid || (Number.isInteger(holder) && holder > 0 && pidAlive(holder))) return undefined;
      try {
        unlinkSync(file); // stale: its process is gone
      } catch {
        // someone else cleaned it up
      }
    }
  }
  return undefined;
}

function releaseClaim(file: string): void {
  heldClaims.delete(file);
  try {
    if (readFileSync(file, 'utf8').trim() === String(process.pid)) unlinkSync(file);
  } catch {
    // already gone
  }
}

/** The second octets (127.X) a validated pod CIDR covers. */
function coveredOctets(cidr: string): number[] {
  const [base, bitsRaw] = cidr.split('/');
  const second = Number(base!.split('.')[1]);
  const bits = Number(bitsRaw);
  if (bits >= 16) return [second];
  const span = 2 ** (16 - bits);
  const first = second - (second % span);
  return Array.from({ length: span }, (_, i) => first + i);
}

/** Claims the pod range (or picks and claims a free 127.X.0.1/16); returns the CIDR and its lock files. */
function claimPodCidr(requested: string | undefined): { cidr: string; claims: string[] } {
  if (requested === undefined) {
    for (let x = 100; x <= 250; x++) {
      const claim = claimOctet(x);
      if (claim) return { cidr: `127.${x}.0.1/16`, claims: [claim] };
    }
    throw new Error(`no free pod range 127.100-250.0.0/16 (claims in ${CLAIM_DIR})`);
  }
  validatePodCidr(requested);
  const claims: string[] = [];
  for (const octet of coveredOctets(requested)) {
    const claim = claimOctet(octet);
    if (!claim) {
      claims.forEach(releaseClaim);
      const file = path.join(CLAIM_DIR, `127.${octet}`);
      let holder = '?';
      try {
        holder = readFileSync(file, 'utf8').trim();
      } catch {
        // gone
      }
      throw new Error(`pod CIDR ${requested}: 127.${octet}.0.0/16 is in use by another local cluster (pid ${holder}, ${file}); pick another range or omit podCidr`);
    }
    claims.push(claim);
  }
  return { cidr: requested, claims };
}

export function assertKubeBinaries(binDir = KUBE_BIN_DIR): void {
  const missing = BINARIES.filter((b) => !existsSync(path.join(binDir, b)));
  if (missing.length > 0) {
    throw new Error(`Kubernetes test binaries missing in ${binDir} (${missing.join(', ')}): run \`bash scripts/k8s-tools.sh\` first`);
  }
}

function parseIPv4(s: string): number | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return undefined;
    n = n * 256 + Number(p);
  }
  return n;
}

/** Validates a pod CIDR: IPv4, inside 127.0.0.0/8, prefix 9..30, not containing 127.0.0.1. */
export function validatePodCidr(cidr: string): void {
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(cidr);
  const ip = m ? parseIPv4(m[1]!) : undefined;
  const bits = m ? Number(m[2]) : NaN;
  if (ip === undefined || !(bits >= 9 && bits <= 30)) throw new Error(`pod CIDR ${cidr}: want 127.X.Y.Z/N with N in 9..30`);
  if (ip >>> 24 !== 127) throw new Error(`pod CIDR ${cidr} is not inside 127.0.0.0/8`);
  const mask = (0xffffffff << (32 - bits)) >>> 0;
  const localhost = parseIPv4('127.0.0.1')!;
  if (((ip & mask) >>> 0) === ((localhost & mask) >>> 0)) throw new Error(`pod CIDR ${cidr} contains 127.0.0.1`);
}

/** True if `ip` is an IPv4 address inside `cidr`. */
export function ipInCidr(ip: string, cidr: string): boolean {
  const [base, bitsRaw] = cidr.split('/');
  const a = parseIPv4(ip);
  const b = base === undefined ? undefined : parseIPv4(base);
  const bits = Number(bitsRaw);
  if (a === undefined || b === undefined || !(bits >= 0 && bits <= 32)) return false;
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return ((a & mask) >>> 0) === ((b & mask) >>> 0);
}

function tail(file: string, lines = 40): string {
  try {
    const text = readFileSync(file, 'utf8');
    return text.split('\n').slice(-lines - 1).join('\n');
  } catch (err) {
    return `(no log: ${(err as Error).message})`;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function httpGet(url: string, options: { ca?: Buffer; token?: string; timeoutMs?: number } = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const mod = u.protocol === 'https:' ? https : http;
    const req = mod.request(
      u,
      {
        method: 'GET',
        ...(options.ca ? { ca: options.ca } : {}),
        headers: options.token ? { authorization: `Bearer ${options.token}` } : {},
        timeout: options.timeoutMs ?? 3000,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

class ClusterImpl implements KubeCluster {
  readonly procs: Proc[] = [];
  server = '';
  kubeconfigPath: string;
  caPath: string;
  readonly token = randomBytes(24).toString('hex');
  readonly restrictedToken = randomBytes(24).toString('hex');
  nodeNames: string[] = [];
  readonly logs: Record<Component, string>;
  private stopping: Promise<void> | undefined;

  constructor(
    readonly dir: string,
    readonly podCidr: string,
    private readonly keepDir: boolean,
    private readonly binDir: string,
    private readonly claims: string[],
  ) {
    this.kubeconfigPath = path.join(dir, 'kubeconfig');
    this.caPath = path.join(dir, 'pki', 'apiserver-ca.crt');
    this.logs = Object.fromEntries(BINARIES.map((b) => [b, path.join(dir, 'logs', `${b}.log`)])) as Record<Component, string>;
  }

  spawn(name: Component, args: string[], env: NodeJS.ProcessEnv = process.env): Proc {
    const logPath = this.logs[name];
    const fd = openSync(logPath, 'a');
    let child: ChildProcess;
    try {
      // Not detached: a Ctrl-C on the terminal reaches these processes too, so an interrupted test run
      // leaves nothing behind even though it skips its after hooks. None of them forks.
      child = spawn(path.join(this.binDir, name), args, { cwd: this.dir, env, stdio: ['ignore', fd, fd] });
    } finally {
      closeSync(fd);
    }
    const proc: Proc = {
      name,
      child,
      logPath,
      exit: undefined,
      exited: new Promise<void>((resolve) => {
        child.once('exit', (code, signal) => {
          proc.exit = { code, signal };
          if (child.pid !== undefined) livePids.delete(child.pid);
          resolve();
        });
        child.once('error', (err) => {
          proc.exit = { code: -1, signal: null };
          writeFile(logPath, `\nspawn error: ${err.message}\n`, { flag: 'a' }).catch(() => {});
          resolve();
        });
      }),
    };
    if (child.pid !== undefined) livePids.add(child.pid);
    this.procs.push(proc);
    return proc;
  }

  apiServerArgs: string[] = [];

  async restartApiServer(whileDown?: () => Promise<void>): Promise<void> {
    const old = this.procs.find((p) => p.name === 'kube-apiserver' && p.exit === undefined);
    if (!old) throw new Error('kube-apiserver is not running');
    this.procs.splice(this.procs.indexOf(old), 1);
    await stopProc(old, 0);
    await whileDown?.();
    const next = this.spawn('kube-apiserver', this.apiServerArgs);
    const ca = await readFile(this.caPath);
    await this.waitFor('kube-apiserver /readyz after a restart', Date.now() + 60_000, next, async () => {
      const r = await httpGet(`${this.server}/readyz`, { ca, token: this.token });
      if (r.status === 200) return true;
      throw new Error(`/readyz: ${r.status}`);
    });
  }

  exited(): string[] {
    return this.procs.filter((p) => p.exit !== undefined && !this.stopping).map((p) => `${p.name} (${p.exit?.signal ?? `exit ${p.exit?.code}`})`);
  }

  /** Throws, with the log tail, if a started process has exited. */
  assertAlive(): void {
    for (const p of this.procs) {
      if (p.exit !== undefined) {
        throw new StartError(
          `${p.name} exited during cluster start (${p.exit.signal ?? `code ${p.exit.code}`}); last lines of ${p.logPath}:\n${tail(p.logPath)}`,
        );
      }
    }
  }

  /** Polls `check` until it returns a value, failing fast if a process died, else at `deadline`. */
  async waitFor<T>(what: string, deadline: number, watch: Proc | undefined, check: () => Promise<T | undefined>, intervalMs = 100): Promise<T> {
    let last = '';
    for (;;) {
      this.assertAlive();
      try {
        const v = await check();
        if (v !== undefined) return v;
      } catch (err) {
        last = (err as Error).message;
      }
      if (Date.now() > deadline) {
        const logInfo = watch ? `; last lines of ${watch.logPath}:\n${tail(watch.logPath)}` : '';
        throw new StartError(`timed out waiting for ${what}${last ? ` (last error: ${last})` : ''}${logInfo}`);
      }
      await sleep(intervalMs);
    }
  }

  kubeConfig(token: string = this.token): k8s.KubeConfig {
    const kc = new k8s.KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'stz-kube', server: this.server, caFile: this.caPath, skipTLSVerify: false }],
      users: [{ name: 'user', token }],
      contexts: [{ name: 'stz-kube', cluster: 'stz-kube', user: 'user', namespace: 'default' }],
      currentContext: 'stz-kube',
    });
    return kc;
  }

  async applyCrds(dir: string = GATEWAY_API_CRD_DIR): Promise<string[]> {
    if (!existsSync(dir)) throw new Error(`no CRD dir ${dir}: run \`bash scripts/k8s-tools.sh\` first`);
    const files = (await readdir(dir)).filter((f) => /\.ya?ml$/.test(f)).sort();
    const objects: k8s.KubernetesObject[] = [];
    for (const f of files) {
      for (const doc of parseAllDocuments(await readFile(path.join(dir, f), 'utf8'))) {
        const obj = doc.toJS() as k8s.KubernetesObject | null;
        if (obj && typeof obj === 'object' && obj.kind) objects.push(obj);
      }
    }
    // Raw JSON, not client-node's typed KubernetesObjectApi: its model serialiser drops fields it does not
    // know at nested schema levels (defaults and x-kubernetes-validations vanished from our CRD that way).
    const client = new RestKubeClient(this.kubeConfig(), FIELD_MANAGER);
    const crdNames: string[] = [];
    for (const obj of objects) {
      if (obj.kind !== 'CustomResourceDefinition' || !obj.metadata?.name) throw new Error(`applyCrds: ${dir} holds a ${obj.kind}, not only CRDs`);
      const name = obj.metadata.name;
      await client.request('PATCH', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}?fieldManager=${FIELD_MANAGER}&force=true`, obj, 'application/apply-patch+yaml');
      crdNames.push(name);
    }
    const ext = this.kubeConfig().makeApiClient(k8s.ApiextensionsV1Api);
    const deadline = Date.now() + 30_000;
    for (const name of crdNames) {
      for (;;) {
        const crd = await ext.readCustomResourceDefinition({ name });
        const established = crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True');
        if (established) break;
        if (Date.now() > deadline) throw new Error(`CRD ${name} not Established within 30 s: ${JSON.stringify(crd.status?.conditions)}`);
        await sleep(100);
      }
    }
    return crdNames;
  }

  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    // Clients first, then the API server, then its store.
    const order: Component[][] = [['kwok', 'kube-scheduler', 'kube-controller-manager'], ['kube-apiserver'], ['etcd']];
    for (const group of order) {
      await Promise.all(this.procs.filter((p) => group.includes(p.name)).map((p) => stopProc(p)));
    }
    if (!this.keepDir) await rm(this.dir, { recursive: true, force: true }).catch(() => {});
    this.claims.forEach(releaseClaim);
  }
}

class StartError extends Error {}

async function stopProc(p: Proc, graceMs = 5000): Promise<void> {
  const pid = p.child.pid;
  if (p.exit !== undefined || pid === undefined) return;
  const signal = (sig: NodeJS.Signals): void => {
    try {
      process.kill(pid, sig);
    } catch {
      // gone already
    }
  };
  signal('SIGTERM');
  const timer = setTimeout(() => signal('SIGKILL'), graceMs);
  await p.exited;
  clearTimeout(timer);
  livePids.delete(pid);
}

function fakeNode(name: string): k8s.V1Node {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      annotations: { 'node.alpha.kubernetes.io/ttl': '0', 'kwok.x-k8s.io/node': 'fake' },
      labels: {
        'beta.kubernetes.io/arch': 'amd64',
        'beta.kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        'kubernetes.io/hostname': name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/role': 'agent',
        'node-role.kubernetes.io/agent': '',
        type: 'kwok',
      },
    },
    // No kwok taint: ordinary Deployments schedule here without tolerations.
    spec: {},
  };
}

/** Starts the control plane; see KubeClusterOptions. On failure, stops what it started and throws with the failing log's tail. */
export async function startKubeCluster(options: KubeClusterOptions = {}): Promise<KubeCluster> {
  const binDir = options.binDir ?? KUBE_BIN_DIR;
  assertKubeBinaries(binDir);
  const nodeCount = options.nodes ?? 1;
  const started = Date.now();
  const deadline = started + (options.startTimeoutMs ?? 120_000);
  const log = options.log ?? (() => {});
  const keepDir = options.keepDir ?? process.env.STZ_KUBE_KEEP_DIR === '1';
  installExitHook();
  const { cidr: podCidr, claims } = claimPodCidr(options.podCidr);

  let dir: string;
  try {
    dir = await mkdtemp(path.join(os.tmpdir(), 'stz-kube-'));
  } catch (err) {
    claims.forEach(releaseClaim);
    throw err;
  }
  const cluster = new ClusterImpl(dir, podCidr, keepDir, binDir, claims);
  try {
    await startInto(cluster, nodeCount, deadline, log);
    log(`[kube] cluster up in ${Date.now() - started} ms: ${cluster.server} (dir ${dir})`);
    return cluster;
  } catch (err) {
    await cluster.stop().catch(() => {});
    const kept = keepDir ? `(files kept in ${dir})` : '(dir removed; STZ_KUBE_KEEP_DIR=1 keeps it)';
    const message = err instanceof StartError ? err.message : `${(err as Error).message ?? String(err)}`;
    throw new Error(`local Kubernetes cluster failed to start: ${message}\n${kept}`, { cause: err });
  }
}

async function startInto(cluster: ClusterImpl, nodeCount: number, deadline: number, log: (line: string) => void): Promise<void> {
  const dir = cluster.dir;
  const pki = path.join(dir, 'pki');
  await Promise.all(['pki', 'logs', 'etcd', 'apiserver-certs', 'kcm-certs', 'home'].map((d) => mkdir(path.join(dir, d), { recursive: true })));

  // Service-account token keys (the API server signs and verifies, the controller manager signs).
  const sa = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
  });
  const saKey = path.join(pki, 'sa.key');
  const saPub = path.join(pki, 'sa.pub');
  await writeFile(saKey, sa.privateKey, { mode: 0o600 });
  await writeFile(saPub, sa.publicKey);
  // token,user,uid,"group,..."
  const tokenFile = path.join(pki, 'tokens.csv');
  await writeFile(tokenFile, `${cluster.token},admin,admin-uid,"system:masters"\n${cluster.restrictedToken},nobody,nobody-uid\n`, { mode: 0o600 });

  // etcd
  const [etcdClient, etcdPeer, apiPort, kcmPort, schedPort] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
  const etcdUrl = `http://127.0.0.1:${etcdClient}`;
  const etcdPeerUrl = `http://127.0.0.1:${etcdPeer}`;
  const etcd = cluster.spawn('etcd', [
    '--name=stz',
    `--data-dir=${path.join(dir, 'etcd')}`,
    `--listen-client-urls=${etcdUrl}`,
    `--advertise-client-urls=${etcdUrl}`,
    `--listen-peer-urls=${etcdPeerUrl}`,
    `--initial-advertise-peer-urls=${etcdPeerUrl}`,
    `--initial-cluster=stz=${etcdPeerUrl}`,
    '--initial-cluster-state=new',
    '--unsafe-no-fsync=true',
    '--log-level=warn',
  ]);
  await cluster.waitFor('etcd /health', deadline, etcd, async () => {
    const r = await httpGet(`${etcdUrl}/health`);
    if (r.status === 200 && /"health":\s*"true"/.test(r.body)) return true;
    throw new Error(`etcd /health: ${r.status} ${r.body}`);
  });
  log(`[kube] etcd ready on ${etcdUrl}`);

  // kube-apiserver
  const certDir = path.join(dir, 'apiserver-certs');
  cluster.apiServerArgs = [
    `--etcd-servers=${etcdUrl}`,
    '--bind-address=127.0.0.1',
    '--advertise-address=127.0.0.1',
    `--secure-port=${apiPort}`,
    `--cert-dir=${certDir}`,
    `--service-account-issuer=${SA_ISSUER}`,
    `--service-account-key-file=${saPub}`,
    `--service-account-signing-key-file=${saKey}`,
    `--token-auth-file=${tokenFile}`,
    '--authorization-mode=RBAC',
    '--endpoint-reconciler-type=none',
    `--service-cluster-ip-range=${SERVICE_CLUSTER_IP_RANGE}`,
    '--allow-privileged=true',
    '--profiling=false',
  ];
  const apiserver = cluster.spawn('kube-apiserver', cluster.apiServerArgs);
  cluster.server = `https://127.0.0.1:${apiPort}`;
  // The API server writes a self-signed serving cert for 127.0.0.1 followed by the CA that signed it.
  const servingCert = path.join(certDir, 'apiserver.crt');
  const caPem = await cluster.waitFor('the API server serving certificate', deadline, apiserver, async () => {
    if (!existsSync(servingCert)) return undefined;
    return extractCa(await readFile(servingCert, 'utf8'));
  });
  await writeFile(cluster.caPath, caPem);
  const ca = Buffer.from(caPem);
  await cluster.waitFor('kube-apiserver /readyz', deadline, apiserver, async () => {
    const r = await httpGet(`${cluster.server}/readyz`, { ca, token: cluster.token });
    if (r.status === 200) return true;
    throw new Error(`/readyz: ${r.status} ${r.body.slice(-400)}`);
  });
  log(`[kube] kube-apiserver ready on ${cluster.server}`);

  await writeFile(
    cluster.kubeconfigPath,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'stz-kube', cluster: { server: cluster.server, 'certificate-authority': cluster.caPath } }],
      users: [{ name: 'admin', user: { token: cluster.token } }],
      contexts: [{ name: 'stz-kube', context: { cluster: 'stz-kube', user: 'admin', namespace: 'default' } }],
      'current-context': 'stz-kube',
    }),
    { mode: 0o600 },
  );

  cluster.spawn('kube-controller-manager', [
    `--kubeconfig=${cluster.kubeconfigPath}`,
    '--leader-elect=false',
    '--controllers=*',
    `--service-account-private-key-file=${saKey}`,
    `--root-ca-file=${cluster.caPath}`,
    '--use-service-account-credentials=false',
    '--bind-address=127.0.0.1',
    `--secure-port=${kcmPort}`,
    `--cert-dir=${path.join(dir, 'kcm-certs')}`,
    '--profiling=false',
    // Tests watch an HPA act (the default sync period is 15 s).
    '--horizontal-pod-autoscaler-sync-period=1s',
    // kwok's node heartbeats can lapse on a loaded 2-core machine; the node lifecycle controller would then
    // mark every pod NotReady (seen in a long conformance run) and kwok never marks them Ready again.
    '--node-monitor-grace-period=10m',
  ]);
  cluster.spawn('kube-scheduler', [
    `--kubeconfig=${cluster.kubeconfigPath}`,
    '--leader-elect=false',
    '--bind-address=127.0.0.1',
    `--secure-port=${schedPort}`,
    '--profiling=false',
  ]);
  // HOME points into the temp dir so kwok does not pick up a ~/.kwok/kwok.yaml. No --server-address and no
  // --node-port: kwok serves nothing.
  const kwok = cluster.spawn(
    'kwok',
    [`--kubeconfig=${cluster.kubeconfigPath}`, '--manage-all-nodes=true', `--cidr=${cluster.podCidr}`, '--node-ip=127.0.0.1'],
    { ...process.env, HOME: path.join(dir, 'home') },
  );

  const kc = cluster.kubeConfig();
  const core = kc.makeApiClient(k8s.CoreV1Api);
  cluster.nodeNames = Array.from({ length: nodeCount }, (_, i) => `kwok-node-${i}`);
  for (const name of cluster.nodeNames) await core.createNode({ body: fakeNode(name) });
  await cluster.waitFor(
    `nodes ${cluster.nodeNames.join(', ')} Ready and untainted`,
    deadline,
    kwok,
    async () => {
      const nodes = await core.listNode();
      const notReady = cluster.nodeNames.filter((name) => {
        const n = nodes.items.find((x) => x.metadata?.name === name);
        const ready = n?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
        const blocking = (n?.spec?.taints ?? []).filter((t) => t.effect === 'NoSchedule' || t.effect === 'NoExecute');
        return !ready || blocking.length > 0;
      });
      if (notReady.length === 0) return true;
      throw new Error(`not ready yet: ${notReady.join(', ')}`);
    },
    200,
  );
  // Pods need the namespace's default ServiceAccount (the controller manager creates it).
  await cluster.waitFor('ServiceAccount default/default', deadline, undefined, async () => {
    await core.readNamespacedServiceAccount({ name: 'default', namespace: 'default' });
    return true;
  }, 200);
}

/** The last certificate of a PEM bundle that is a CA (the API server's generated cert is leaf + CA). */
function extractCa(bundle: string): string | undefined {
  const pems = bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  for (const pem of pems.reverse()) {
    if (new X509Certificate(pem).ca) return `${pem}\n`;
  }
  return undefined;
}
