// One row per rule of xds_protocol that classifyRequest() and nextSubscription() decide.
import { expect } from 'chai';
import { classifyRequest, nextSubscription, type Subscription, type TypeStreamState, type Verdict } from '../../../xds-server/ads/verdict.ts';
import type { DiscoveryRequest } from '../../../xds-server/protos/codec.ts';

const named = (...names: string[]): Subscription => ({ wildcard: false, legacyWildcard: false, names: new Set(names) });
const sent: TypeStreamState = { subscription: named('a'), lastNonce: '7', lastSentVersion: 'v2' };
const nacked: TypeStreamState = { ...sent, nackedNonce: '7' };
const req = (r: Partial<DiscoveryRequest>): DiscoveryRequest => ({ version_info: '', resource_names: ['a'], type_url: 't', response_nonce: '', ...r });
const bad = { code: 13, message: 'bad' };

const rows: { name: string; state: TypeStreamState | undefined; request: DiscoveryRequest; verdict: Verdict['kind'] }[] = [
  { name: 'first request of a type is answered', state: undefined, request: req({}), verdict: 'initial' },
  { name: 'first request after a reconnect (version from before) is answered', state: undefined, request: req({ version_info: 'v1', response_nonce: 'old' }), verdict: 'initial' },
  { name: 'matching nonce and version is an ACK', state: sent, request: req({ version_info: 'v2', response_nonce: '7' }), verdict: 'ack' },
  { name: 'an older nonce is stale and ignored', state: sent, request: req({ version_info: 'v1', response_nonce: '6' }), verdict: 'stale-nonce' },
  { name: 'a stale nonce is ignored even with an error_detail', state: sent, request: req({ response_nonce: '6', error_detail: bad }), verdict: 'stale-nonce' },
  { name: 'error_detail on the latest nonce is a NACK', state: sent, request: req({ version_info: 'v1', response_nonce: '7', error_detail: bad }), verdict: 'nack' },
  { name: 'the same NACK again (same nonce) is a repeat, not a new NACK', state: nacked, request: req({ version_info: 'v1', response_nonce: '7', error_detail: bad }), verdict: 'nack-repeat' },
  { name: 'the same NACK repeated while dropping names is still a repeat', state: nacked, request: req({ version_info: 'v1', response_nonce: '7', resource_names: [], error_detail: bad }), verdict: 'nack-repeat' },
  { name: 'new names on the latest nonce are a resubscription', state: sent, request: req({ version_info: 'v2', response_nonce: '7', resource_names: ['a', 'b'] }), verdict: 'resubscribe' },
  { name: 'dropping names is a resubscription too', state: sent, request: req({ version_info: 'v2', response_nonce: '7', resource_names: [] }), verdict: 'resubscribe' },
  { name: 'adding "*" is a resubscription', state: sent, request: req({ version_info: 'v2', response_nonce: '7', resource_names: ['a', '*'] }), verdict: 'resubscribe' },
  { name: 'a request with no nonce on a known type asks again', state: sent, request: req({ version_info: 'v2' }), verdict: 'resubscribe' },
];

describe('classifyRequest', () => {
  for (const row of rows) {
    it(row.name, () => expect(classifyRequest(row.state, row.request).kind).to.equal(row.verdict));
  }

  it('a NACK carries the rejected version and the last good one', () => {
    const v = classifyRequest(sent, req({ version_info: 'v1', response_nonce: '7', error_detail: { code: 3, message: 'no' } }));
    expect(v).to.deep.equal({ kind: 'nack', rejectedVersion: 'v2', lastGoodVersion: 'v1', message: 'no', code: 3 });
  });

  it('a NACK that also drops names carries the new subscription', () => {
    const v = classifyRequest(sent, req({ version_info: 'v1', response_nonce: '7', resource_names: [], error_detail: bad }));
    expect(v.kind).to.equal('nack');
    expect((v as { subscription?: Subscription }).subscription).to.deep.equal(named());
  });
});

// xds_protocol "How the client specifies what resources to return" (wildcard vs explicit, legacy wildcard).
describe('nextSubscription', () => {
  it('an empty list on the first request is the legacy wildcard', () => {
    expect(nextSubscription(undefined, [])).to.deep.include({ wildcard: true, legacyWildcard: true });
  });
  it('an empty list again keeps the legacy wildcard', () => {
    expect(nextSubscription(nextSubscription(undefined, []), []).wildcard).to.equal(true);
  });
  it('names on the first request are explicit: not a wildcard', () => {
    const s = nextSubscription(undefined, ['listener_a']);
    expect(s.wildcard).to.equal(false);
    expect([...s.names]).to.deep.equal(['listener_a']);
  });
  it('naming resources ends a legacy wildcard', () => {
    expect(nextSubscription(nextSubscription(undefined, []), ['x']).wildcard).to.equal(false);
  });
  it('an empty list after names unsubscribes from everything (not a wildcard)', () => {
    const s = nextSubscription(nextSubscription(undefined, ['x']), []);
    expect(s).to.deep.include({ wildcard: false });
    expect(s.names.size).to.equal(0);
  });
  it('for RDS, EDS and ECDS an empty list is never a wildcard, even on the first request', () => {
    expect(nextSubscription(undefined, [], false)).to.deep.include({ wildcard: false });
  });
  it('"*" is a wildcard that may sit beside explicit names', () => {
    const s = nextSubscription(nextSubscription(undefined, ['x']), ['*', 'x']);
    expect(s.wildcard).to.equal(true);
    expect([...s.names]).to.deep.equal(['x']);
    // ...and dropping "*" keeps only the names.
    expect(nextSubscription(s, ['x']).wildcard).to.equal(false);
  });
});
