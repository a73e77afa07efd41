// The production bundle (scripts/build.ts): what file mode loads at start. The Kubernetes client library
// (~85 MiB of RSS imported into a bare node; a file-mode control plane never uses it) must stay behind the dynamic import of
// Kubernetes mode: imported statically anywhere on main.ts's path, it would be loaded at every start.
import { expect } from 'chai';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Metafile } from 'esbuild';
import { REPO_ROOT } from '../../envoy-bootstrap/envoy.ts';
import { buildBundles } from '../../scripts/build.ts';
import { CONTROL_PLANE_BUNDLE, CONTROL_PLANE_NODE_ENV, CONTROL_PLANE_NODE_FLAGS } from '../../xds-server/node-flags.ts';

/** The npm packages an output loads, following its static imports only, or dynamic ones too. */
function packagesLoaded(meta: Metafile, entry: string, followDynamic: boolean): Set<string> {
  const packages = new Set<string>();
  const seen = new Set<string>();
  const visit = (output: string): void => {
    if (seen.has(output)) return;
    seen.add(output);
    for (const i of meta.outputs[output]!.imports) {
      if (i.kind === 'dynamic-import' && !followDynamic) continue;
      if (i.external) {
        if (!i.path.startsWith('node:')) packages.add(i.path);
      } else visit(i.path);
    }
  };
  visit(entry);
  return packages;
}

describe('the production bundle (scripts/build.ts)', function () {
  this.timeout(60_000);
  let dist: string;
  let main: Metafile;

  before(async () => {
    dist = await mkdtemp(path.join(os.tmpdir(), 'stz-build-'));
    const metafiles = await buildBundles(dist, { metafile: true });
    main = metafiles.find((m) => Object.keys(m.inputs).includes('xds-server/main.ts'))!;
    expect(main, 'the metafile of main.ts').to.not.equal(undefined);
  });
  after(async () => {
    await rm(dist, { recursive: true, force: true });
  });

  it('file mode does not load the Kubernetes client: it is reached only through the dynamic import of Kubernetes mode', () => {
    const entry = path.relative(REPO_ROOT, path.join(dist, 'xds-server', 'main.mjs'));
    const atStart = packagesLoaded(main, entry, false);
    // What file mode does need is there: the check is not vacuous.
    expect([...atStart]).to.include.members(['@grpc/grpc-js', 'protobufjs', 'koa']);
    expect([...atStart]).to.not.include('@kubernetes/client-node');
    expect([...atStart]).to.not.include('undici');
    expect([...packagesLoaded(main, entry, true)]).to.include('@kubernetes/client-node');
  });

  it('loads the certificate issuing library only when a certificate is issued (plaintext xDS never does)', () => {
    const entry = path.relative(REPO_ROOT, path.join(dist, 'xds-server', 'main.mjs'));
    expect([...packagesLoaded(main, entry, false)]).to.not.include('@peculiar/x509');
    expect([...packagesLoaded(main, entry, false)]).to.not.include('reflect-metadata');
    expect([...packagesLoaded(main, entry, true)]).to.include('@peculiar/x509');
  });

  it('holds the status page next to the bundles, where the admin API reads it (../status/page/ from each)', async () => {
    for (const dir of ['xds-server', 'bench']) {
      const page = path.join(dist, dir, '..', 'status', 'page');
      expect(await readFile(path.join(page, 'index.html'), 'utf8')).to.equal(await readFile(path.join(REPO_ROOT, 'xds-server', 'status', 'page', 'index.html'), 'utf8'));
    }
  });

  it('the container image runs the bundle with the production node flags, as npm start does', async () => {
    const dockerfile = await readFile(path.join(REPO_ROOT, 'deploy', 'images', 'control-plane.Dockerfile'), 'utf8');
    const entrypoint = /^ENTRYPOINT (\[.*\])$/m.exec(dockerfile);
    expect(entrypoint, 'an ENTRYPOINT in exec form').to.not.equal(null);
    expect(JSON.parse(entrypoint![1]!)).to.deep.equal(['node', ...CONTROL_PLANE_NODE_FLAGS, CONTROL_PLANE_BUNDLE]);
    // The environment it starts with, as ENV lines of the final stage (after its FROM).
    const finalStage = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
    const env = Object.fromEntries([...finalStage.matchAll(/^ENV (\w+)=(\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
    for (const [name, value] of Object.entries(CONTROL_PLANE_NODE_ENV)) expect(env[name], `ENV ${name}`).to.equal(value);
  });

  it('docker compose runs the bundle with the production node flags and environment too', async () => {
    const compose = await readFile(path.join(REPO_ROOT, 'docker-compose.yaml'), 'utf8');
    const env = Object.entries(CONTROL_PLANE_NODE_ENV).map(([name, value]) => `${name}=${value}`);
    const line = [...env, 'exec', 'node', ...CONTROL_PLANE_NODE_FLAGS, CONTROL_PLANE_BUNDLE].join(' ');
    expect(compose, 'the control plane service starts the bundle exactly so').to.include(` ${line} `);
  });
});
