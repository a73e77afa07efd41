// The informer against a scripted API: resume from the last version, relist on 410, backoff with jitter
// after errors, bookmarks, and the watchdog for a watch that went silent.
import { expect } from 'chai';
import { Informer } from '../../../xds-server/kubernetes/informer.ts';
import { KubeApiError, type KubeClient, type KubeObject, type ObjectList, type WatchEventType, type WatchHandle } from '../../../xds-server/kubernetes/rest.ts';
import { silentLogger } from '../../../xds-server/log.ts';
import { FakeClock, settle } from '../../support/fake-clock.ts';

const obj = (name: string, rv: string): KubeObject => ({ metadata: { name, namespace: 'ns', resourceVersion: rv } });

interface OpenWatch {
  rv: string;
  send(type: WatchEventType, o: KubeObject | Record<string, unknown>): void;
  end(err?: unknown): void;
  aborted: boolean;
}

class ScriptedApi implements KubeClient {
  lists: ObjectList[] = [];
  listCalls = 0;
  listError: unknown;
  watches: OpenWatch[] = [];
  async get(): Promise<KubeObject> {
    throw new Error('unused');
  }
  async request(): Promise<KubeObject> {
    throw new Error('unused');
  }
  async list(): Promise<ObjectList> {
    this.listCalls += 1;
    if (this.listError) {
      const e = this.listError;
      this.listError = undefined;
      throw e;
    }
    return this.lists.shift() ?? { items: [], resourceVersion: '1' };
  }
  async watch(_path: string, rv: string, onEvent: (t: WatchEventType, o: KubeObject) => void, onDone: (err: unknown) => void): Promise<WatchHandle> {
    const w: OpenWatch = {
      rv,
      aborted: false,
      send: (t, o) => onEvent(t, o as KubeObject),
      end: (err) => onDone(err ?? null),
    };
    this.watches.push(w);
    return { abort: () => void (w.aborted = true) };
  }
  get current(): OpenWatch {
    return this.watches[this.watches.length - 1]!;
  }
}

function setup() {
  const clock = new FakeClock();
  const api = new ScriptedApi();
  const informer = new Informer(api, '/api/v1/things', silentLogger, { watchdogMs: 10_000, backoffInitialMs: 100, backoffMaxMs: 1_000, clock, random: () => 1 });
  const retries: number[] = [];
  informer.on('retry', (_r, delay) => retries.push(delay));
  return { clock, api, informer, retries };
}

const names = (i: Informer): string[] => i.list().map((o) => o.metadata.name).sort();

