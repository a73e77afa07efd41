// The control plane as production runs it (`npm start`, the container image): the bundle scripts/build.ts
// writes, plain node with the production flags, no tsx. It starts in file mode, serves its admin API and
// status page (read from next to the bundle) and the snapshot it built. (The xDS benchmark drives the same
// bundled code with a real Envoy: bench/lib/xds-peer.ts.)
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { REPO_ROOT } from '../../envoy-bootstrap/envoy.ts';
import { buildBundles } from '../../scripts/build.ts';
import { CONTROL_PLANE_NODE_ENV, CONTROL_PLANE_NODE_FLAGS } from '../../xds-server/node-flags.ts';
import { eventually } from '../support/eventually.ts';
import { freePort } from '../support/ports.ts';

describe('the bundled control plane (scripts/build.ts), run as npm start runs it', function () {
  this.timeout(90_000);
  let dir: string;
  let child: ChildProcess | undefined;
  let output = '';

  before(async () => {
    // Inside the repository: the bundle imports its npm packages from node_modules, as dist/ does.
    await mkdir(path.join(REPO_ROOT, '.cache'), { recursive: true });
    dir = await mkdtemp(path.join(REPO_ROOT, '.cache', 'bundle-e2e-'));
    await buildBundles(path.join(dir, 'dist'));
  });
  after(async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child!.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  });

  it('starts in file mode with the production flags and serves /healthz, the status page and its config', async () => {
    const [xdsPort, adminPort] = [await freePort(), await freePort()];
    const args = [...CONTROL_PLANE_NODE_FLAGS, path.join(dir, 'dist', 'xds-server', 'main.mjs'), '--config', path.join(REPO_ROOT, 'config', 'gateway.yaml')];
    args.push('--state-dir', path.join(dir, 'state'), '--xds-port', String(xdsPort), '--admin-port', String(adminPort), '--insecure-xds-plaintext');
    child = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...CONTROL_PLANE_NODE_ENV } });
    for (const s of [child.stdout!, child.stderr!]) s.on('data', (d: Buffer) => (output += d.toString('utf8')));
    const cp = child;
    await eventually(
      async () => {
        if (cp.exitCode !== null) throw new Error(`the control plane exited (${cp.exitCode}):\n${output}`);
        const res = await fetch(`http://127.0.0.1:${adminPort}/healthz`);
        if (res.status !== 200) throw new Error(`healthz ${res.status}`);
      },
      { timeoutMs: 30_000, what: 'the bundled control plane answering /healthz' },
    );
    const page = await fetch(`http://127.0.0.1:${adminPort}/status`);
    expect(page.status).to.equal(200);
    expect(await page.text()).to.contain('<html');
    const snapshot = await fetch(`http://127.0.0.1:${adminPort}/v1/snapshot`);
    expect(snapshot.status, await snapshot.clone().text()).to.equal(200);
    expect(((await snapshot.json()) as { snapshot: { versions: Record<string, string> } | null }).snapshot?.versions).to.have.keys('cluster', 'endpoint', 'listener', 'route', 'extensionConfig');
    expect(cp.exitCode).to.equal(null);
  });
});
