// Pid records of process hosts and the orphan stop at start-up, with real processes (sleep): only a
// process whose pid, start time and boot id match its record is signalled.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { silentLogger } from '../../../xds-server/log.ts';
import { ProcessProvider } from '../../../xds-server/scaling/process-provider.ts';
import { identify, liveGroupMembers, writeProcessRecord, type ProcessIdentity, type ProcessRecord } from '../../../xds-server/state/process-records.ts';
import { eventually } from '../../support/eventually.ts';

describe('process records and orphan stop', function () {
  this.timeout(20_000);
  let stateDir: string;
  const groups: { child: ChildProcess; id: ProcessIdentity | undefined }[] = [];
  const track = (child: ChildProcess): ChildProcess => {
    groups.push({ child, id: identify(child.pid!) });
    return child;
  };
  const start = (command: string, args: string[]): ChildProcess => track(spawn(command, args, { detached: true, stdio: 'ignore' }));
  const exited = (child: ChildProcess): Promise<void> => (child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once('exit', () => r())));
  /** The identity of a process that has finished: a control plane that is gone. */
  const goneProcess = async (): Promise<ProcessIdentity> => {
    const child = start('sleep', ['0.05']);
    const id = identify(child.pid!)!;
    await exited(child);
    return id;
  };
  const record = (host: string, proc: ProcessIdentity, controlPlane: ProcessIdentity): ProcessRecord => ({
    formatVersion: 1,
    host,
    process: proc,
    command: ['sleep', '30'],
    startedAt: new Date().toISOString(),
    controlPlane,
  });
  const provider = (): ProcessProvider => new ProcessProvider(silentLogger, undefined, { probeIntervalMs: 2, stateDir });
  const files = async (): Promise<string[]> => (await readdir(path.join(stateDir, 'processes'))).sort();

  beforeEach(async () => {
    stateDir = await mkdtemp(path.join(os.tmpdir(), 'stz-records-'));
  });
  afterEach(async () => {
    // Each child leads its own group; what is left of a group (a background sleep) goes too, even when a
    // test failed before its own stop.
    for (const { child, id } of groups.splice(0)) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      if (id) for (const pid of liveGroupMembers(record('cleanup', id, id))) process.kill(pid, 'SIGKILL');
    }
    await rm(stateDir, { recursive: true, force: true });
  });

  it('identifies a live process by pid, start time and boot id, and nothing for a finished one', async () => {
    const me = identify(process.pid)!;
    expect(me.startTime).to.match(/^\d+$/);
    expect(me.bootId).to.match(/^[0-9a-f-]{36}$/);
    expect(identify(process.pid)).to.deep.equal(me);
    expect(identify((await goneProcess()).pid)).to.equal(undefined);
  });

  it('stops a recorded orphan whose control plane is gone, and removes its record', async () => {
    const orphan = start('sleep', ['30']);
    await writeProcessRecord(stateDir, record('app', identify(orphan.pid!)!, await goneProcess()));
    await provider().stopOrphans();
    await exited(orphan);
    expect(orphan.signalCode).to.equal('SIGTERM');
    expect(await files()).to.deep.equal([]);
  });

  it('never signals a process that reused a recorded pid (another start time), and drops the stale record', async () => {
    const stranger = start('sleep', ['30']);
    const real = identify(stranger.pid!)!;
    await writeProcessRecord(stateDir, record('app', { ...real, startTime: String(BigInt(real.startTime) - 1n) }, await goneProcess()));
    await provider().stopOrphans();
    expect(identify(stranger.pid!)).to.deep.equal(real);
    expect(await files()).to.deep.equal([]);
  });

  it('leaves alone the processes of a control plane that is still running on the same state dir', async () => {
    const other = start('sleep', ['30']);
    const owned = start('sleep', ['30']);
    await writeProcessRecord(stateDir, record('app', identify(owned.pid!)!, identify(other.pid!)!));
    await provider().stopOrphans();
    expect(identify(owned.pid!)).to.not.equal(undefined);
    expect(await files()).to.deep.equal([`app.${owned.pid}.json`]);
  });

  it('stops what is left of a group whose leader already exited', async () => {
    // The shell (the group leader) exits once its stdin closes; its background sleep stays in the group.
    const leader = track(spawn('sh', ['-c', 'sleep 30 & read line'], { detached: true, stdio: ['pipe', 'ignore', 'ignore'] }));
    const id = identify(leader.pid!)!;
    expect(id).to.not.equal(undefined);
    leader.stdin!.end();
    await exited(leader);
    const rec = record('app', id, await goneProcess());
    const members = await eventually(async () => {
      const m = liveGroupMembers(rec);
      if (m.length !== 1) throw new Error(`members ${m}`);
      return m;
    }, { timeoutMs: 5_000, what: 'the background sleep in the group' });
    await writeProcessRecord(stateDir, rec);
    await provider().stopOrphans();
    expect(identify(members[0]!)).to.equal(undefined);
    expect(liveGroupMembers(rec)).to.deep.equal([]);
  });

  it('ignores and removes a file that is not a record', async () => {
    await mkdir(path.join(stateDir, 'processes'), { recursive: true });
    await writeFile(path.join(stateDir, 'processes', 'app.1.json'), '{"formatVersion":1,"host":"app","process":{"pid":1}}');
    await provider().stopOrphans();
    expect(await files()).to.deep.equal([]);
  });

  it('records a started process and removes the record when it ends', async () => {
    const p = provider();
    const host = {
      name: 'app',
      clusterName: 'app',
      protocol: 'http1' as const,
      endpoints: [],
      scaleToZero: {
        buffer: { holdTimeoutMs: 1000, maxHeld: 1, retryAfterSeconds: 1 },
        exclusiveDomains: [],
        workload: { kind: 'process' as const, command: ['sleep', '30'] },
        health: { kind: 'tcp' as const, timeoutMs: 100 },
        wakeTimeoutMs: 1000,
        idleAfterMs: 0,
      },
    };
    await p.wake(host);
    const pid = p.pid('app')!;
    await eventually(async () => expect(await files()).to.deep.equal([`app.${pid}.json`]), { timeoutMs: 5_000, what: 'the record' });
    await p.stop(host);
    await eventually(async () => expect(await files()).to.deep.equal([]), { timeoutMs: 5_000, what: 'the record removed' });
  });
});
