// A Secret volume as the kubelet maintains it (its "atomic writer"): the files live in a hidden timestamped
// directory, `..data` is a symlink to the current one, and each key is a symlink `<key> -> ..data/<key>`. An
// update writes a new timestamped directory, points a temporary symlink at it and renames that over `..data`
// (one atomic rename), then removes the old directory. A reader of `<dir>/<key>` sees the old or the new
// content, never a mix: what Envoy's SDS watched_directory relies on.
import { mkdir, readdir, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { KubeObject } from '../../../xds-server/kubernetes/rest.ts';

let generation = 0;

/** Writes `files` (key -> content) into `dir` the way the kubelet updates a mounted Secret. */
export async function writeSecretVolume(dir: string, files: Record<string, string>): Promise<void> {
  await mkdir(dir, { recursive: true });
  const stamp = `..${new Date().toISOString().replace(/[:.]/g, '_')}.${process.pid}.${++generation}`;
  const next = path.join(dir, stamp);
  await mkdir(next, { mode: 0o755 });
  for (const [key, content] of Object.entries(files)) await writeFile(path.join(next, key), content, { mode: 0o644 });
  let previous: string | undefined;
  try {
    previous = await readlink(path.join(dir, '..data'));
  } catch {
    // first write
  }
  const tmp = path.join(dir, '..data_tmp');
  await rm(tmp, { force: true });
  await symlink(stamp, tmp);
  await rename(tmp, path.join(dir, '..data'));
  const present = new Set(await readdir(dir));
  for (const key of Object.keys(files)) if (!present.has(key)) await symlink(path.join('..data', key), path.join(dir, key));
  if (previous && previous !== stamp) await rm(path.join(dir, previous), { recursive: true, force: true });
}

/** A Secret's data, decoded (what the kubelet writes into the volume). */
export function secretFiles(secret: KubeObject): Record<string, string> {
  const data = (secret.data ?? {}) as Record<string, string>;
  return Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
}
