// docs/filter-contract.md "Plugin configuration": anything invalid makes proxy_on_configure return
// false (Envoy NACKs); the table below drives both the accepted and the rejected shapes.
import { expect } from 'chai';
import { ProxyWasmHost } from '../support/proxy-wasm-host/index.ts';
import { config, host, wake } from './fixtures.ts';

const valid = config(12, [host('demo', { domains: ['demo.local', '*.demo.example'] })], wake());

function variant(edit: (c: any) => void): string {
  const c = JSON.parse(JSON.stringify(valid));
  edit(c);
  return JSON.stringify(c);
}

const accepted: Array<[string, string]> = [
  ['the contract example', JSON.stringify(valid)],
  ['no wake section', variant((c) => delete c.wake)],
  ['an empty host list', JSON.stringify({ generation: 1, hosts: [] })],
  ['maxHeld 0 and retryAfterSeconds 0', variant((c) => Object.assign(c.hosts[0], { maxHeld: 0, retryAfterSeconds: 0 }))],
  ['the largest numbers allowed', variant((c) => Object.assign(c.hosts[0], { holdTimeoutMs: 3_600_000, maxHeld: 100_000, retryAfterSeconds: 3600 }))],
  ['holdTimeoutMs 1', variant((c) => (c.hosts[0].holdTimeoutMs = 1))],
  ['generation 2^53-1', variant((c) => (c.generation = Number.MAX_SAFE_INTEGER))],
  ['a 63-character host name', variant((c) => (c.hosts[0].name = 'a'.repeat(63)))],
  ['whitespace and escapes in JSON', `{ "generation" : 3 ,\n\t"hosts": [ { "name": "d\\u0065mo", "domains": ["demo.local"], "holdTimeoutMs": 5, "maxHeld": 1, "retryAfterSeconds": 1 } ] }`],
  ['an IPv6 literal and an IPv4 address as domains', variant((c) => (c.hosts[0].domains = ['[::1]', '127.0.0.1']))],
  ['two hosts', variant((c) => c.hosts.push(host('other')))],
  ['the same suffix as exact and wildcard', variant((c) => (c.hosts[0].domains = ['demo.example', '*.demo.example']))],
  // clusters (Gateway API mode: hold by the upstream cluster the route picked)
  ['domains and clusters together', variant((c) => (c.hosts[0].clusters = ['demo_cluster', 'outbound_8080__demo.ns.svc.cluster.local']))],
  ['clusters only (domains empty)', variant((c) => Object.assign(c.hosts[0], { domains: [], clusters: ['demo'] }))],
  ['domains only with an empty clusters list', variant((c) => (c.hosts[0].clusters = []))],
  ['every allowed cluster character', variant((c) => (c.hosts[0].clusters = ['AZaz09_.:-']))],
  ['a 255-character cluster name', variant((c) => (c.hosts[0].clusters = ['c'.repeat(255)]))],
  ['two clusters differing only in case', variant((c) => (c.hosts[0].clusters = ['Demo', 'demo']))],
  ['a cluster named like a domain of another host', variant((c) => c.hosts.push(host('other', { domains: [], clusters: ['demo.local'] })))],
  ['two cluster-only hosts', variant((c) => {
    c.hosts = [host('cold', { domains: [], clusters: ['cold_a', 'cold_b'] }), host('cool', { domains: [], clusters: ['cool'] })];
  })],
];

