// The whole system for an end-to-end test: the demo upstream, our control plane (in-process), and the
// real Envoy from .venv, all on loopback with free ports. Every process is stopped by close().
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { REPO_ROOT, startEnvoy, type EnvoyProcess } from '../../envoy-bootstrap/envoy.ts';
import { renderBootstrap } from '../../envoy-bootstrap/render.ts';
import { FILE_LISTENER_NAME } from '../../sources/file/to-model.ts';
import { startControlPlane, type ControlPlane, type ControlPlaneOptions } from '../../xds-server/control-plane.ts';
import { createLogger, silentLogger } from '../../xds-server/log.ts';
import { startUpstream, type Upstream } from '../../upstream/server.ts';
import { eventually } from './eventually.ts';

/** STZ_FILTER_WASM points the tests at another build of the filter (e.g. a debug build). */
export const FILTER_WASM = process.env.STZ_FILTER_WASM ?? path.join(REPO_ROOT, 'filter', 'build', 'filter.wasm');

export function assertFilterBuilt(): void {
  if (!existsSync(FILTER_WASM)) throw new Error(`${FILTER_WASM} is missing; run "npm run build:filter" (or bash scripts/setup.sh)`);
}

export interface StackOptions {
  /** The gateway config, given the upstream's ports. `listener` is added (port 0) when absent. */
  config: (upstream: Upstream) => Record<string, unknown>;
  concurrency?: number;
  controlPlane?: Partial<ControlPlaneOptions>;
  envoyLogLevel?: string;
  /**
   * The ADS variant Envoy speaks: state of the world (GRPC) or delta (DELTA_GRPC). Default: $STZ_E2E_ADS_API,
   * else GRPC, so any e2e file can be run against a delta Envoy (STZ_E2E_ADS_API=DELTA_GRPC npx mocha ...).
   */
  adsApi?: 'GRPC' | 'DELTA_GRPC';
}

export function defaultAdsApi(): 'GRPC' | 'DELTA_GRPC' {
  const env = process.env.STZ_E2E_ADS_API;
  if (env === undefined || env === '' || env === 'GRPC') return 'GRPC';
  if (env === 'DELTA_GRPC') return 'DELTA_GRPC';
  throw new Error(`STZ_E2E_ADS_API must be GRPC or DELTA_GRPC, not "${env}"`);
}

export interface Stack {
  upstream: Upstream;
  cp: ControlPlane;
  envoy: EnvoyProcess;
  /** The gateway listener's port on 127.0.0.1. */
  port: number;
  dir: string;
  writeConfig(config: Record<string, unknown>): Promise<void>;
  /** Stops the control plane and starts a new one on the same ports and state dir (optionally changed, e.g. a new filter build). */
  restartControlPlane(overrides?: Partial<ControlPlaneOptions>): Promise<void>;
  adminFetch(pathAndQuery: string, init?: RequestInit): Promise<Response>;
  /** A POST to the wake route as the filter makes it: over mTLS with the Envoy's certificate (plaintext: the admin port). */
  wakeCall(host: string, headers?: Record<string, string>): Promise<{ status: number; body: string }>;
  close(): Promise<void>;
}

const testLog = process.env.STZ_TEST_LOG ? createLogger({ level: 'debug' }) : silentLogger;

