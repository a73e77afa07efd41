// What the control plane owns and must not lose on restart: which hosts are scaled to zero, and the
// filter generation (the filter orders configs by it, so it must keep growing across restarts).
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import path from 'node:path';

export interface PersistedHostState {
  scaledToZero: boolean;
  changedAt: string;
  reason?: string;
}

export interface PersistedState {
  formatVersion: 1;
  generation: number;
  hosts: Record<string, PersistedHostState>;
}

export const STATE_FILE_NAME = 'state.json';

export async function loadState(dir: string): Promise<PersistedState | undefined> {
  let text: string;
  try {
    text = await readFile(path.join(dir, STATE_FILE_NAME), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const data = JSON.parse(text) as Partial<PersistedState>;
  if (data.formatVersion !== 1 || typeof data.generation !== 'number' || typeof data.hosts !== 'object' || data.hosts === null) {
    throw new Error(`${path.join(dir, STATE_FILE_NAME)} is not a state file this version understands; move it away to start fresh`);
  }
  return data as PersistedState;
}

/**
 * Write to a temp file, fsync, rename, fsync the directory: a crash leaves the old file or the new one,
 * never half of one, and a completed save survives power loss.
 */
export async function saveState(dir: string, state: PersistedState): Promise<void> {
  await mkdir(dir, { recursive: true });
  const target = path.join(dir, STATE_FILE_NAME);
  const temp = `${target}.${process.pid}.tmp`;
  const handle = await open(temp, 'w', 0o600);
  try {
    await handle.writeFile(JSON.stringify(state, null, 2) + '\n');
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temp, target);
  const dirHandle = await open(dir, 'r');
  try {
    await dirHandle.sync();
  } finally {
    await dirHandle.close();
  }
}
