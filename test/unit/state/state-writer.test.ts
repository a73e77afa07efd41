// The state file's writer: one write at a time, the newest state wins, and a held write waits for its hold
// (a reload's push) unless something needs it sooner; every queue() resolves only once its state is written.
import { expect } from 'chai';
import { StateWriter } from '../../../xds-server/state/state-writer.ts';

/** A write function whose writes are recorded and finished by hand. */
function recorder(): { writes: { state: number; finish: (err?: Error) => void }[]; write: (state: number) => Promise<void> } {
  const writes: { state: number; finish: (err?: Error) => void }[] = [];
  return {
    writes,
    write: (state) =>
      new Promise<void>((resolve, reject) => {
        writes.push({ state, finish: (err) => (err ? reject(err) : resolve()) });
      }),
  };
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

function tracked(p: Promise<void>): { done: () => boolean; failed: () => Error | undefined } {
  let done = false;
  let failed: Error | undefined;
  p.then(
    () => void (done = true),
    (err: Error) => void (failed = err),
  );
  return { done: () => done, failed: () => failed };
}

describe('state writer', () => {
  it('writes an unheld state at once and resolves only when it has landed', async () => {
    const r = recorder();
    const writer = new StateWriter(r.write);
    const a = tracked(writer.queue(() => 1));
    await turn();
    expect(r.writes.map((w) => w.state)).to.deep.equal([1]);
    expect(a.done()).to.equal(false);
    r.writes[0]!.finish();
    await turn();
    expect(a.done()).to.equal(true);
  });

  it('writes one at a time, and of the states queued meanwhile only the newest, after the one in flight', async () => {
    const r = recorder();
    const writer = new StateWriter(r.write);
    const made: number[] = [];
    const state = (n: number) => () => (made.push(n), n);
    const a = tracked(writer.queue(state(1)));
    const b = tracked(writer.queue(state(2)));
    const c = tracked(writer.queue(state(3)));
    await turn();
    expect(r.writes.map((w) => w.state)).to.deep.equal([1]);
    r.writes[0]!.finish();
    await turn();
    expect(a.done()).to.equal(true);
    expect(b.done()).to.equal(false);
    // State 2 was never made: 3 replaced it before its turn.
    expect(r.writes.map((w) => w.state)).to.deep.equal([1, 3]);
    expect(made).to.deep.equal([1, 3]);
    r.writes[1]!.finish();
    await turn();
    expect([b.done(), c.done()]).to.deep.equal([true, true]);
  });

  it('holds a write until its hold settles, and resolves only after the write', async () => {
    const r = recorder();
    const writer = new StateWriter(r.write);
    let push!: () => void;
    const a = tracked(writer.queue(() => 1, new Promise<void>((resolve) => (push = resolve))));
    await turn();
    await new Promise((res) => setTimeout(res, 20));
    expect(r.writes, 'a held write started before its hold ended').to.deep.equal([]);
    expect(writer.held).to.equal(true);
    push();
    await turn();
    expect(r.writes.map((w) => w.state)).to.deep.equal([1]);
    expect(a.done()).to.equal(false);
    r.writes[0]!.finish();
    await turn();
    expect(a.done()).to.equal(true);
  });

  it('ends a hold that is rejected as one that resolves', async () => {
    const r = recorder();
    const writer = new StateWriter(r.write);
    let fail!: (err: Error) => void;
    const hold = new Promise<void>((_, reject) => (fail = reject));
    writer.queue(() => 1, hold).catch(() => {});
    fail(new Error('publish failed'));
    await turn();
    expect(r.writes.map((w) => w.state)).to.deep.equal([1]);
  });

  it('starts a held write at once when an unheld state comes, writing the newest only; both resolve', async () => {
    const r = recorder();
    const writer = new StateWriter(r.write);
    const a = tracked(writer.queue(() => 1, new Promise<void>(() => {})));
    await turn();
    expect(r.writes).to.deep.equal([]);
    const b = tracked(writer.queue(() => 2));
    await turn();
    expect(r.writes.map((w) => w.state)).to.deep.equal([2]);
    r.writes[0]!.finish();
    await turn();
    expect([a.done(), b.done()]).to.deep.equal([true, true]);
  });

  it('starts a held write on release() and on flush(), which waits for it', async () => {
    const r = recorder();
    const writer = new StateWriter(r.write);
    writer.queue(() => 1, new Promise<void>(() => {})).catch(() => {});
    writer.release();
    await turn();
    expect(r.writes.map((w) => w.state)).to.deep.equal([1]);
    r.writes[0]!.finish();
    const b = tracked(writer.queue(() => 2, new Promise<void>(() => {})));
    await turn();
    expect(r.writes.length).to.equal(1);
    const flushed = tracked(writer.flush());
    await turn();
    expect(r.writes.map((w) => w.state)).to.deep.equal([1, 2]);
    expect(flushed.done()).to.equal(false);
    r.writes[1]!.finish();
    await turn();
    await turn();
    expect([b.done(), flushed.done()]).to.deep.equal([true, true]);
  });

  it('ends a hold that never settles after maxHoldMs', async () => {
    const r = recorder();
    const writer = new StateWriter(r.write, 30);
    writer.queue(() => 1, new Promise<void>(() => {})).catch(() => {});
    await new Promise((res) => setTimeout(res, 10));
    expect(r.writes).to.deep.equal([]);
    await new Promise((res) => setTimeout(res, 50));
    expect(r.writes.map((w) => w.state)).to.deep.equal([1]);
  });

  it('rejects the waiters of a failed write, and writes the next state after it', async () => {
    const r = recorder();
    const writer = new StateWriter(r.write);
    const a = tracked(writer.queue(() => 1));
    const b = tracked(writer.queue(() => 2));
    await turn();
    r.writes[0]!.finish(new Error('disk full'));
    await turn();
    expect(a.failed()?.message).to.equal('disk full');
    expect(r.writes.map((w) => w.state)).to.deep.equal([1, 2]);
    r.writes[1]!.finish();
    await turn();
    expect(b.done()).to.equal(true);
  });
});