export async function startStack(options: StackOptions): Promise<Stack> {
  assertFilterBuilt();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'stz-stack-'));
  const configPath = path.join(dir, 'gateway.yaml');
  const upstream = await startUpstream({ id: 'upstream-a' });
  const writeConfig = async (config: Record<string, unknown>): Promise<void> => {
    await writeFile(configPath, stringify({ listener: { address: '127.0.0.1', port: 0 }, ...config }));
  };
  await writeConfig(options.config(upstream));
  const cpOptions: ControlPlaneOptions = {
    configPath,
    stateDir: path.join(dir, 'state'),
    filterWasmPath: FILTER_WASM,
    log: testLog,
    // Every admin answer in tests must match its documented schema.
    adminResponseCheck: 'fail',
    ...options.controlPlane,
  };
  let cp = await startControlPlane(cpOptions);
  const envoy = await startEnvoy({
    // mTLS with the control plane's own certificates (as `npm start` runs it) unless the test asked for plaintext.
    bootstrap: renderBootstrap({
      nodeId: `test-${process.pid}-${Date.now()}`,
      xdsAddress: '127.0.0.1',
      xdsPort: cp.xdsPort,
      apiType: options.adsApi ?? defaultAdsApi(),
      ...(cp.pki ? { xdsTls: cp.pki.envoyFiles } : {}),
    }),
    concurrency: options.concurrency ?? 2,
    logLevel: options.envoyLogLevel ?? 'warning',
  });
  let port: number;
  try {
    port = await eventually(
      async () => {
        const p = await envoy.listenerPort(FILE_LISTENER_NAME);
        if (!p) throw new Error('listener not bound yet');
        // A port-0 listener is bound while it still warms (waiting for routes and the filter's ECDS config);
        // it accepts connections only once active.
        const stats = await envoy.stats('listener_manager.total_listeners');
        if (stats.get('listener_manager.total_listeners_warming') !== 0 || (stats.get('listener_manager.total_listeners_active') ?? 0) < 1) {
          throw new Error('listener still warming');
        }
        return p;
      },
      { timeoutMs: 20_000, what: 'Envoy binding the gateway listener' },
    );
  } catch (err) {
    const tail = envoy.logTail();
    await envoy.stop();
    await cp.close();
    await upstream.close();
    throw new Error(`${(err as Error).message}\nEnvoy log:\n${tail}`);
  }
  const stack: Stack = {
    upstream,
    get cp() {
      return cp;
    },
    envoy,
    port,
    dir,
    writeConfig,
    async restartControlPlane(overrides = {}) {
      const { xdsPort, adminPort, wakePort } = cp;
      await cp.close();
      cp = await startControlPlane({ ...cpOptions, ...overrides, xdsPort, adminPort, ...(wakePort !== undefined ? { wakePort } : {}) });
    },
    adminFetch: (p, init) => fetch(cp.adminUrl + p, init),
    async wakeCall(host, headers = {}) {
      const route = `/v1/wake/${encodeURIComponent(host)}`;
      if (cp.wakePort === undefined || !cp.pki) {
        const res = await fetch(cp.adminUrl + route, { method: 'POST', headers });
        return { status: res.status, body: await res.text() };
      }
      const current = path.join(cp.pki.envoyFiles.dir, 'current');
      const [cert, key, ca] = await Promise.all(['tls.crt', 'tls.key', 'ca.crt'].map((f) => readFile(path.join(current, f), 'utf8')));
      const port = cp.wakePort;
      return new Promise((resolve, reject) => {
        const req = httpsRequest({ host: '127.0.0.1', port, path: route, method: 'POST', headers, cert, key, ca, agent: false, checkServerIdentity: () => undefined }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on('error', reject);
        req.end();
      });
    },
    async close() {
      await envoy.stop();
      await cp.close();
      await upstream.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return stack;
}

/** A host whose backend is the demo upstream run as a process on `port` (woken by the process scaler). */
export function processHost(name: string, port: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name,
    domains: [`${name}.test`],
    endpoints: [{ address: '127.0.0.1', port }],
    scaler: {
      kind: 'process',
      command: [process.execPath, '--import', 'tsx', 'upstream/main.ts', '--http-port', String(port), '--grpc-port', '0', '--id', `${name}-process`],
      cwd: REPO_ROOT,
    },
    buffer: { holdTimeoutMs: 20_000, maxHeld: 1000, retryAfterSeconds: 1 },
    wakeTimeoutMs: 15_000,
    idleAfterMs: 0,
    ...extra,
  };
}
