import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { loadState, saveState, STATE_FILE_NAME } from '../../../xds-server/state/persistence.ts';

describe('state persistence', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'stz-state-'));
  });
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  it('round-trips and leaves no temp file behind', async () => {
    const state = { formatVersion: 1 as const, generation: 4, hosts: { a: { scaledToZero: true, changedAt: '2026-01-01T00:00:00.000Z' } } };
    await saveState(path.join(dir, 'nested'), state);
    expect(await loadState(path.join(dir, 'nested'))).to.deep.equal(state);
    expect(await readdir(path.join(dir, 'nested'))).to.deep.equal([STATE_FILE_NAME]);
  });

  it('starts empty when there is no file', async () => {
    expect(await loadState(dir)).to.equal(undefined);
  });

  it('refuses a file it does not understand, saying what to do', async () => {
    await writeFile(path.join(dir, STATE_FILE_NAME), JSON.stringify({ formatVersion: 9 }));
    let error: Error | undefined;
    try {
      await loadState(dir);
    } catch (err) {
      error = err as Error;
    }
    expect(error?.message).to.match(/not a state file this version understands; move it away/);
    expect(JSON.parse(await readFile(path.join(dir, STATE_FILE_NAME), 'utf8'))).to.deep.equal({ formatVersion: 9 });
  });
});
