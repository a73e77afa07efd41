// An Envoy whose bootstrap names two control-plane replicas (real processes, the CLI) fails over by itself
// when the one it streams from is killed with SIGKILL: it reconnects to the other within Envoy's reconnect
// backoff, takes that replica's config, and held requests and traffic carry on.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { stringify } from 'yaml';
import { REPO_ROOT, startEnvoy, type EnvoyProcess } from '../../envoy-bootstrap/envoy.ts';
import { renderBootstrap } from '../../envoy-bootstrap/render.ts';
import { FILE_LISTENER_NAME } from '../../sources/file/to-model.ts';
import { startUpstream, type Upstream } from '../../upstream/server.ts';
import { eventually } from '../support/eventually.ts';
import { http1Request } from '../support/http-client.ts';
import { freePort } from '../support/ports.ts';
import { FILTER_WASM } from '../support/stack.ts';
import { STATE_FILE_NAME } from '../../xds-server/state/persistence.ts';

interface Replica {
  name: string;
  child: ChildProcess;
  xdsPort: number;
  adminPort: number;
  exited: Promise<void>;
}

interface NodesBody {
  nodes: { nodeId: string; types: { listener?: { ackedVersion?: string } } }[];
}

describe('an Envoy with two control-plane replicas in its bootstrap', function () {
  this.timeout(120_000);
  let dir: string;
  let upstreams: Upstream[];
  let envoy: EnvoyProcess | undefined;
  const replicas: Replica[] = [];

  const config = (u: Upstream): Record<string, unknown> => ({
    listener: { address: '127.0.0.1', port: 0 },
    hosts: [{ name: 'web', domains: ['web.test'], endpoints: [{ address: '127.0.0.1', port: u.httpPort }] }],
  });

  async function startReplica(name: string, xdsPort?: number): Promise<Replica> {
    xdsPort ??= await freePort();
    const adminPort = await freePort();
    const args = ['--import', 'tsx', 'xds-server/main.ts', '--config', path.join(dir, `${name}.yaml`), '--state-dir', path.join(dir, `${name}-state`)];
    args.push('--filter', FILTER_WASM, '--xds-port', String(xdsPort), '--admin-port', String(adminPort), '--log-level', 'warn');
    // Each file-mode replica would generate its own CA in its own state dir; the Envoy that fails over between
    // them must trust one, so these replicas serve plaintext (file-mode replicas sharing a CA: not built yet).
    args.push('--insecure-xds-plaintext');
    const child = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    let output = '';
    child.stderr!.on('data', (d: Buffer) => (output += d.toString('utf8')));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const replica = { name, child, xdsPort, adminPort, exited };
    replicas.push(replica);
    await eventually(async () => {
      if (child.exitCode !== null) throw new Error(`replica ${name} exited (${child.exitCode}):\n${output}`);
      expect((await fetch(`http://127.0.0.1:${adminPort}/healthz`)).status).to.equal(200);
    }, { timeoutMs: 30_000, what: `replica ${name} answering /healthz` });
    return replica;
  }

  const nodesOn = async (r: Replica): Promise<NodesBody['nodes']> => ((await (await fetch(`http://127.0.0.1:${r.adminPort}/v1/nodes`)).json()) as NodesBody).nodes;
  const ackedOn = async (r: Replica): Promise<boolean> => (await nodesOn(r)).some((n) => n.nodeId === 'failover-envoy' && n.types.listener?.ackedVersion !== undefined);

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'stz-failover-'));
    upstreams = [await startUpstream({ id: 'upstream-1' }), await startUpstream({ id: 'upstream-2' })];
    for (const name of ['a', 'b']) await writeFile(path.join(dir, `${name}.yaml`), stringify(config(upstreams[0]!)));
  });
  after(async () => {
    await envoy?.stop();
    for (const r of replicas) {
      if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGKILL');
      await r.exited;
    }
    for (const u of upstreams ?? []) await u.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('reconnects to the other replica after a SIGKILL, takes its config, and keeps serving', async () => {
    const [a, b] = [await startReplica('a'), await startReplica('b')];
    envoy = await startEnvoy({
      bootstrap: renderBootstrap({ nodeId: 'failover-envoy', xdsAddress: '127.0.0.1', xdsPort: a.xdsPort, moreXdsEndpoints: [{ address: '127.0.0.1', port: b.xdsPort }] }),
    });
    const connectedTo = await eventually(async () => {
      const on = [];
      for (const r of [a, b]) if (await ackedOn(r)) on.push(r);
      expect(on, 'exactly one replica serves the Envoy').to.have.length(1);
      return on[0]!;
    }, { timeoutMs: 20_000, what: 'the Envoy streaming from one replica' });
    const other = connectedTo === a ? b : a;
    const port = await eventually(async () => {
      const p = await envoy!.listenerPort(FILE_LISTENER_NAME);
      if (!p) throw new Error('no listener yet');
      expect((await http1Request({ port: p, host: 'web.test' })).status).to.equal(200);
      return p;
    }, { what: 'traffic through the gateway' });

    // The survivor's config differs (another upstream), so where the Envoy's config comes from is visible.
    await writeFile(path.join(dir, `${other.name}.yaml`), stringify(config(upstreams[1]!)));
    expect((await fetch(`http://127.0.0.1:${other.adminPort}/v1/config/reload`, { method: 'POST' })).status).to.equal(200);
    expect(JSON.parse((await http1Request({ port, host: 'web.test' })).body).upstream).to.equal('upstream-1');

    connectedTo.child.kill('SIGKILL');
    await connectedTo.exited;
    await eventually(async () => expect(await ackedOn(other)).to.equal(true), { timeoutMs: 10_000, what: 'the Envoy streaming from the surviving replica' });
    await eventually(async () => expect(JSON.parse((await http1Request({ port, host: 'web.test' })).body).upstream).to.equal('upstream-2'), {
      what: "traffic on the surviving replica's config",
    });
  });
  for (const apiType of ['GRPC', 'DELTA_GRPC'] as const) {
    it(`applies the surviving replica's configs even when the Envoy held a higher filter generation from the dead one (${apiType})`, async () => {
      // Replica d's generation is far ahead (a clock set forward, or simply a longer history); c's is "now".
      const [cName, dName] = [`c-${apiType}`, `d-${apiType}`];
      await mkdir(path.join(dir, `${dName}-state`), { recursive: true });
      await writeFile(path.join(dir, `${dName}-state`, STATE_FILE_NAME), JSON.stringify({ formatVersion: 1, generation: Date.now() + 1e9, hosts: {} }));
      for (const name of [cName, dName]) await writeFile(path.join(dir, `${name}.yaml`), stringify(config(upstreams[0]!)));
      const cPort = await freePort();
      const d = await startReplica(dName);
      await envoy?.stop();
      // c is not up yet: the Envoy can only stream from d.
      envoy = await startEnvoy({
        bootstrap: renderBootstrap({ nodeId: 'failover-envoy', xdsAddress: '127.0.0.1', xdsPort: d.xdsPort, moreXdsEndpoints: [{ address: '127.0.0.1', port: cPort }], apiType }),
      });
      await eventually(async () => expect(await ackedOn(d)).to.equal(true), { timeoutMs: 20_000, what: 'the Envoy streaming from d' });
      const port = await eventually(async () => {
        const p = await envoy!.listenerPort(FILE_LISTENER_NAME);
        if (!p) throw new Error('no listener yet');
        return p;
      }, { what: 'the listener' });
      const c = await startReplica(cName, cPort);
      d.child.kill('SIGKILL');
      await d.exited;
      await eventually(async () => expect(await ackedOn(c)).to.equal(true), { timeoutMs: 10_000, what: 'the Envoy streaming from c' });
      // c marks the host: the Envoy must hold its next request (a filter ignoring c's older generation would not).
      expect((await fetch(`http://127.0.0.1:${c.adminPort}/v1/hosts/web/scale-to-zero`, { method: 'POST' })).status).to.equal(200);
      const reply = http1Request({ port, host: 'web.test', path: '/held' });
      await eventually(async () => expect((await envoy!.stats('wasmcustom.scale_to_zero.held')).get('wasmcustom.scale_to_zero.held')).to.equal(1), {
        what: 'the request held by the filter',
      });
      expect((await fetch(`http://127.0.0.1:${c.adminPort}/v1/hosts/web/wake`, { method: 'POST' })).status).to.equal(200);
      expect((await reply).status).to.equal(200);
    });
  }
});
