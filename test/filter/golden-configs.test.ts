// Every filter configuration the golden files pin (test/golden/**) goes through the real filter.wasm parser:
// what the control plane writes is what the filter accepts, with the hosts we expect, each reachable by its
// domains and clusters. The xDS goldens carry the configuration itself (the ECDS resource); the Kubernetes
// goldens pin models, whose filter configuration is built here with every scale-to-zero backend held.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { parse } from 'yaml';
import type { GatewayModel } from '../../model/gateway-model.ts';
import { buildSnapshot } from '../../snapshots/build.ts';
import { buildFilterConfig, filterConfigProblems, serialiseFilterConfig, type FilterConfig } from '../../snapshots/filter-config.ts';
import { TYPE_URLS } from '../../snapshots/type-urls.ts';
import { Action, CLUSTER_NAME, ProxyWasmHost } from '../support/proxy-wasm-host/index.ts';
import { hostHeld } from './fixtures.ts';

const GOLDEN = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'golden');
const SNAPSHOTS = path.join(GOLDEN, 'snapshots');
const GATEWAY_API = path.join(GOLDEN, 'gateway-api');

interface PushedType {
  type: string;
  resources: { typed_config?: { config?: { configuration?: { value?: string } } } }[];
}

/** The filter configuration text in an xDS golden (<case>.out.yaml), or undefined when it pins none. */
function configurationIn(file: string): string | undefined {
  const pushed = parse(readFileSync(file, 'utf8')) as PushedType[];
  const ecds = pushed.find((p) => p.type === TYPE_URLS.extensionConfig);
  return ecds?.resources[0]?.typed_config?.config?.configuration?.value;
}

/** A request name that the domain entry matches (a wildcard needs one more label). */
function requestHostFor(domain: string): string {
  return domain.startsWith('*.') ? `any.${domain.slice(2)}` : domain;
}

/** Loads `text` into a fresh filter and checks that every entry holds (or, failed, answers) what it lists. */
function expectAcceptedWithHosts(text: string, expectedHosts: string[]): void {
  const config = JSON.parse(text) as FilterConfig;
  expect(filterConfigProblems(config), 'the TypeScript check of the same rules').to.deep.equal([]);
  expect(config.hosts.map((h) => h.name).sort()).to.deep.equal([...expectedHosts].sort());
  const vm = new ProxyWasmHost();
  const { rootId, ok } = vm.startPlugin(text);
  expect(ok, vm.logText()).to.equal(true);
  expect(vm.logText()).to.contain(`listing ${config.hosts.length} host(s)`);
  for (const h of config.hosts) {
    const check = (ctx: ReturnType<ProxyWasmHost['request']>, via: string): void => {
      if (h.failure) {
        expect(ctx.localReply?.statusCode, `${h.name} via ${via}`).to.equal(503);
        expect(JSON.parse(ctx.localReply!.body)).to.include({ error: 'wake_failed', host: h.name });
      } else {
        expect(ctx.lastAction, `${h.name} via ${via}`).to.equal(Action.StopAllIterationAndWatermark);
      }
    };
    const before = vm.metric(hostHeld(h.name)) ?? 0;
    for (const d of h.domains) check(vm.request(rootId, { ':authority': requestHostFor(d) }), `domain ${d}`);
    for (const c of h.clusters ?? []) {
      check(vm.request(rootId, { ':authority': 'not-listed.invalid' }, { properties: { [CLUSTER_NAME]: c } }), `cluster ${c}`);
    }
    const listed = h.domains.length + (h.clusters ?? []).length;
    expect(vm.metric(hostHeld(h.name)) ?? 0, h.name).to.equal(h.failure ? before : before + listed);
  }
  expect(vm.request(rootId, { ':authority': 'not-listed.invalid' }).lastAction).to.equal(Action.Continue);
}

describe('golden filter configurations through filter.wasm', () => {
  const xdsCases = readdirSync(SNAPSHOTS).filter((f) => f.endsWith('.out.yaml')).sort();
  const withConfig = xdsCases.filter((f) => configurationIn(path.join(SNAPSHOTS, f)) !== undefined);

  it('finds xDS goldens with a filter configuration, and at least one listing a host', () => {
    expect(withConfig.length).to.be.greaterThan(3);
    const listing = withConfig.filter((f) => (JSON.parse(configurationIn(path.join(SNAPSHOTS, f))!) as FilterConfig).hosts.length > 0);
    expect(listing.length).to.be.greaterThan(2);
  });

  for (const file of withConfig) {
    const name = file.slice(0, -'.out.yaml'.length);
    it(`accepts ${name} with the hosts it holds`, () => {
      const input = parse(readFileSync(path.join(SNAPSHOTS, `${name}.in.yaml`), 'utf8')) as { scaledToZero?: string[] };
      expectAcceptedWithHosts(configurationIn(path.join(SNAPSHOTS, file))!, input.scaledToZero ?? []);
    });
  }

  const models = readdirSync(GATEWAY_API).filter((f) => f.endsWith('.model.yaml')).sort();
  const scalableModels = models.filter((f) => (parse(readFileSync(path.join(GATEWAY_API, f), 'utf8')) as GatewayModel).backends.some((b) => b.scaleToZero));

  it('finds Kubernetes goldens with a scale-to-zero backend', () => {
    expect(scalableModels.length).to.be.greaterThan(0);
  });

  for (const file of scalableModels) {
    const name = file.slice(0, -'.model.yaml'.length);
    it(`accepts gateway-api ${name} with every scale-to-zero backend held`, () => {
      const model = parse(readFileSync(path.join(GATEWAY_API, file), 'utf8')) as GatewayModel;
      const held = model.backends.filter((b) => b.scaleToZero).map((b) => b.name);
      const config = buildFilterConfig({ model, held: new Set(held), generation: 1, filterWasmPath: '/x/filter.wasm' });
      expectAcceptedWithHosts(serialiseFilterConfig(config), held);
    });
  }
});