const rejected: Array<[string, string]> = [
  ['empty text', ''],
  ['not JSON', 'generation: 1'],
  ['trailing text after the object', JSON.stringify(valid) + ' x'],
  ['a JSON array', '[]'],
  ['an unknown top-level field', variant((c) => (c.extra = true))],
  ['an unknown host field', variant((c) => (c.hosts[0].weight = 1))],
  ['an unknown wake field', variant((c) => (c.wake.retries = 1))],
  ['a duplicate JSON key', '{"generation":1,"generation":2,"hosts":[]}'],
  ['missing generation', variant((c) => delete c.generation)],
  ['generation 0', variant((c) => (c.generation = 0))],
  ['a negative generation', variant((c) => (c.generation = -3))],
  ['a fractional generation', variant((c) => (c.generation = 1.5))],
  ['generation as a string', variant((c) => (c.generation = '12'))],
  ['generation beyond 2^53-1', '{"generation":9007199254740992,"hosts":[]}'],
  ['generation with an exponent', '{"generation":1e3,"hosts":[]}'],
  ['missing hosts', variant((c) => delete c.hosts)],
  ['hosts not an array', variant((c) => (c.hosts = {}))],
  ['a host that is not an object', variant((c) => (c.hosts = ['demo']))],
  ['missing name', variant((c) => delete c.hosts[0].name)],
  ['an upper-case name', variant((c) => (c.hosts[0].name = 'Demo'))],
  ['a name ending in a dash', variant((c) => (c.hosts[0].name = 'demo-'))],
  ['a 64-character name', variant((c) => (c.hosts[0].name = 'a'.repeat(64)))],
  ['duplicate host names', variant((c) => c.hosts.push(host('demo', { domains: ['other.local'] })))],
  ['empty domains (no clusters)', variant((c) => (c.hosts[0].domains = []))],
  ['empty domains and empty clusters', variant((c) => Object.assign(c.hosts[0], { domains: [], clusters: [] }))],
  ['clusters without domains', variant((c) => Object.assign(c.hosts[0], { clusters: ['demo'] }, delete c.hosts[0].domains))],
  ['clusters not an array', variant((c) => (c.hosts[0].clusters = 'demo_cluster'))],
  ['clusters null', variant((c) => (c.hosts[0].clusters = null))],
  ['a cluster that is not a string', variant((c) => (c.hosts[0].clusters = [7]))],
  ['an empty cluster name', variant((c) => (c.hosts[0].clusters = ['']))],
  ['a 256-character cluster name', variant((c) => (c.hosts[0].clusters = ['c'.repeat(256)]))],
  ['a cluster name with a "|" (Istio style, not allowed)', variant((c) => (c.hosts[0].clusters = ['outbound|80||demo']))],
  ['a cluster name with a space', variant((c) => (c.hosts[0].clusters = ['demo cluster']))],
  ['a cluster name with a "/"', variant((c) => (c.hosts[0].clusters = ['ns/demo']))],
  ['a non-ASCII cluster name', variant((c) => (c.hosts[0].clusters = ['démo']))],
  ['the same cluster twice in one host', variant((c) => (c.hosts[0].clusters = ['demo', 'demo']))],
  ['the same cluster in two hosts', variant((c) => {
    c.hosts[0].clusters = ['shared'];
    c.hosts.push(host('other', { domains: [], clusters: ['shared'] }));
  })],
  ['empty domains with clusters of the wrong type', variant((c) => Object.assign(c.hosts[0], { domains: [], clusters: {} }))],
  ['missing domains', variant((c) => delete c.hosts[0].domains)],
  ['a domain with a port', variant((c) => (c.hosts[0].domains = ['demo.local:8080']))],
  ['an upper-case domain', variant((c) => (c.hosts[0].domains = ['Demo.local']))],
  ['a bare "*" domain', variant((c) => (c.hosts[0].domains = ['*']))],
  ['a "*." domain with no suffix', variant((c) => (c.hosts[0].domains = ['*.']))],
  ['a "*" inside a domain', variant((c) => (c.hosts[0].domains = ['a.*.demo']))],
  ['an empty domain', variant((c) => (c.hosts[0].domains = ['']))],
  ['a domain with an empty label', variant((c) => (c.hosts[0].domains = ['demo..local']))],
  ['a domain that is not a string', variant((c) => (c.hosts[0].domains = [7]))],
  ['the same domain twice in one host', variant((c) => (c.hosts[0].domains = ['demo.local', 'demo.local']))],
  ['the same domain in two hosts', variant((c) => c.hosts.push(host('other', { domains: ['demo.local'] })))],
  ['holdTimeoutMs 0', variant((c) => (c.hosts[0].holdTimeoutMs = 0))],
  ['holdTimeoutMs above one hour', variant((c) => (c.hosts[0].holdTimeoutMs = 3_600_001))],
  ['maxHeld -1', variant((c) => (c.hosts[0].maxHeld = -1))],
  ['maxHeld above 100000', variant((c) => (c.hosts[0].maxHeld = 100_001))],
  ['retryAfterSeconds above 3600', variant((c) => (c.hosts[0].retryAfterSeconds = 3601))],
  ['retryAfterSeconds as a boolean', variant((c) => (c.hosts[0].retryAfterSeconds = true))],
  ['wake null', variant((c) => (c.wake = null))],
  ['wake without a cluster', variant((c) => delete c.wake.cluster)],
  ['wake with an empty authority', variant((c) => (c.wake.authority = ''))],
  ['wake pathPrefix without a leading slash', variant((c) => (c.wake.pathPrefix = 'v1/wake/'))],
  ['wake leaseMs 0', variant((c) => (c.wake.leaseMs = 0))],
  ['wake timeoutMs fractional', variant((c) => (c.wake.timeoutMs = 2.5))],
  ['an unterminated string', '{"generation":1,"hosts":[{"name":"demo}]}'],
  ['a raw control character in a string', '{"generation":1,"hosts":[{"name":"de\u0001mo","domains":["demo.local"],"holdTimeoutMs":1,"maxHeld":1,"retryAfterSeconds":1}]}'],
  ['nesting deeper than the parser allows', '{"generation":1,"hosts":[],"wake":' + '['.repeat(40) + ']'.repeat(40) + '}'],
];

