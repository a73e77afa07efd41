// docs/filter-contract.md "Request handling": host = :authority lower-cased with the port stripped;
// exact domains first, then the longest "*.suffix". Observed through the real module: a listed host's
// request is held (StopAllIterationAndWatermark), any other passes (Continue).
import { expect } from 'chai';
import { Action, ProxyWasmHost } from '../support/proxy-wasm-host/index.ts';
import { config, host } from './fixtures.ts';

function setup() {
  const vm = new ProxyWasmHost();
  const { rootId, ok } = vm.startPlugin(config(1, [
    host('demo', { domains: ['demo.local', '*.demo.example', '[::1]', '10.0.0.7'] }),
    host('deep', { domains: ['*.eu.demo.example'] }),
    host('exact', { domains: ['api.eu.demo.example'] }),
  ]));
  expect(ok).to.equal(true);
  return { vm, rootId };
}

/** Which host a request for `authority` is held for, or null when it passes. */
function heldFor(authority: string): string | null {
  const { vm, rootId } = setup();
  const ctx = vm.request(rootId, { ':authority': authority, ':path': '/' });
  if (ctx.lastAction === Action.Continue) return null;
  expect(ctx.lastAction).to.equal(Action.StopAllIterationAndWatermark);
  for (const name of ['demo', 'deep', 'exact']) {
    if (vm.metric(`scale_to_zero.host.${name}.held`) === 1) return name;
  }
  throw new Error('held, but no per-host gauge moved');
}

const cases: Array<[string, string | null]> = [
  ['demo.local', 'demo'],
  ['DEMO.Local', 'demo'],
  ['demo.local:8080', 'demo'],
  ['Demo.LOCAL:443', 'demo'],
  ['a.demo.example', 'demo'],
  ['A.B.Demo.Example:80', 'demo'],
  ['demo.example', null],
  ['xdemo.example', null],
  ['x.eu.demo.example', 'deep'],
  ['api.eu.demo.example', 'exact'],
  ['API.EU.demo.example:9000', 'exact'],
  ['eu.demo.example', 'demo'],
  ['[::1]', 'demo'],
  ['[::1]:8080', 'demo'],
  ['[::2]:8080', null],
  ['::1', null],
  ['10.0.0.7:3000', 'demo'],
  ['10.0.0.70', null],
  ['other.local', null],
  ['demo.local.', null],
  ['', null],
];

describe('host matching (authority normalisation, exact then longest wildcard)', () => {
  for (const [authority, expected] of cases) {
    it(`${JSON.stringify(authority)} -> ${expected ?? 'pass'}`, () => {
      expect(heldFor(authority)).to.equal(expected);
    });
  }

  it('passes a request with no :authority at all', () => {
    const { vm, rootId } = setup();
    expect(vm.request(rootId, { ':path': '/' }).lastAction).to.equal(Action.Continue);
  });

  it('passes everything before any configuration was accepted', () => {
    const vm = new ProxyWasmHost();
    const bad = vm.startPlugin('{}');
    expect(bad.ok).to.equal(false);
    expect(vm.request(bad.rootId, { ':authority': 'demo.local' }).lastAction).to.equal(Action.Continue);
  });

  it('leaves an unlisted request alone: no host calls beyond reading headers, no metric moves', () => {
    const { vm, rootId } = setup();
    const logsBefore = vm.logs.length;
    const ctx = vm.request(rootId, { ':authority': 'ready.local' });
    vm.finish(ctx);
    expect(ctx.continued).to.equal(0);
    expect(ctx.localReply).to.equal(undefined);
    expect(vm.metric('scale_to_zero.held')).to.equal(0);
    expect(vm.metric('scale_to_zero.cancelled')).to.equal(0);
    expect(vm.roots.get(rootId)!.tickPeriodMs).to.equal(0);
    expect(vm.logs.length).to.equal(logsBefore);
  });
});
