// A delta response is built from parts (its own fields, and each resource's entry encoded once and shared by
// every stream): the bytes must be exactly those protobufjs writes for the whole message.
import { expect } from 'chai';
import { decodeDeltaDiscoveryResponse, encodeDeltaDiscoveryResponse, type VersionedResource } from '../../../xds-server/protos/codec.ts';
import { messageType } from '../../../xds-server/protos/load.ts';
import { TYPE_URLS, type ResourceKind } from '../../../snapshots/type-urls.ts';
import { protobufjsFallbacks } from '../../../snapshots/wire.ts';

function wholeMessage(kind: ResourceKind, systemVersion: string, nonce: string, resources: VersionedResource[], removed: string[]): Buffer {
  const type = messageType('envoy.service.discovery.v3.DeltaDiscoveryResponse');
  const typeUrl = TYPE_URLS[kind];
  return Buffer.from(type.encode(type.fromObject({
    system_version_info: systemVersion,
    type_url: typeUrl,
    nonce,
    resources: resources.map((r) => ({ name: r.name, version: r.version, resource: { type_url: typeUrl, value: r.bytes } })),
    removed_resources: removed,
  })).finish());
}

const resource = (name: string, size: number, version = 'v1'): VersionedResource => ({ name, version, bytes: new Uint8Array(size).map((_, i) => (i * 7 + name.length) % 256) });

describe('delta response encoding', () => {
  const cases: [string, ResourceKind, string, string, VersionedResource[], string[]][] = [
    ['nothing but removals', 'cluster', 'abc', '1', [], ['gone-a', 'gone-b']],
    ['an empty version, nothing at all', 'endpoint', '', '2', [], []],
    ['small resources', 'endpoint', 'v-1', '3', [resource('a', 10), resource('b', 0), resource('c', 127)], []],
    ['resources whose length needs two and three varint bytes', 'route', 'v-2', '44', [resource('r', 128), resource('s', 16_383), resource('t', 16_384), resource('u', 300_000)], ['x']],
    ['many resources and removals', 'cluster', '9f', '12345', Array.from({ length: 500 }, (_, i) => resource(`host_${i}`, 40 + (i % 200), `v${i}`)), ['old-1', 'old-2']],
  ];
  for (const [what, kind, version, nonce, resources, removed] of cases) {
    it(`writes the whole message's bytes: ${what}`, () => {
      const fallbacks = protobufjsFallbacks();
      const expected = wholeMessage(kind, version, nonce, resources, removed);
      expect(encodeDeltaDiscoveryResponse(kind, version, nonce, resources, removed).equals(expected)).to.equal(true);
      // Again: the second time the entries come from the cache.
      expect(encodeDeltaDiscoveryResponse(kind, version, nonce, resources, removed).equals(expected)).to.equal(true);
      // The parts are written by our writer (snapshots/proto-writer.ts), none by protobufjs.
      expect(protobufjsFallbacks()).to.equal(fallbacks);
    });
  }

  it('does not reuse an entry for the same bytes under another name or version', () => {
    const shared = resource('one', 50);
    encodeDeltaDiscoveryResponse('cluster', 'v', '1', [shared], []);
    const renamed = { ...shared, name: 'two' };
    const bumped = { ...shared, version: 'v2' };
    const decoded = decodeDeltaDiscoveryResponse(encodeDeltaDiscoveryResponse('cluster', 'v', '2', [renamed, bumped], []));
    expect(decoded.resources.map((r) => [r.name, r.version])).to.deep.equal([['two', 'v1'], ['one', 'v2']]);
    expect(encodeDeltaDiscoveryResponse('endpoint', 'v', '3', [shared], []).equals(wholeMessage('endpoint', 'v', '3', [shared], []))).to.equal(true);
  });
});