describe('filter config parsing (proxy_on_configure)', () => {
  for (const [name, text] of accepted) {
    it(`accepts ${name}`, () => {
      const vm = new ProxyWasmHost();
      const { ok } = vm.startPlugin(text);
      expect(ok, vm.logText()).to.equal(true);
    });
  }

  for (const [name, text] of rejected) {
    it(`rejects ${name}`, () => {
      const vm = new ProxyWasmHost();
      const { ok } = vm.startPlugin(text);
      expect(ok).to.equal(false);
      expect(vm.logs.some((l) => l.level === 4 && l.message.includes('invalid configuration'))).to.equal(true);
    });
  }

  it('names the offending field in the error log', () => {
    const vm = new ProxyWasmHost();
    vm.startPlugin(variant((c) => (c.hosts[0].maxHeld = -1)));
    expect(vm.logText()).to.contain('$.hosts[0].maxHeld: must be in 0..100000');
  });

  it('names a duplicate cluster and the host entry that lists it', () => {
    const vm = new ProxyWasmHost();
    vm.startPlugin(variant((c) => {
      c.hosts[0].clusters = ['shared'];
      c.hosts.push(host('other', { domains: [], clusters: ['x', 'shared'] }));
    }));
    expect(vm.logText()).to.contain('$.hosts[1].clusters[1]: duplicate cluster "shared"');
  });

  it('says an entry needs a domain or a cluster', () => {
    const vm = new ProxyWasmHost();
    vm.startPlugin(variant((c) => Object.assign(c.hosts[0], { domains: [], clusters: [] })));
    expect(vm.logText()).to.contain('$.hosts[0].domains: must not be empty unless "clusters" lists at least one cluster');
  });

  it('reports every error of a config at once, clusters included', () => {
    const vm = new ProxyWasmHost();
    vm.startPlugin(variant((c) => {
      c.hosts[0].clusters = ['bad name', 'c'.repeat(256)];
      c.hosts[0].maxHeld = -1;
    }));
    const text = vm.logText();
    expect(text).to.contain('$.hosts[0].clusters[0]: has an invalid character');
    expect(text).to.contain('$.hosts[0].clusters[1]: is longer than 255 characters');
    expect(text).to.contain('$.hosts[0].maxHeld: must be in 0..100000');
  });

  it('keeps the last good config when a bad one arrives (NACK leaves the old one in force)', () => {
    const vm = new ProxyWasmHost();
    const good = vm.startPlugin(config(1, [host('demo')]));
    expect(good.ok).to.equal(true);
    expect(vm.startPlugin('{"generation":2,"hosts":"nope"}').ok).to.equal(false);
    const held = vm.request(good.rootId, { ':authority': 'demo.local' });
    expect(held.lastAction).to.equal(4);
  });
});
