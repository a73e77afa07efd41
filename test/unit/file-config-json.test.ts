// A config written as JSON is read by the JSON reader (sources/file/parse.ts, readJsonStrictly): the value must
// be exactly what the YAML reader gives for the same text, and anything the JSON reader would take differently
// (a key twice in one object) must still reach the YAML reader and its error.
import { expect } from 'chai';
import { CORE_SCHEMA, load as loadYaml } from 'js-yaml';
import { loadConfigText, parseGatewayConfigText, readJsonStrictly } from '../../sources/file/parse.ts';

function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

const NASTY = ['a', 'b":', '\\"', 'x\\', 'é\u2028', '{', '}', ':', ',', ' ', '"', 'key":"v', 'π', '\n', '\t'];

function randomString(r: () => number): string {
  return Array.from({ length: Math.floor(r() * 4) }, () => NASTY[Math.floor(r() * NASTY.length)]!).join('');
}

function randomValue(r: () => number, depth: number): unknown {
  const pick = r();
  if (depth > 3 || pick < 0.3) {
    const scalars = [null, true, false, 0, -1.5, 1e21, 12345678901234, randomString(r)];
    return scalars[Math.floor(r() * scalars.length)];
  }
  if (pick < 0.55) return Array.from({ length: Math.floor(r() * 4) }, () => randomValue(r, depth + 1));
  const o: Record<string, unknown> = {};
  for (let i = Math.floor(r() * 5); i > 0; i--) o[randomString(r) + String(i)] = randomValue(r, depth + 1);
  return o;
}

describe('file config written as JSON', () => {
  it('reads the same value as the YAML reader, over generated objects with quotes, colons and escapes in their strings', () => {
    for (let seed = 1; seed <= 400; seed++) {
      const r = random(seed);
      const value = { ...(randomValue(r, 0) as object), k: randomValue(r, 1) };
      for (const text of [JSON.stringify(value), JSON.stringify(value, null, 2)]) {
        const fast = readJsonStrictly(text);
        expect(fast, `seed ${seed}: a JSON object must be taken by the JSON reader`).to.not.equal(undefined);
        expect(fast!.value, `seed ${seed}`).to.deep.equal(loadYaml(text, { schema: CORE_SCHEMA }));
      }
    }
  });

  it('leaves a key given twice in one object to the YAML reader, whose error names it', () => {
    const text = '{"listener": {"port": 10000, "port": 10001}, "hosts": []}';
    expect(readJsonStrictly(text)).to.equal(undefined);
    const result = loadConfigText(text);
    expect(result.ok).to.equal(false);
    if (!result.ok) expect(result.errors[0]!.message).to.match(/duplicated mapping key/);
    // The same key in two different objects is no duplicate.
    expect(readJsonStrictly('{"a": {"x": 1}, "b": {"x": 2}, "c": [{"x": 3}, {"x": 4}]}')).to.deep.equal({ value: { a: { x: 1 }, b: { x: 2 }, c: [{ x: 3 }, { x: 4 }] } });
  });

  it('leaves YAML, broken JSON and a JSON value that is not an object to the YAML reader', () => {
    for (const text of ['listener:\n  port: 1\n', '{"a": 1,}', '[1, 2]', '  ', '{a: 1}', '"text"']) expect(readJsonStrictly(text), text).to.equal(undefined);
    expect(loadConfigText('{a: 1}')).to.deep.equal({ ok: true, value: { a: 1 } });
  });

  it('gives a JSON config file the same config as the same file written in YAML', () => {
    const config = { listener: { port: 10000 }, hosts: [{ name: 'a', domains: ['a.test'], endpoints: [{ address: '127.0.0.1', port: 9000 }] }] };
    const yaml = 'listener:\n  port: 10000\nhosts:\n  - name: a\n    domains: [a.test]\n    endpoints:\n      - address: 127.0.0.1\n        port: 9000\n';
    expect(parseGatewayConfigText(JSON.stringify(config))).to.deep.equal(parseGatewayConfigText(yaml));
  });
});
