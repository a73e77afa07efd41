// A reload re-reads only the host entries whose text changed (sources/file/incremental-parse.ts), and its
// result is always the whole-file reader's, errors included. Checked over generated files in every layout the
// split knows, over edits a person makes, and over random character-level damage.
import { expect } from 'chai';
import { dump } from 'js-yaml';
import { stringify } from 'yaml';
import { splitHostEntries } from '../../sources/file/host-entries.ts';
import { IncrementalConfigParser, MAX_ENTRIES_ONE_BY_ONE } from '../../sources/file/incremental-parse.ts';
import { parseGatewayConfigText } from '../../sources/file/parse.ts';
import { seededRandom } from '../support/seeded-random.ts';

type Raw = { listener: Record<string, unknown>; defaults?: Record<string, unknown>; hosts: Record<string, unknown>[] };

function host(i: number, r: () => number): Record<string, unknown> {
  const h: Record<string, unknown> = { name: `h${i}`, domains: [`h${i}.test`], endpoints: [{ address: '127.0.0.1', port: 20_000 + i }] };
  if (r() < 0.3) h.protocol = r() < 0.5 ? 'grpc' : 'http2';
  if (r() < 0.3) h.initialState = 'scaled_to_zero';
  if (r() < 0.2) h.buffer = { maxHeld: 10 + Math.floor(r() * 100) };
  if (r() < 0.2) h.scaler = { kind: 'process', command: ['sh', '-c', 'echo "it\'s up" && sleep 1'], env: { A: 'x: y # not a comment' } };
  if (r() < 0.2) (h.domains as string[]).push(`*.w${i}.test`);
  if (r() < 0.1) h.heldHeader = true;
  return h;
}

function rawConfig(n: number, r: () => number): Raw {
  return {
    listener: { address: '127.0.0.1', port: 10_000 },
    ...(r() < 0.5 ? { defaults: { requestTimeoutMs: 1000 + Math.floor(r() * 1000) } } : {}),
    hosts: Array.from({ length: n }, (_, i) => host(i, r)),
  };
}

// The layouts a config file comes in: what people and tools write.
const LAYOUTS: Record<string, (c: Raw) => string> = {
  'compact JSON': (c) => JSON.stringify(c),
  'indented JSON': (c) => JSON.stringify(c, null, 2),
  'js-yaml block': (c) => dump(c),
  'yaml block, hosts at column 0': (c) => stringify(c, { indentSeq: false }),
  'yaml block, hosts indented': (c) => stringify(c),
  'yaml with comments': (c) => stringify(c).replace(/^(\s*)- name: (\S+)$/gm, '$1# the host $2\n$1- name: $2 # named'),
  'yaml, hosts first': (c) => stringify({ hosts: c.hosts, listener: c.listener, ...(c.defaults ? { defaults: c.defaults } : {}) }),
};

/** An edit a person makes to a file: one entry's value, an entry added, removed, moved, or made wrong. */
function edit(c: Raw, r: () => number): Raw {
  const next: Raw = structuredClone(c);
  if (next.hosts.length === 0) return { ...next, hosts: [host(0, r)] };
  const i = Math.floor(r() * next.hosts.length);
  const pick = r();
  if (pick < 0.3) (next.hosts[i]!.endpoints as { port: number }[])[0]!.port = 1 + Math.floor(r() * 65_535);
  else if (pick < 0.4) next.hosts.push(host(1000 + Math.floor(r() * 1000), r));
  else if (pick < 0.5) next.hosts.splice(i, 1);
  else if (pick < 0.55) next.hosts.unshift(next.hosts.pop()!);
  else if (pick < 0.6) next.hosts[i]!.name = next.hosts[(i + 1) % next.hosts.length]!.name; // a duplicate name
  else if (pick < 0.65) (next.hosts[i]!.endpoints as { address: string }[])[0]!.address = 'not-an-ip';
  else if (pick < 0.7) next.hosts[i]!.protocol = 'smtp';
  else if (pick < 0.75) next.listener.port = 10_001; // the frame
  else if (pick < 0.8) next.defaults = { requestTimeoutMs: 5 }; // the frame: every host's default changes
  else if (pick < 0.85) next.hosts[i]!.health = { grpcService: 'x' };
  else if (pick < 0.9) next.hosts[i]!.domains = [...(next.hosts[i]!.domains as string[]), `same.test`, 'same.test'];
  else next.hosts[i]!.idleAfterMs = Math.floor(r() * 1000);
  return next;
}

