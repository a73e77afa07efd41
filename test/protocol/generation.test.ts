// The filter ignores configs of a lower generation than the one it applied, so a client that (re)connects
// holding a higher generation (another replica's, or ours before a restart with the clock set back) makes the
// control plane raise its generation above it and push again; one that holds ours or an older one changes
// nothing. The filter config's version names its generation: "<generation>.<hash>".
import { once } from 'node:events';
import { expect } from 'chai';
import { generationInVersion } from '../../snapshots/build.ts';
import { TYPE_URLS } from '../../snapshots/type-urls.ts';
import { DEFAULT_GROUP } from '../../xds-server/cache/snapshot-cache.ts';
import { RawAdsClient, RawDeltaClient } from '../support/ads-client.ts';
import { simpleHosts, startTestControlPlane, type TestControlPlane } from '../support/control-plane.ts';

const ecds = { type_url: TYPE_URLS.extensionConfig, resource_names: ['scale_to_zero_buffer'] };

describe('filter generation across reconnects', () => {
  let t: TestControlPlane;
  const clients: RawAdsClient[] = [];
  const deltaClients: RawDeltaClient[] = [];
  beforeEach(async () => {
    t = await startTestControlPlane(simpleHosts(['alpha']));
  });
  afterEach(async () => {
    for (const c of [...clients.splice(0), ...deltaClients.splice(0)]) c.close();
    await t.close();
  });
  const connect = (): RawAdsClient => {
    const c = new RawAdsClient(t.cp.xdsPort);
    clients.push(c);
    return c;
  };
  const ours = (): string => t.cp.cache.getSnapshot(DEFAULT_GROUP)!.versions.extensionConfig;

  it('names the generation in the filter config version', () => {
    expect(generationInVersion(ours())).to.equal(t.cp.store.currentGeneration);
    expect(generationInVersion('abcdef0123456789')).to.equal(undefined);
  });

  it('changes nothing for a client holding our generation or an older one', async () => {
    const before = t.cp.publisher.publishCount;
    const generation = t.cp.store.currentGeneration;
    for (const [i, version] of [ours(), `${generation - 5}.0123456789abcdef`].entries()) {
      const c = connect();
      const request = once(t.cp.events, 'request');
      c.send({ node: { id: `n${i}` }, ...ecds, version_info: version });
      await c.next();
      await request;
    }
    expect(t.cp.store.currentGeneration).to.equal(generation);
    expect(t.cp.publisher.publishCount).to.equal(before);
  });

  it('raises its generation above a higher one a client holds; the first config that client is sent is the raised one', async () => {
    const theirs = t.cp.store.currentGeneration + 1_000_000;
    const c = connect();
    c.send({ node: { id: 'n-high' }, ...ecds, version_info: `${theirs}.0123456789abcdef` });
    // Never a config older than its own: not our pre-raise one.
    const first = await c.next();
    expect(generationInVersion(first.version_info)).to.equal(theirs + 1);
    expect(t.cp.store.currentGeneration).to.equal(theirs + 1);
  });

  it('does the same for a delta client naming the version it holds in initial_resource_versions', async () => {
    const theirs = t.cp.store.currentGeneration + 1_000_000;
    const c = new RawDeltaClient(t.cp.xdsPort);
    deltaClients.push(c);
    c.send({ node: { id: 'n-delta' }, type_url: TYPE_URLS.extensionConfig, resource_names_subscribe: ['scale_to_zero_buffer'], initial_resource_versions: { scale_to_zero_buffer: `${theirs}.0123456789abcdef` } });
    const first = await c.next();
    expect(first.resources.map((r) => generationInVersion(r.version))).to.deep.equal([theirs + 1]);
  });
});
