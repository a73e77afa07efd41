// Small pure pieces of the Kubernetes source: backend names, gRPC method paths, PathPrefix normalisation,
// label selectors and durations.
import { expect } from 'chai';
import { backendNames } from '../../../sources/kubernetes/backends.ts';
import { parseDuration } from '../../../sources/kubernetes/durations.ts';
import { grpcMethodPath } from '../../../sources/kubernetes/grpc-rules.ts';
import { normalisePrefix } from '../../../sources/kubernetes/http-rules.ts';
import { clusterName, hashedBackendName, plainBackendName, virtualHostName } from '../../../sources/kubernetes/names.ts';
import { selectorMatches } from '../../../sources/kubernetes/selectors.ts';

const BACKEND_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

describe('Kubernetes source names', () => {
  it('a backend is <ns>-<svc>-<port> when that fits a DNS label', () => {
    expect(plainBackendName('default', 'shop', 8080)).to.equal('default-shop-8080');
  });

  it('a name too long is cut and gets an 8-hex hash of the identity', () => {
    const name = plainBackendName('n'.repeat(63), 's'.repeat(63), 8080);
    expect(name).to.match(BACKEND_NAME);
    expect(name).to.match(/-[0-9a-f]{8}$/);
    expect(name).to.not.equal(plainBackendName('n'.repeat(63), 's'.repeat(62) + 't', 8080));
  });

  it('identities sharing a plain name both get hashed names, so names stay unique', () => {
    const names = backendNames([
      { namespace: 'a-b', service: 'c', port: 80 },
      { namespace: 'a', service: 'b-c', port: 80 },
      { namespace: 'x', service: 'y', port: 80 },
    ]);
    expect(names.get('x/y/80')).to.equal('x-y-80');
    expect(names.get('a-b/c/80')).to.equal(hashedBackendName('a-b', 'c', 80));
    expect(names.get('a/b-c/80')).to.equal(hashedBackendName('a', 'b-c', 80));
    expect(names.get('a-b/c/80')).to.not.equal(names.get('a/b-c/80'));
    for (const n of names.values()) expect(n).to.match(BACKEND_NAME);
  });

  it('cluster names use only Envoy-safe characters and cannot collide (Kubernetes names have no "_")', () => {
    expect(clusterName('a-b', 'c', 80)).to.equal('k8s_a-b_c_80');
    expect(clusterName('a', 'b-c', 80)).to.equal('k8s_a_b-c_80');
  });

  it('virtual host names are as unique as their domains', () => {
    const names = ['*', 'any', '*.example.com', 'wildcard.example.com', 'wildcard_example.com'].map(virtualHostName);
    expect(new Set(names).size).to.equal(names.length);
  });
});

describe('gRPC method -> path', () => {
  const rows: { method: Parameters<typeof grpcMethodPath>[0]; want: unknown }[] = [
    { method: undefined, want: { ok: true, value: { kind: 'prefix', value: '/' } } },
    { method: { service: 'pkg.Svc', method: 'Call' }, want: { ok: true, value: { kind: 'exact', value: '/pkg.Svc/Call' } } },
    { method: { type: 'Exact', service: 'pkg.Svc' }, want: { ok: true, value: { kind: 'prefix', value: '/pkg.Svc/' } } },
    { method: { method: 'Call' }, want: { ok: false, reason: 'a method match without a service is not supported' } },
    { method: { type: 'RegularExpression', service: 'pkg.*' }, want: { ok: false, reason: 'method match type RegularExpression is not supported' } },
  ];
  for (const row of rows) {
    it(JSON.stringify(row.method ?? null), () => expect(grpcMethodPath(row.method)).to.deep.equal(row.want));
  }
});

describe('PathPrefix normalisation (a trailing "/" is ignored)', () => {
  for (const [input, want] of [['/', '/'], ['/abc', '/abc'], ['/abc/', '/abc'], ['/abc//', '/abc'], ['//', '/']] as const) {
    it(`${input} -> ${want}`, () => expect(normalisePrefix(input)).to.equal(want));
  }
});

describe('label selectors', () => {
  const labels = { tier: 'frontend', env: 'prod' };
  const rows: { selector: Parameters<typeof selectorMatches>[0]; want: boolean }[] = [
    { selector: {}, want: true },
    { selector: { matchLabels: { tier: 'frontend' } }, want: true },
    { selector: { matchLabels: { tier: 'backend' } }, want: false },
    { selector: { matchExpressions: [{ key: 'env', operator: 'In', values: ['prod', 'dev'] }] }, want: true },
    { selector: { matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['prod'] }] }, want: false },
    { selector: { matchExpressions: [{ key: 'missing', operator: 'NotIn', values: ['x'] }] }, want: true },
    { selector: { matchExpressions: [{ key: 'tier', operator: 'Exists' }] }, want: true },
    { selector: { matchExpressions: [{ key: 'tier', operator: 'DoesNotExist' }] }, want: false },
    { selector: { matchExpressions: [{ key: 'tier', operator: 'Gt', values: ['1'] }] }, want: false },
  ];
  for (const row of rows) {
    it(JSON.stringify(row.selector), () => expect(selectorMatches(row.selector, labels)).to.equal(row.want));
  }
});

describe('Gateway API durations', () => {
  for (const [text, want] of [['10s', 10_000], ['1h30m', 5_400_000], ['2s500ms', 2500], ['0s', 0], ['10 seconds', undefined], ['1d', undefined], ['', undefined]] as const) {
    it(`${JSON.stringify(text)} -> ${want}`, () => expect(parseDuration(text)).to.equal(want));
  }
});
