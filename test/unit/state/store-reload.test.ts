// A reload's new config is in the store at once (the reload publishes while the state file is written), and
// the hosts the reload left unchanged keep their objects.
import { expect } from 'chai';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { validateGatewayConfig } from '../../../sources/file/parse.ts';
import type { GatewayConfig } from '../../../sources/file/config.ts';
import { GatewayStore } from '../../../xds-server/state/store.ts';

function config(ports: number[]): GatewayConfig {
  const r = validateGatewayConfig({ listener: { port: 10_000 }, hosts: ports.map((port, i) => ({ name: `h${i}`, domains: [`h${i}.test`], endpoints: [{ address: '127.0.0.1', port }], ...(i === 2 ? { initialState: 'scaled_to_zero' } : {}) })) });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.value;
}

describe('store: a config reload and its state file', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'stz-store-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('is in force before its state file is written, and the write follows', async () => {
    const store = new GatewayStore(config([1, 2]), undefined, { stateDir: dir, filterWasmPath: '/dev/null' });
    const replaced = store.replaceConfig(config([1, 2, 3]));
    // Synchronously: the new host is there (held, as its initialState says), the model has its backend.
    expect(store.hosts().map((h) => [h.config.name, h.scaledToZero])).to.deep.equal([['h0', false], ['h1', false], ['h2', true]]);
    expect(store.desired().model.backends.map((b) => b.name)).to.deep.equal(['h0', 'h1', 'h2']);
    expect(await replaced).to.deep.equal({ added: ['h2'], changed: [], removed: [] });
    const saved = JSON.parse(await readFile(path.join(dir, 'state.json'), 'utf8')) as { hosts: Record<string, { scaledToZero: boolean }> };
    expect(saved.hosts.h2?.scaledToZero).to.equal(true);
  });

  it('with persistAfter, writes nothing until that settles, and resolves only after the write', async () => {
    const store = new GatewayStore(config([1, 2]), undefined, { stateDir: dir, filterWasmPath: '/dev/null' });
    let pushed!: () => void;
    let done = false;
    const replaced = store.replaceConfig(config([1, 2, 3]), { persistAfter: new Promise<void>((r) => (pushed = r)) }).then((d) => ((done = true), d));
    await new Promise((r) => setTimeout(r, 30));
    const file = path.join(dir, 'state.json');
    expect(await stat(file).then(() => 'written', () => 'absent'), 'the state was written before its push was applied').to.equal('absent');
    expect(done).to.equal(false);
    pushed();
    expect((await replaced).added).to.deep.equal(['h2']);
    const saved = JSON.parse(await readFile(file, 'utf8')) as { hosts: Record<string, { scaledToZero: boolean }> };
    expect(saved.hosts.h2?.scaledToZero).to.equal(true);
  });

  it('writes a held reload state at once when another change must be durable (no wait on a push not yet scheduled)', async () => {
    const store = new GatewayStore(config([1, 2]), undefined, { stateDir: dir, filterWasmPath: '/dev/null' });
    // The control plane's reload holds its write until its push, and holds stopped process hosts before it
    // schedules that push: the hold's write must not wait for it.
    const replaced = store.replaceConfig(config([1, 2, 3]), { persistAfter: new Promise<void>(() => {}) });
    await store.setScaledToZero('h0', true, 'test');
    await replaced;
    const saved = JSON.parse(await readFile(path.join(dir, 'state.json'), 'utf8')) as { hosts: Record<string, { scaledToZero: boolean }> };
    expect([saved.hosts.h0?.scaledToZero, saved.hosts.h2?.scaledToZero]).to.deep.equal([true, true]);
  });

  it('flush() writes a held state (shutdown)', async () => {
    const store = new GatewayStore(config([1, 2]), undefined, { stateDir: dir, filterWasmPath: '/dev/null' });
    const replaced = store.replaceConfig(config([1, 2, 3]), { persistAfter: new Promise<void>(() => {}) });
    await store.flush();
    await replaced;
    const saved = JSON.parse(await readFile(path.join(dir, 'state.json'), 'utf8')) as { hosts: Record<string, unknown> };
    expect(Object.keys(saved.hosts)).to.deep.equal(['h0', 'h1', 'h2']);
  });

  it('keeps the objects of the hosts it left unchanged', async () => {
    const first = config([1, 2]);
    const store = new GatewayStore(first, undefined, { stateDir: dir, filterWasmPath: '/dev/null' });
    const next = config([1, 5]);
    // The incremental reader hands back the very object of an unchanged entry; an equal copy counts the same.
    next.hosts[0] = first.hosts[0]!;
    const diff = await store.replaceConfig(next);
    expect(diff.changed).to.deep.equal(['h1']);
    expect(store.hosts()[0]!.config).to.equal(first.hosts[0]);
    const copy = config([1, 5]);
    await store.replaceConfig(copy);
    expect(store.hosts()[1]!.config).to.not.equal(copy.hosts[1]);
    expect(store.hosts()[1]!.config).to.equal(next.hosts[1]);
  });

  it('is not written again by a change that leaves the persisted state the same (an endpoint moved), and is by one that does not', async () => {
    const store = new GatewayStore(config([1, 2]), undefined, { stateDir: dir, filterWasmPath: '/dev/null' });
    await store.replaceConfig(config([1, 2, 3]));
    const file = path.join(dir, 'state.json');
    const written = (await stat(file)).mtimeMs;
    // Marked so a rewrite would show: the writer replaces the file (a new inode) each time.
    const inode = (await stat(file)).ino;
    await new Promise((r) => setTimeout(r, 20));
    await store.replaceConfig(config([1, 5, 3]));
    expect((await stat(file)).ino, 'an endpoint change rewrote the state file').to.equal(inode);
    expect((await stat(file)).mtimeMs).to.equal(written);
    await store.replaceConfig(config([1, 5]));
    expect((await stat(file)).ino, 'removing the held host must rewrite the state').to.not.equal(inode);
    const saved = JSON.parse(await readFile(file, 'utf8')) as { hosts: Record<string, unknown> };
    expect(Object.keys(saved.hosts)).to.not.include('h2');
  });

  it('hands out the same held set until a change, then the held hosts after it', async () => {
    const store = new GatewayStore(config([1, 2, 3]), undefined, { stateDir: dir, filterWasmPath: '/dev/null' });
    const first = store.desired().held;
    expect([...first]).to.deep.equal(['h2']);
    expect(store.desired().held).to.equal(first);
    await store.setHeld('h0', true, 'test');
    expect([...store.desired().held].sort()).to.deep.equal(['h0', 'h2']);
    await store.replaceConfig(config([1, 2]));
    expect([...store.desired().held]).to.deep.equal(['h0']);
    await store.setHeld('h0', false, 'test');
    expect([...store.desired().held]).to.deep.equal([]);
  });

  it('hands out the same backend views until a change, then views of what changed', async () => {
    const store = new GatewayStore(config([1, 2, 3]), undefined, { stateDir: dir, filterWasmPath: '/dev/null' });
    const first = store.scalable();
    expect(store.scalable()).to.equal(first);
    expect(first.map((v) => [v.backend.name, v.held])).to.deep.equal([['h0', false], ['h1', false], ['h2', true]]);
    await store.setHeld('h0', true, 'test');
    const held = store.scalable();
    expect(held).to.not.equal(first);
    expect(held.map((v) => [v.backend.name, v.held, v.reason])).to.deep.equal([['h0', true, 'test'], ['h1', false, 'initialState in config'], ['h2', true, 'initialState in config']]);
    await store.replaceConfig(config([1, 2]));
    expect(store.scalable().map((v) => v.backend.name)).to.deep.equal(['h0', 'h1']);
    expect(store.find('h0')?.held).to.equal(true);
  });
});