describe('Informer (list + watch that survives)', () => {
  it('lists, then watches from the list version, applying adds, updates and deletes', async () => {
    const t = setup();
    t.api.lists.push({ items: [obj('a', '5'), obj('b', '6')], resourceVersion: '10' });
    t.informer.start();
    await t.informer.waitForSync();
    await settle();
    expect(names(t.informer)).to.deep.equal(['a', 'b']);
    expect(t.api.current.rv).to.equal('10');
    t.api.current.send('ADDED', obj('c', '11'));
    t.api.current.send('MODIFIED', { metadata: { name: 'a', namespace: 'ns', resourceVersion: '12' }, spec: { x: 1 } });
    t.api.current.send('DELETED', obj('b', '13'));
    expect(names(t.informer)).to.deep.equal(['a', 'c']);
    expect(t.informer.get('ns', 'a')!.spec).to.deep.equal({ x: 1 });
    t.informer.stop();
  });

  it('resumes from the last version (a bookmark counts) when the server ends the watch', async () => {
    const t = setup();
    t.informer.start();
    await settle();
    t.api.current.send('ADDED', obj('a', '20'));
    t.api.current.send('BOOKMARK', { metadata: { name: '', resourceVersion: '25' } });
    await t.clock.advance(2_000, 500);
    t.api.current.end();
    await settle();
    expect(t.api.watches).to.have.length(2);
    expect(t.api.current.rv).to.equal('25');
    expect(t.api.listCalls, 'no relist for a normal end').to.equal(1);
    expect(names(t.informer)).to.deep.equal(['a']);
    t.informer.stop();
  });

  it('lists again on 410 Gone, and drops what was deleted while it was away', async () => {
    const t = setup();
    t.api.lists.push({ items: [obj('a', '1'), obj('b', '2')], resourceVersion: '2' });
    t.api.lists.push({ items: [obj('a', '1')], resourceVersion: '90' });
    t.informer.start();
    await settle();
    t.api.current.send('ERROR', { code: 410, message: 'too old resource version: 2 (80)' });
    await t.clock.advance(200, 50);
    expect(t.api.listCalls).to.equal(2);
    expect(t.informer.stats.relistsOnGone).to.equal(1);
    expect(names(t.informer)).to.deep.equal(['a']);
    expect(t.api.current.rv).to.equal('90');
    t.informer.stop();
  });

  it('backs off exponentially with jitter after errors, up to the cap', async () => {
    const t = setup();
    t.informer.start();
    await settle();
    for (let i = 0; i < 6; i++) {
      t.api.current.end(new Error('connection reset'));
      await settle();
      await t.clock.advance(1_000, 50);
    }
    // random() = 1 → the whole ceiling: 100, 200, 400, 800, then capped at 1,000.
    expect(t.retries).to.deep.equal([100, 200, 400, 800, 1_000, 1_000]);
    t.informer.stop();
  });

  it('retries a failed list with backoff instead of giving up', async () => {
    const t = setup();
    t.api.listError = new KubeApiError(503, 'ServiceUnavailable', 'etcd is down', 'GET /api/v1/things');
    t.informer.start();
    await settle();
    expect(t.informer.synced).to.equal(false);
    await t.clock.advance(200, 50);
    await t.informer.waitForSync();
    expect(t.api.listCalls).to.equal(2);
    t.informer.stop();
  });

  it('does not loop hot when every watch is refused with 410 at once: it lists again, with growing backoff', async () => {
    const t = setup();
    t.informer.start();
    await settle();
    for (let round = 0; round < 5; round++) {
      t.api.current.send('ERROR', { code: 410, message: 'too old' });
      await t.clock.advance(1_000, 50);
    }
    await t.clock.advance(500, 50);
    expect(t.retries).to.deep.equal([100, 200, 400, 800, 1_000]);
    expect(t.api.listCalls, 'the first list and one per refusal, each after its backoff').to.equal(6);
    t.informer.stop();
  });

  it('forgives earlier failures once a watch has worked', async () => {
    const t = setup();
    t.informer.start();
    await settle();
    for (let i = 0; i < 4; i++) {
      t.api.current.end(new Error('connection refused'));
      await t.clock.advance(1_000, 50);
    }
    t.api.current.send('ADDED', obj('a', '3'));
    t.api.current.end(new Error('connection reset'));
    await t.clock.advance(1_000, 50);
    expect(t.retries).to.deep.equal([100, 200, 400, 800, 100]);
    t.informer.stop();
  });

  it('stops: no list and no watch after stop(), and no sleeper left behind', async () => {
    const t = setup();
    t.informer.start();
    await settle();
    t.informer.stop();
    await settle();
    const { listCalls } = t.api;
    const watches = t.api.watches.length;
    await t.clock.advance(30_000, 1_000);
    expect(t.api.listCalls).to.equal(listCalls);
    expect(t.api.watches.length).to.equal(watches);
    expect(t.clock.pendingSleepers).to.equal(0);
  });

  it('replaces a watch that carried nothing, not even a bookmark, for the watchdog period', async () => {
    const t = setup();
    t.informer.start();
    await settle();
    await t.clock.advance(5_000, 500);
    t.api.current.send('BOOKMARK', { metadata: { name: '', resourceVersion: '7' } });
    await t.clock.advance(9_000, 500);
    expect(t.api.watches, 'activity 9 s ago: still the first watch').to.have.length(1);
    await t.clock.advance(4_000, 500);
    expect(t.informer.stats.watchdogRestarts).to.equal(1);
    expect(t.api.watches[0]!.aborted).to.equal(true);
    expect(t.api.current.rv).to.equal('7');
    t.informer.stop();
  });
});