function expectSame(parser: IncrementalConfigParser, text: string, why: string): void {
  expect(parser.parse(text), why).to.deep.equal(parseGatewayConfigText(text));
}

describe('config file: incremental reload', () => {
  describe('the split into host entries', () => {
    it('finds every entry in each layout, and the frame without them', () => {
      const c = rawConfig(5, seededRandom(1));
      for (const [layout, write] of Object.entries(LAYOUTS)) {
        const split = splitHostEntries(write(c));
        expect(split, layout).to.not.equal(undefined);
        expect(split!.entries, layout).to.have.length(5);
        expect(split!.frame, layout).to.not.include('h0.test');
        expect(split!.entries.join('\n'), layout).to.include('h4.test');
      }
    });

    const refused: Record<string, string> = {
      'an anchor and an alias': 'listener: {port: 1}\nhosts:\n  - &a {name: a, domains: [a.test], endpoints: [{address: 127.0.0.1, port: 1}]}\n  - *a\n',
      'a tag': 'listener: {port: 1}\nhosts:\n  - !!map {name: a, domains: [a.test], endpoints: [{address: 127.0.0.1, port: 1}]}\n',
      'a block scalar': 'listener: {port: 1}\nhosts:\n  - name: |\n      a\n',
      'a quote spanning lines': 'listener: {port: 1}\nhosts:\n  - name: "a\n  - b"\n',
      'a flow collection spanning lines': 'listener: {port: 1}\nhosts:\n  - domains: [a.test,\n      b.test]\n',
      'a second document': 'listener: {port: 1}\nhosts:\n  - name: a\n---\nhosts: []\n',
      'a directive': '%YAML 1.2\n---\nlistener: {port: 1}\nhosts:\n  - name: a\n',
      'a tab': 'listener: {port: 1}\nhosts:\n  - name:\ta\n',
      'CR line ends': 'listener: {port: 1}\r\nhosts:\r\n  - name: a\r\n',
      'a byte-order mark inside': 'listener: {port: 1}\nhosts:\n  - name: a\uFEFF\n',
      'a quote left open after a plain scalar that holds one': 'listener: {port: 1}\nhosts:\n  - env: {a: it\'s, b: \'x}\n  - b\'\n',
      'a line after the entries that is no key': 'listener: {port: 1}\nhosts:\n  - name: a\nb\n',
      'flow: a single-quoted string': "{'listener': {'port': 1}, 'hosts': [{'name': 'a'}]}",
      'flow: a comment': '{"listener": {"port": 1}, # hi\n "hosts": [{"name": "a"}]}',
      'flow: a trailing comma': '{"listener": {"port": 1}, "hosts": [{"name": "a"},]}',
      'flow: text after the document': '{"listener": {"port": 1}, "hosts": [{"name": "a"}]} x',
      'flow: a quote inside a plain scalar': '{"listener": {"port": 1}, "hosts": [{name: a"b}]}',
      'flow: an entry that is no mapping': '{"listener": {"port": 1}, "hosts": [{"name": "a"},-\n {"name": "b"}]}',
      'flow: no hosts array': '{"listener": {"port": 1}, "hosts": null}',
    };
    for (const [what, text] of Object.entries(refused)) {
      it(`is refused for ${what}`, () => expect(splitHostEntries(text)).to.equal(undefined));
    }

    it('splits the same with the last split as a hint (entries read before are skipped) as without', () => {
      for (let seed = 1; seed <= 30; seed += 1) {
        const r = seededRandom(500 + seed);
        let c = rawConfig(1 + Math.floor(r() * 20), r);
        for (const write of [LAYOUTS['compact JSON']!, LAYOUTS['indented JSON']!]) {
          let before = splitHostEntries(write(c));
          for (let step = 0; step < 10; step += 1) {
            c = edit(c, r);
            const text = write(c);
            const hinted = splitHostEntries(text, before);
            expect(hinted, `seed ${500 + seed} step ${step}`).to.deep.equal(splitHostEntries(text));
            before = hinted;
          }
        }
      }
    });

    it('reads quotes inside a plain scalar as the YAML reader does (plain characters)', () => {
      const split = splitHostEntries('listener: {port: 1}\nhosts:\n  - name: it\'s\n    command: [sh, -c, echo "a" && b]\n  - name: b\n');
      expect(split?.entries).to.deep.equal(['  - name: it\'s\n    command: [sh, -c, echo "a" && b]', '  - name: b\n']);
    });
  });

  it('re-reads only the entry that changed, and keeps the other hosts as the very same objects', () => {
    for (const [layout, write] of Object.entries(LAYOUTS)) {
      const c = rawConfig(50, seededRandom(2));
      const parser = new IncrementalConfigParser();
      const first = parser.parse(write(c));
      const changed = structuredClone(c);
      (changed.hosts[7]!.endpoints as { port: number }[])[0]!.port = 40_000;
      const second = parser.parse(write(changed));
      expect(parser.work, layout).to.deep.equal({ full: 1, incremental: 1, entriesParsed: 1, splitLater: 0 });
      expect(second, layout).to.deep.equal(parseGatewayConfigText(write(changed)));
      if (!first.ok || !second.ok) throw new Error('both are valid');
      second.value.hosts.forEach((h, i) => {
        if (i === 7) expect(h.endpoints[0]!.port).to.equal(40_000);
        else expect(h, `${layout} host ${i}`).to.equal(first.value.hosts[i]);
      });
    }
  });

  it('reads the whole file when many entries are new (one read is cheaper than many small ones)', () => {
    const parser = new IncrementalConfigParser();
    parser.parse(JSON.stringify(rawConfig(0, seededRandom(5))));
    const big = rawConfig(200, seededRandom(5));
    expect(parser.parse(JSON.stringify(big))).to.deep.equal(parseGatewayConfigText(JSON.stringify(big)));
    // Mostly new text: read whole at once, its entries split off only afterwards (here by the next parse).
    expect(parser.work).to.deep.equal({ full: 2, incremental: 0, entriesParsed: 0, splitLater: 1 });
    // A few new ones among many known ones are read one by one.
    const more = { ...big, hosts: [...big.hosts, ...Array.from({ length: MAX_ENTRIES_ONE_BY_ONE + 4 }, (_, i) => host(500 + i, seededRandom(6)))] };
    expect(parser.parse(JSON.stringify(more))).to.deep.equal(parseGatewayConfigText(JSON.stringify(more)));
    expect(parser.work).to.deep.equal({ full: 2, incremental: 1, entriesParsed: MAX_ENTRIES_ONE_BY_ONE + 4, splitLater: 1 });
  });

  it('splits a mostly new text after reading it (remember()), and the next reload of it is still read entry by entry', () => {
    const parser = new IncrementalConfigParser();
    parser.parse(JSON.stringify(rawConfig(0, seededRandom(5))));
    const big = rawConfig(300, seededRandom(5));
    const first = parser.parse(JSON.stringify(big));
    expect(first).to.deep.equal(parseGatewayConfigText(JSON.stringify(big)));
    expect(parser.work.splitLater).to.equal(1);
    parser.remember();
    const changed = { ...big, hosts: big.hosts.map((h, i) => (i === 42 ? { ...h, endpoints: [{ address: '127.0.0.1', port: 40_000 }] } : h)) };
    const second = parser.parse(JSON.stringify(changed));
    expect(second).to.deep.equal(parseGatewayConfigText(JSON.stringify(changed)));
    expect(parser.work).to.deep.include({ full: 2, incremental: 1, entriesParsed: 1 });
    if (!first.ok || !second.ok) throw new Error('both are valid');
    second.value.hosts.forEach((h, i) => (i === 42 ? expect(h.endpoints[0]!.port).to.equal(40_000) : expect(h).to.equal(first.value.hosts[i])));
  });

  it('reads the whole file again when the frame changes (listener, defaults)', () => {
    const c = rawConfig(10, seededRandom(3));
    const parser = new IncrementalConfigParser();
    parser.parse(JSON.stringify(c));
    const next = { ...c, defaults: { requestTimeoutMs: 7 } };
    const result = parser.parse(JSON.stringify(next));
    expect(parser.work.full).to.equal(2);
    expect(result.ok && result.value.hosts.every((h) => h.requestTimeoutMs === 7 || h.protocol === 'grpc')).to.equal(true);
  });

  it('gives the whole-file reader\'s errors, with their lines and paths', () => {
    const c = rawConfig(20, seededRandom(4));
    const parser = new IncrementalConfigParser();
    const good = stringify(c);
    parser.parse(good);
    // A broken entry: the YAML error names a line of the whole file, as the whole-file reader does.
    const broken = good.replace('- name: h12', '- name: [h12');
    const yamlError = parser.parse(broken);
    expect(yamlError).to.deep.equal(parseGatewayConfigText(broken));
    expect(!yamlError.ok && yamlError.errors[0]!.message).to.match(/\(\d+:\d+\)/);
    // An invalid entry: the path names its index in the whole file.
    parser.parse(good);
    const wrong = good.replace('- name: h12', '- name: H_12');
    expect(parser.parse(wrong)).to.deep.equal({ ok: false, errors: [{ path: '/hosts/12/name', message: 'must match pattern "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"' }] });
    // Two hosts with one domain: the path of the second.
    parser.parse(good);
    const dup = good.replace('- h15.test', '- h3.test');
    expect(parser.parse(dup)).to.deep.equal(parseGatewayConfigText(dup));
    expect(!parser.parse(dup).ok).to.equal(true);
  });

  it('equals the whole-file reader over many generated files and edits', function () {
    this.timeout(120_000);
    let incremental = 0;
    for (let seed = 1; seed <= 40; seed += 1) {
      const r = seededRandom(seed);
      for (const [layout, write] of Object.entries(LAYOUTS)) {
        const parser = new IncrementalConfigParser();
        let c = rawConfig(1 + Math.floor(r() * 30), r);
        expectSame(parser, write(c), `seed ${seed} ${layout} first read`);
        for (let step = 0; step < 8; step += 1) {
          const next = edit(c, r);
          expectSame(parser, write(next), `seed ${seed} ${layout} step ${step}`);
          // Sometimes the edit is undone, sometimes kept (an invalid file keeps the previous one in force).
          if (parseGatewayConfigText(write(next)).ok && r() < 0.7) c = next;
        }
        incremental += parser.work.incremental;
      }
    }
    // Not a comparison of two whole-file reads: most reads took the shortcut.
    expect(incremental).to.be.greaterThan(40 * Object.keys(LAYOUTS).length * 3);
  });

  it('equals the whole-file reader after random damage to the text', function () {
    this.timeout(120_000);
    // Characters that mean something to a YAML reader, dropped in anywhere.
    const noise = ['"', "'", '[', ']', '{', '}', ':', ',', '#', '-', ' ', '\n', '&a ', '*a', '!!str ', '|', '>', '? ', '\t', '---\n', '- ', '  ', 'x'];
    let incremental = 0;
    for (let seed = 1; seed <= 30; seed += 1) {
      const r = seededRandom(1000 + seed);
      for (const [layout, write] of Object.entries(LAYOUTS)) {
        const c = rawConfig(3 + Math.floor(r() * 10), r);
        const good = write(c);
        const parser = new IncrementalConfigParser();
        for (let k = 0; k < 10; k += 1) {
          parser.parse(good);
          let text = good;
          const hits = 1 + Math.floor(r() * 3);
          for (let h = 0; h < hits; h += 1) {
            const at = Math.floor(r() * text.length);
            text = r() < 0.3 ? text.slice(0, at) + text.slice(at + 1 + Math.floor(r() * 3)) : text.slice(0, at) + noise[Math.floor(r() * noise.length)]! + text.slice(at);
          }
          expectSame(parser, text, `seed ${1000 + seed} ${layout} damage ${k}: ${JSON.stringify(text)}`);
        }
        incremental += parser.work.incremental;
      }
    }
    expect(incremental).to.be.greaterThan(0);
  });
});
