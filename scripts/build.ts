// The control plane as it runs in production: the TypeScript sources bundled by esbuild into plain
// JavaScript, run by plain node (no tsx loader at run time: it costs ~35 MiB of RSS and a transform of
// every module at start). npm packages stay outside the bundle (resolved from node_modules at run time).
//
//   node --import tsx scripts/build.ts      (scripts/setup.sh runs it when a source is newer than the build)
//
// dist/xds-server/main.mjs   the CLI (xds-server/main.ts): `npm start`, the container image
// dist/bench/ours.mjs        the xDS benchmark's driver of our control plane (bench/peer/ours.ts), built the
//                            same way, so the benchmark measures the control plane as production runs it
// dist/status/page/          the status page's files, which the admin API reads next to its module
//                            (xds-server/admin/app.ts: ../status/page/ from each bundle, both one level deep)
import { build, type Metafile } from 'esbuild';
import { cp, mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DIST = path.join(REPO_ROOT, 'dist');

/** The bundles and where each goes (one directory level under dist/, for the status page's path). */
export const BUNDLES = [
  { entry: 'xds-server/main.ts', outdir: 'xds-server', out: 'main' },
  { entry: 'bench/peer/ours.ts', outdir: 'bench', out: 'ours' },
] as const;

export async function buildBundles(dist: string, options: { metafile?: boolean } = {}): Promise<Metafile[]> {
  await rm(dist, { recursive: true, force: true });
  const metafiles: Metafile[] = [];
  for (const b of BUNDLES) {
    const result = await build({
      absWorkingDir: REPO_ROOT,
      entryPoints: { [b.out]: b.entry },
      outdir: path.join(dist, b.outdir),
      outExtension: { '.js': '.mjs' },
      bundle: true,
      // A dynamic import() (Kubernetes mode in main.ts) becomes a chunk of its own, loaded only when it runs:
      // without splitting, the npm packages it imports would be imported at start.
      splitting: true,
      chunkNames: 'chunk-[hash]',
      packages: 'external',
      platform: 'node',
      format: 'esm',
      target: 'node20',
      // Not minified: stack traces keep our function names, and the bundle marks each source file.
      minify: false,
      metafile: options.metafile ?? false,
      logLevel: 'warning',
    });
    if (result.metafile) metafiles.push(result.metafile);
  }
  await mkdir(path.join(dist, 'status'), { recursive: true });
  await cp(path.join(REPO_ROOT, 'xds-server', 'status', 'page'), path.join(dist, 'status', 'page'), { recursive: true });
  return metafiles;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await buildBundles(DIST);
  process.stderr.write(`[build] dist/: xds-server/main.mjs, bench/ours.mjs, status/page/\n`);
}