describe('one set of rules on both sides (filter/assembly/config/rules.ts)', () => {
  const base = (): FilterConfig => ({
    generation: 1,
    hosts: [{ name: 'demo', domains: ['demo.local'], holdTimeoutMs: 30_000, maxHeld: 1000, retryAfterSeconds: 5 }],
    wake: { cluster: 'scale_to_zero_control_plane', authority: 'cp', pathPrefix: '/v1/wake/', leaseMs: 1000, timeoutMs: 2000 },
  });
  const cases: [string, (c: FilterConfig) => void][] = [
    ['an upper-case domain', (c) => (c.hosts[0]!.domains = ['Demo.local'])],
    ['a domain with a port', (c) => (c.hosts[0]!.domains = ['demo.local:80'])],
    ['a domain with an empty label', (c) => (c.hosts[0]!.domains = ['demo..local'])],
    ['a misplaced wildcard', (c) => (c.hosts[0]!.domains = ['de*mo.local'])],
    ['a domain listed twice', (c) => (c.hosts = [c.hosts[0]!, { ...c.hosts[0]!, name: 'other' }])],
    ['a cluster with a slash', (c) => (c.hosts[0]!.clusters = ['a/b'])],
    ['a bad host name', (c) => (c.hosts[0]!.name = 'Demo_1')],
    ['a host name of 64 characters', (c) => (c.hosts[0]!.name = 'a'.repeat(64))],
    ['neither domains nor clusters', (c) => (c.hosts[0]!.domains = [])],
    ['holdTimeoutMs 0', (c) => (c.hosts[0]!.holdTimeoutMs = 0)],
    ['holdTimeoutMs above the bound', (c) => (c.hosts[0]!.holdTimeoutMs = 3_600_001)],
    ['maxHeld above the bound', (c) => (c.hosts[0]!.maxHeld = 100_001)],
    ['retryAfterSeconds above the bound', (c) => (c.hosts[0]!.retryAfterSeconds = 3601)],
    ['a failure reason with a line break', (c) => (c.hosts[0]!.failure = { reason: 'a\nb', retryAfterSeconds: 1 })],
    ['a failure reason of 201 characters', (c) => (c.hosts[0]!.failure = { reason: 'x'.repeat(201), retryAfterSeconds: 1 })],
    ['wake.leaseMs 0', (c) => (c.wake!.leaseMs = 0)],
    ['wake.timeoutMs above the bound', (c) => (c.wake!.timeoutMs = 3_600_001)],
  ];
  for (const [what, mutate] of cases) {
    it(`the TypeScript check and filter.wasm reject ${what} with the same errors`, () => {
      const config = base();
      mutate(config);
      const problems = filterConfigProblems(config);
      expect(problems).to.not.deep.equal([]);
      const vm = new ProxyWasmHost();
      expect(vm.startPlugin(serialiseFilterConfig(config)).ok).to.equal(false);
      const wasmErrors = vm.logText().split('\n').filter((l) => l.includes('invalid configuration: ')).map((l) => l.slice(l.indexOf('invalid configuration: ') + 23));
      expect(problems).to.deep.equal(wasmErrors);
    });
  }

  it('the control plane refuses to build a snapshot whose filter configuration the filter would reject', () => {
    const model = parse(readFileSync(path.join(GATEWAY_API, 'scale-to-zero-policy.model.yaml'), 'utf8')) as GatewayModel;
    const backend = model.backends.find((b) => b.scaleToZero)!;
    backend.scaleToZero!.exclusiveDomains = ['Shop.example'];
    const result = buildSnapshot({ model, held: new Set([backend.name]), generation: 1, filterWasmPath: '/x/filter.wasm' });
    expect(result.ok).to.equal(false);
    if (!result.ok) {
      expect(result.errors).to.deep.equal([
        { path: '/extensionConfig/scale_to_zero_buffer', message: 'the filter would reject: $.hosts[0].domains[0]: must be lower-case' },
      ]);
    }
  });

  it('the valid base passes both', () => {
    expect(filterConfigProblems(base())).to.deep.equal([]);
    expect(new ProxyWasmHost().startPlugin(serialiseFilterConfig(base())).ok).to.equal(true);
  });
});
