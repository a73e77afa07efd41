// One row per rule of xds_protocol that classifyRequest() decides.
import { expect } from 'chai';
import { classifyRequest, type TypeStreamState, type Verdict } from '../../../xds-server/ads/verdict.ts';
import type { DiscoveryRequest } from '../../../xds-server/protos/codec.ts';

const sent: TypeStreamState = { names: new Set(['a']), lastNonce: '7', lastSentVersion: 'v2' };
const req = (r: Partial<DiscoveryRequest>): DiscoveryRequest => ({ version_info: '', resource_names: ['a'], type_url: 't', response_nonce: '', ...r });

const rows: { name: string; state: TypeStreamState | undefined; request: DiscoveryRequest; verdict: Verdict['kind'] }[] = [
  { name: 'first request of a type is answered', state: undefined, request: req({}), verdict: 'initial' },
  { name: 'first request after a reconnect (version from before) is answered', state: undefined, request: req({ version_info: 'v1', response_nonce: 'old' }), verdict: 'initial' },
  { name: 'matching nonce and version is an ACK', state: sent, request: req({ version_info: 'v2', response_nonce: '7' }), verdict: 'ack' },
  { name: 'an older nonce is stale and ignored', state: sent, request: req({ version_info: 'v1', response_nonce: '6' }), verdict: 'stale-nonce' },
  { name: 'a stale nonce is ignored even with an error_detail', state: sent, request: req({ response_nonce: '6', error_detail: { code: 13, message: 'x' } }), verdict: 'stale-nonce' },
  { name: 'error_detail on the latest nonce is a NACK', state: sent, request: req({ version_info: 'v1', response_nonce: '7', error_detail: { code: 13, message: 'bad' } }), verdict: 'nack' },
  { name: 'new names on the latest nonce are a resubscription', state: sent, request: req({ version_info: 'v2', response_nonce: '7', resource_names: ['a', 'b'] }), verdict: 'resubscribe' },
  { name: 'dropping names is a resubscription too', state: sent, request: req({ version_info: 'v2', response_nonce: '7', resource_names: [] }), verdict: 'resubscribe' },
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
});
