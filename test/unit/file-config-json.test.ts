// A config written as JSON is read by the JSON reader (sources/file/parse.ts, readJsonStrictly): the value must
// be exactly what the YAML reader gives for the same text, and anything the JSON reader would take differently
// (a key twice in one object) must still reach the YAML reader and its error.
import { expect } from 'chai';
import { CORE_SCHEMA, load as loadYaml } from 'js-yaml';
import { loadConfigText, parseGatewayConfigText, readJsonStrictly } from '../../sources/file/parse.ts';
import { seededRandom } from '../support/seeded-random.ts';

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
      const r = seededRandom(seed);
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

  it('reads texts without escapes (colons counted) as the YAML reader does, and leaves every one with a key given twice to it', () => {
    // Without a backslash the JSON reader counts colons rather than tokens: strings with colons, quotes written
    // as \u0022 excluded. Each generated object is also written with one of its keys given twice (the dropped
    // entry with or without colons of its own), at every depth.
    const plain = (r: () => number): string => Array.from({ length: Math.floor(r() * 4) }, () => ['a', ':', ' : ', 'é', '{', '}', ',', 'key:v', '[', ']'][Math.floor(r() * 10)]!).join('');
    const value = (r: () => number, depth: number): unknown => {
      const pick = r();
      if (depth > 3 || pick < 0.3) return [null, true, 7, -1.5, plain(r), `${plain(r)}:${plain(r)}`][Math.floor(r() * 6)];
      if (pick < 0.55) return Array.from({ length: Math.floor(r() * 4) }, () => value(r, depth + 1));
      const o: Record<string, unknown> = {};
      for (let i = Math.floor(r() * 5); i > 0; i--) o[plain(r) + String(i)] = value(r, depth + 1);
      return o;
    };
    // JSON text of v with, in the object numbered `twice` (depth first), its first key written twice.
    const write = (v: unknown, twice: number, r: () => number, counter: { n: number; wrote?: boolean }): string => {
      if (v === null || typeof v !== 'object') return JSON.stringify(v);
      if (Array.isArray(v)) return `[${v.map((x) => write(x, twice, r, counter)).join(',')}]`;
      const mine = counter.n++;
      const entries = Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}:${write(x, twice, r, counter)}`);
      const first = Object.keys(v)[0];
      if (mine === twice && first !== undefined) {
        entries.unshift(`${JSON.stringify(first)}:${JSON.stringify(value(r, 2))}`);
        counter.wrote = true;
      }
      return `{${entries.join(',')}}`;
    };
    let duplicates = 0;
    for (let seed = 1; seed <= 400; seed++) {
      const r = seededRandom(seed);
      const v = { ...(value(r, 0) as object), k: value(r, 1), n: { x: plain(r) } };
      const text = JSON.stringify(v);
      expect(text, `seed ${seed}`).to.not.include('\\');
      expect(readJsonStrictly(text), `seed ${seed}`).to.deep.equal({ value: loadYaml(text, { schema: CORE_SCHEMA }) });
      const objects = { n: 0 };
      write(v, -1, r, objects);
      const written: { n: number; wrote?: boolean } = { n: 0 };
      const twice = write(v, Math.floor(r() * objects.n), r, written);
      if (!written.wrote || twice.includes('\\')) continue;
      duplicates++;
      expect(readJsonStrictly(twice), `seed ${seed}: ${twice}`).to.equal(undefined);
      expect(() => loadYaml(twice, { schema: CORE_SCHEMA }), `seed ${seed}: ${twice}`).to.throw(/duplicated mapping key/);
    }
    expect(duplicates).to.be.greaterThan(300);
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
