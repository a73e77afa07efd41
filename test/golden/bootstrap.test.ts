import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { REPO_ROOT } from '../../envoy-bootstrap/envoy.ts';
import { CHECKED_IN_BOOTSTRAPS } from '../../envoy-bootstrap/render.ts';
import { bootstrapFileText } from '../../scripts/render-bootstrap.ts';

describe('checked-in Envoy bootstraps', () => {
  for (const [file, options] of Object.entries(CHECKED_IN_BOOTSTRAPS)) {
    it(`envoy-bootstrap/${file} equals its rendering (run "npx tsx scripts/render-bootstrap.ts" after changing render.ts)`, () => {
      expect(readFileSync(path.join(REPO_ROOT, 'envoy-bootstrap', file), 'utf8')).to.equal(bootstrapFileText(options));
    });
  }
});

describe('checked-in Envoy bootstraps on the real Envoy', () => {
  it('bootstrap.yaml passes "envoy --mode validate"', async () => {
    const { execFile } = await import('node:child_process');
    const { ENVOY_BIN, assertEnvoyInstalled } = await import('../../envoy-bootstrap/envoy.ts');
    assertEnvoyInstalled();
    const output = await new Promise<string>((resolve, reject) =>
      execFile(ENVOY_BIN, ['--mode', 'validate', '-c', path.join(REPO_ROOT, 'envoy-bootstrap', 'bootstrap.yaml')], (err, stdout, stderr) =>
        err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout + stderr),
      ),
    );
    expect(output).to.match(/OK/);
  });
});
