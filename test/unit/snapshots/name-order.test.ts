// Name order (model/name-order.ts) is UTF-16 code-unit order, whatever the process's locale: the same
// resources go out in the same order, and the filter config (whose host list is in name order) is the same
// bytes, on every replica. localeCompare, used before, put "ch-a" after "h-b" under cs_CZ.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { compareNames, NameOrder } from '../../../model/name-order.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

// Built in a child process so that its locale can be chosen (Node reads it once, at start).
const SCRIPT = `
import { buildSnapshot } from ${JSON.stringify(path.join(ROOT, 'snapshots', 'build.ts'))};
import { validateGatewayConfig } from ${JSON.stringify(path.join(ROOT, 'sources', 'file', 'parse.ts'))};
import { fileConfigToModel } from ${JSON.stringify(path.join(ROOT, 'sources', 'file', 'to-model.ts'))};
import { encodeResource } from ${JSON.stringify(path.join(ROOT, 'snapshots', 'wire.ts'))};
const names = ['h-b', 'ch-a', 'i-c', 'cz', 'a-b', 'ab', 'a0'];
const config = validateGatewayConfig({
  listener: { port: 10000 },
  hosts: names.map((name, i) => ({ name, domains: [name + '.example.com'], endpoints: [{ address: '127.0.0.1', port: 8000 + i }] })),
});
if (!config.ok) throw new Error(JSON.stringify(config.errors));
const snapshot = buildSnapshot({ model: fileConfigToModel(config.value), held: new Set(names), generation: 1, filterWasmPath: '/f.wasm' });
if (!snapshot.ok) throw new Error(JSON.stringify(snapshot.errors));
const out = {};
for (const [kind, resources] of Object.entries(snapshot.value.resources)) {
  out[kind] = [...resources].map(([name, r]) => name + ' ' + Buffer.from(encodeResource(kind, r)).toString('base64'));
}
out.locale = Intl.DateTimeFormat().resolvedOptions().locale;
process.stdout.write(JSON.stringify(out));
`;

function buildUnder(locale: string): Record<string, string[]> & { locale: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'stz-name-order-'));
  const file = path.join(dir, 'build.ts');
  writeFileSync(file, SCRIPT);
  const env = { ...process.env, LC_ALL: locale, LANG: locale };
  try {
    return JSON.parse(execFileSync(process.execPath, ['--import', 'tsx', file], { cwd: ROOT, env, encoding: 'utf8' }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('name order (model/name-order.ts)', () => {
  it('compares by UTF-16 code units, as < does', () => {
    const names = ['k8s_shop_cart_8080', 'k8s_shop_cart-v2_8080', 'h-b', 'ch-a', 'Z', 'a', 'ä', '名前', '\ud83d\ude42'];
    const sorted = [...names].sort(compareNames);
    expect(sorted).to.deep.equal(['Z', 'a', 'ch-a', 'h-b', 'k8s_shop_cart-v2_8080', 'k8s_shop_cart_8080', 'ä', '名前', '\ud83d\ude42']);
    expect(new NameOrder(2).sortedNames(names)).to.deep.equal(sorted);
  });

  it('gives the same resources in the same order and the same bytes under cs_CZ as under C', function () {
    this.timeout(60_000);
    const c = buildUnder('C.UTF-8');
    const cs = buildUnder('cs_CZ.UTF-8');
    // The child really ran under each locale (Node's ICU carries its own locale data).
    expect(cs.locale).to.equal('cs-CZ');
    const { locale: _c, ...fromC } = c;
    const { locale: _cs, ...fromCs } = cs;
    expect(fromCs).to.deep.equal(fromC);
    const clusters = fromC['cluster']!.map((line) => line.split(' ')[0]!);
    expect(clusters).to.deep.equal([...clusters].sort(compareNames));
    expect(clusters.indexOf('host_ch-a')).to.be.lessThan(clusters.indexOf('host_h-b'));
  });
});
