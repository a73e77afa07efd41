// A process host outlives a control plane killed with SIGKILL (it runs in its own process group). The next
// control plane on the same state dir must find that copy through its pid record and stop it, so its own
// wake starts exactly one copy that owns the port. Real processes: the control plane CLI (xds-server/main.ts)
// and the demo upstream it starts; only the control plane's own pid is killed.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { stringify } from 'yaml';
import { REPO_ROOT } from '../../envoy-bootstrap/envoy.ts';
import { identify } from '../../xds-server/state/process-records.ts';
import { eventually } from '../support/eventually.ts';
import { freePort } from '../support/ports.ts';

/** Pids of live processes whose command line holds `marker` (the host's --id, unique to this run). */
function pidsWith(marker: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      // A zombie has an empty cmdline; it holds no port.
      if (cmdline.split('\0').includes(marker)) pids.push(Number(entry));
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}

interface CliControlPlane {
  child: ChildProcess;
  output: () => string;
  exited: Promise<void>;
}

describe('a process host left running by a control plane killed with SIGKILL', function () {
  this.timeout(90_000);
  const marker = `orphan-e2e-${process.pid}-${Date.now()}`;
  let dir: string;
  let httpPort: number;
  let xdsPort: number;
  let adminPort: number;
  const started: CliControlPlane[] = [];

  const startControlPlane = async (): Promise<CliControlPlane> => {
    const args = ['--import', 'tsx', 'xds-server/main.ts', '--config', path.join(dir, 'gateway.yaml'), '--state-dir', path.join(dir, 'state')];
    args.push('--xds-port', String(xdsPort), '--admin-port', String(adminPort), '--log-level', 'debug');
    const child = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    for (const s of [child.stdout!, child.stderr!]) s.on('data', (d: Buffer) => (output += d.toString('utf8')));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const cp = { child, output: () => output, exited };
    started.push(cp);
    await eventually(
      async () => {
        if (child.exitCode !== null) throw new Error(`the control plane exited (${child.exitCode}):\n${output}`);
        const res = await fetch(`http://127.0.0.1:${adminPort}/healthz`);
        if (res.status !== 200) throw new Error(`healthz ${res.status}`);
      },
      { timeoutMs: 30_000, what: 'the control plane answering /healthz' },
    );
    return cp;
  };
  const wake = async (): Promise<void> => {
    const res = await fetch(`http://127.0.0.1:${adminPort}/v1/hosts/app/wake`, { method: 'POST' });
    expect(res.status, await res.text()).to.equal(200);
  };
  const hostAnswer = async (): Promise<{ upstream: string }> => {
    const res = await fetch(`http://127.0.0.1:${httpPort}/hello`);
    expect(res.status).to.equal(200);
    return (await res.json()) as { upstream: string };
  };

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'stz-orphan-'));
    [httpPort, xdsPort, adminPort] = [await freePort(), await freePort(), await freePort()];
    const command = [process.execPath, '--import', 'tsx', path.join(REPO_ROOT, 'upstream', 'main.ts'), '--http-port', String(httpPort), '--grpc-port', '0', '--id', marker];
    await writeFile(
      path.join(dir, 'gateway.yaml'),
      stringify({
        listener: { address: '127.0.0.1', port: 0 },
        hosts: [
          {
            name: 'app',
            domains: ['app.test'],
            endpoints: [{ address: '127.0.0.1', port: httpPort }],
            scaler: { kind: 'process', command, cwd: REPO_ROOT },
            health: { path: '/healthz' },
            wakeTimeoutMs: 20_000,
          },
        ],
      }),
    );
  });

  after(async () => {
    // Everything this test started: the control planes (SIGTERM stops the host process they own), then
    // any copy of the host still alive, by pid.
    for (const cp of started) {
      if (cp.child.exitCode === null && cp.child.signalCode === null) {
        cp.child.kill('SIGTERM');
        await Promise.race([cp.exited, new Promise((r) => setTimeout(r, 15_000).unref())]);
        if (cp.child.exitCode === null && cp.child.signalCode === null) cp.child.kill('SIGKILL');
      }
    }
    for (const pid of pidsWith(marker)) process.kill(pid, 'SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  it('is stopped by the next control plane on the same state dir, whose wake then runs the only copy', async () => {
    const first = await startControlPlane();
    await wake();
    expect((await hostAnswer()).upstream).to.equal(marker);
    const [orphan, ...others] = pidsWith(marker);
    expect(others, 'one copy after the first wake').to.deep.equal([]);
    const orphanIdentity = identify(orphan!);
    expect(await readdir(path.join(dir, 'state', 'processes'))).to.deep.equal([`app.${orphan}.json`]);

    first.child.kill('SIGKILL');
    await first.exited;
    expect(identify(orphan!), 'the host process outlives SIGKILL of its control plane').to.deep.equal(orphanIdentity);
    expect((await hostAnswer()).upstream, 'and still holds the port').to.equal(marker);

    const second = await startControlPlane();
    expect(identify(orphan!), 'the orphan is gone once the new control plane is up').to.equal(undefined);
    expect(pidsWith(marker)).to.deep.equal([]);
    expect(second.output()).to.include('stopping a host process left running by a control plane that did not stop it');
    expect(await readdir(path.join(dir, 'state', 'processes'))).to.deep.equal([]);

    await wake();
    expect((await hostAnswer()).upstream).to.equal(marker);
    const copies = pidsWith(marker);
    expect(copies, 'exactly one copy runs after the new wake').to.have.length(1);
    expect(copies[0]).to.not.equal(orphan);
    expect(await readdir(path.join(dir, 'state', 'processes'))).to.deep.equal([`app.${copies[0]}.json`]);
    const host = (await (await fetch(`http://127.0.0.1:${adminPort}/v1/hosts/app`)).json()) as { state: string; scaling: { phase: string; lastError?: string } };
    expect(host).to.deep.include({ state: 'ready' });
    expect(host.scaling.phase).to.equal('ready');
  });
});
