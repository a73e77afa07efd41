// Route precedence within a virtual host (HTTPRouteRule.matches, GRPCRouteRule.matches): each row says which
// of two matches Envoy must try first, and the rule of the spec that decides it.
import { expect } from 'chai';
import { comparePrecedence, type PrecedenceKey } from '../../../sources/kubernetes/precedence.ts';

const base: PrecedenceKey = {
  hostRank: [0, 0],
  pathKind: 'prefix',
  pathLength: 1,
  headerCount: 0,
  created: Date.parse('2026-01-01T00:00:00Z'),
  routeKey: 'ns/route',
  routeKind: 'HTTPRoute',
  rule: 0,
  match: 0,
};
const key = (k: Partial<PrecedenceKey>): PrecedenceKey => ({ ...base, ...k });

const rows: { rule: string; first: Partial<PrecedenceKey>; second: Partial<PrecedenceKey> }[] = [
  { rule: 'a matching exact host name beats a wildcard', first: { hostRank: [11, 11] }, second: { hostRank: [0, 13], pathKind: 'exact', pathLength: 9 } },
  { rule: 'a longer wildcard beats a shorter one', first: { hostRank: [0, 17] }, second: { hostRank: [0, 13] } },
  { rule: 'any host name beats none', first: { hostRank: [0, 13] }, second: { hostRank: [0, 0], pathKind: 'exact' } },
  { rule: 'Exact path before PathPrefix, whatever the lengths', first: { pathKind: 'exact', pathLength: 2 }, second: { pathKind: 'prefix', pathLength: 20 } },
  { rule: 'the longer prefix first', first: { pathLength: 8 }, second: { pathLength: 4, headerCount: 5 } },
  { rule: 'the longer exact path first (gRPC: service and method characters)', first: { pathKind: 'exact', pathLength: 20 }, second: { pathKind: 'exact', pathLength: 10 } },
  { rule: 'more header matches first', first: { headerCount: 2 }, second: { headerCount: 1, created: 0 } },
  { rule: 'the oldest Route first', first: { created: Date.parse('2025-01-01T00:00:00Z'), routeKey: 'z/z' }, second: { routeKey: 'a/a' } },
  { rule: 'a Route without a creation time counts as the newest', first: {}, second: { created: Number.POSITIVE_INFINITY, routeKey: 'a/a' } },
  { rule: 'then "{namespace}/{name}" alphabetically', first: { routeKey: 'a/b' }, second: { routeKey: 'a/c' } },
  { rule: 'the joined key decides, not namespace then name ("a-x/c" before "a/b")', first: { routeKey: 'a-x/c' }, second: { routeKey: 'a/b' } },
  { rule: 'within a Route, the first rule', first: { rule: 0, match: 3 }, second: { rule: 1, match: 0 } },
  { rule: 'within a rule, the first match', first: { match: 0 }, second: { match: 1 } },
];

describe('route precedence', () => {
  for (const row of rows) {
    it(row.rule, () => {
      expect(comparePrecedence(key(row.first), key(row.second))).to.be.lessThan(0);
      expect(comparePrecedence(key(row.second), key(row.first))).to.be.greaterThan(0);
    });
  }

  it('an identical key ties', () => expect(comparePrecedence(key({}), key({}))).to.equal(0));

  it('sorting applies the rules in order', () => {
    const keys = [
      key({ routeKey: 'b/older', created: 1, rule: 1 }),
      key({ pathLength: 4 }),
      key({ headerCount: 1 }),
      key({ pathKind: 'exact', pathLength: 4 }),
      key({ routeKey: 'b/older', created: 1 }),
      key({ pathLength: 8 }),
    ];
    const order = [...keys].sort(comparePrecedence).map((k) => keys.indexOf(k));
    expect(order).to.deep.equal([3, 5, 1, 2, 4, 0]);
  });
});
