// Hostname intersection (Gateway API HTTPRouteSpec.hostnames, Listener.hostname), one row per rule.
import { expect } from 'chai';
import { covers, effectiveHostnames, intersectHostname, listenerSpecificity, routeHostnameRank } from '../../../sources/kubernetes/hostnames.ts';

describe('hostname intersection', () => {
  const intersections: { a: string; b: string; want: string | undefined; why: string }[] = [
    { a: 'foo.example.com', b: 'foo.example.com', want: 'foo.example.com', why: 'equal exact names' },
    { a: 'foo.example.com', b: 'bar.example.com', want: undefined, why: 'different exact names' },
    { a: '*.example.com', b: 'foo.example.com', want: 'foo.example.com', why: 'a wildcard matches one label' },
    { a: '*.example.com', b: 'foo.bar.example.com', want: 'foo.bar.example.com', why: 'a wildcard matches several labels' },
    { a: '*.example.com', b: 'example.com', want: undefined, why: 'a wildcard does not match its own suffix' },
    { a: '*.example.com', b: 'fooexample.com', want: undefined, why: 'a wildcard matches whole labels only' },
    { a: 'very.specific.com', b: '*.specific.com', want: 'very.specific.com', why: 'order does not matter' },
    { a: '*.example.com', b: '*.example.com', want: '*.example.com', why: 'equal wildcards' },
    { a: '*.example.com', b: '*.foo.example.com', want: '*.foo.example.com', why: 'nested wildcards give the narrower' },
    { a: '*.wildcard.io', b: '*.anotherwildcard.io', want: undefined, why: 'disjoint wildcards' },
    { a: '*.io', b: '*.wildcard.io', want: '*.wildcard.io', why: 'a short suffix covers a longer one' },
    { a: '*', b: '*.example.com', want: '*.example.com', why: '"any host" covers a wildcard' },
    { a: '*', b: 'foo.example.com', want: 'foo.example.com', why: '"any host" covers a name' },
  ];
  for (const row of intersections) {
    it(`${row.a} ∩ ${row.b}: ${row.why}`, () => {
      expect(intersectHostname(row.a, row.b)).to.equal(row.want);
      expect(intersectHostname(row.b, row.a)).to.equal(row.want);
    });
  }

  const effective: { listener: string | undefined; route: string[]; want: string[]; why: string }[] = [
    { listener: undefined, route: [], want: ['*'], why: 'neither names a host: any host' },
    { listener: 'foo.example.com', route: [], want: ['foo.example.com'], why: 'the route names none: the listener\'s' },
    { listener: undefined, route: ['a.com', 'B.com'], want: ['a.com', 'b.com'], why: 'the listener names none: the route\'s, lower-cased' },
    {
      listener: '*.example.com',
      route: ['test.example.com', 'test.example.net', 'example.com'],
      want: ['test.example.com'],
      why: 'route names outside the listener\'s are ignored',
    },
    { listener: 'abc.foo.example.com', route: ['*.example.com', '*.foo.example.com', 'abc.foo.example.com'], want: ['abc.foo.example.com'], why: 'narrowing to the listener merges duplicates' },
    { listener: 'very.specific.com', route: ['non.matching.com', '*.nonmatchingwildcard.io'], want: [], why: 'no intersection: not attached' },
  ];
  for (const row of effective) {
    it(`listener ${row.listener ?? '(none)'} with route [${row.route.join(', ')}]: ${row.why}`, () => {
      expect(effectiveHostnames(row.listener, row.route)).to.deep.equal(row.want);
    });
  }

  it('covers is not symmetric', () => {
    expect(covers('*.example.com', 'foo.example.com')).to.equal(true);
    expect(covers('foo.example.com', '*.example.com')).to.equal(false);
    expect(covers('*.example.com', '*')).to.equal(false);
  });

  it('listener precedence: exact, then the wildcard with more labels, then none', () => {
    const ordered = ['', '*.example.com', '*.foo.example.com', 'abc.foo.example.com'].map((h) => listenerSpecificity(h || undefined));
    expect([...ordered].sort((a, b) => a - b)).to.deep.equal(ordered);
    expect(new Set(ordered).size).to.equal(4);
  });

  it('route hostname precedence: non-wildcard characters, then characters', () => {
    expect(routeHostnameRank('a.example.com')).to.deep.equal([13, 13]);
    expect(routeHostnameRank('*.example.com')).to.deep.equal([0, 13]);
    expect(routeHostnameRank('*')).to.deep.equal([0, 0]);
  });
});
