// An in-process control plane on loopback with a temp config file and state dir, for tests without Envoy.
// Its xDS port is plaintext unless a test passes xdsSecurity: 'mtls'.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { startControlPlane, type ControlPlane, type ControlPlaneOptions } from '../../xds-server/control-plane.ts';
import { silentLogger } from '../../xds-server/log.ts';

export interface TestControlPlane {
  cp: ControlPlane;
  dir: string;
  writeConfig(config: Record<string, unknown>): Promise<void>;
  close(): Promise<void>;
}

export function simpleHosts(names: string[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    listener: { address: '127.0.0.1', port: 10000 },
    hosts: names.map((name, i) => ({ name, domains: [`${name}.test`], endpoints: [{ address: '127.0.0.1', port: 20000 + i }], ...extra })),
  };
}

export async function startTestControlPlane(config: Record<string, unknown>, options: Partial<ControlPlaneOptions> = {}): Promise<TestControlPlane> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'stz-cp-'));
  const configPath = path.join(dir, 'gateway.yaml');
  const writeConfig = (c: Record<string, unknown>): Promise<void> => writeFile(configPath, stringify(c));
  await writeConfig(config);
  const cp = await startControlPlane({
    configPath,
    stateDir: path.join(dir, 'state'),
    filterWasmPath: '/opt/stz/filter.wasm',
    log: silentLogger,
    // Every admin answer in tests must match its documented schema.
    adminResponseCheck: 'fail',
    // These tests talk to the xDS port with raw gRPC clients: plaintext, as --insecure-xds-plaintext runs it
    // (test/e2e/xds-mtls.e2e.ts covers mutual TLS).
    xdsSecurity: 'plaintext',
    ...options,
  });
  return {
    cp,
    dir,
    writeConfig,
    // `this.cp`, not the first one: a test may have replaced it (restart scenarios).
    async close(this: TestControlPlane) {
      await this.cp.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
