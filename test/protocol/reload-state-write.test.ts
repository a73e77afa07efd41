// A config reload's state file is written once its push is applied, not while Envoy takes in the new clusters
// (control-plane.ts reloadConfig, state-writer.ts); a crash before the write loses nothing a restart does not
// rebuild from the config file, and a shutdown writes it.
import { expect } from 'chai';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { TYPE_URLS } from '../../snapshots/type-urls.ts';
import { startControlPlane } from '../../xds-server/control-plane.ts';
import { silentLogger } from '../../xds-server/log.ts';
import type { DecodedResponse } from '../../xds-server/protos/codec.ts';
import { RawAdsClient } from '../support/ads-client.ts';
import { startTestControlPlane, type TestControlPlane } from '../support/control-plane.ts';

const node = { id: 'state-write-1', user_agent_name: 'envoy' };
const NAMES: Record<string, string[]> = {
  [TYPE_URLS.endpoint]: ['host_alpha', 'host_beta', 'host_gamma'],
  [TYPE_URLS.route]: ['gateway_routes'],
  [TYPE_URLS.extensionConfig]: ['scale_to_zero_buffer'],
};
const namesOf = (typeUrl: string): string[] => NAMES[typeUrl] ?? [];

function ack(client: RawAdsClient, r: DecodedResponse): void {
  client.send({ type_url: r.type_url, resource_names: namesOf(r.type_url), version_info: r.version_info, response_nonce: r.nonce });
}

async function subscribe(client: RawAdsClient): Promise<void> {
  for (const [i, typeUrl] of [TYPE_URLS.cluster, TYPE_URLS.endpoint, TYPE_URLS.listener, TYPE_URLS.route, TYPE_URLS.extensionConfig].entries()) {
    client.send({ ...(i === 0 ? { node } : {}), type_url: typeUrl, resource_names: namesOf(typeUrl) });
    ack(client, await client.next());
  }
}

function config(hosts: Record<string, { port: number; held?: boolean }>): Record<string, unknown> {
  return {
    listener: { address: '127.0.0.1', port: 10000 },
    hosts: Object.entries(hosts).map(([name, h]) => ({ name, domains: [`${name}.test`], endpoints: [{ address: '127.0.0.1', port: h.port }], ...(h.held ? { initialState: 'scaled_to_zero' } : {}) })),
  };
}

async function savedHosts(t: TestControlPlane): Promise<Record<string, { scaledToZero: boolean }> | undefined> {
  try {
    return (JSON.parse(await readFile(path.join(t.dir, 'state', 'state.json'), 'utf8')) as { hosts: Record<string, { scaledToZero: boolean }> }).hosts;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

describe('a config reload and its state file, on the wire', () => {
  let t: TestControlPlane;
  let client: RawAdsClient;

  beforeEach(async () => {
    // Nothing is ACKed unless the test says so: the publish of new clusters waits for that (up to 60 s).
    t = await startTestControlPlane(config({ alpha: { port: 20000 }, beta: { port: 20001 } }), { publisher: { settleTimeoutMs: 60_000 } });
    client = new RawAdsClient(t.cp.xdsPort);
    await subscribe(client);
  });

  afterEach(async () => {
    client.close();
    await t.close();
  });

  it('is written once the push is applied, not while the new clusters warm', async () => {
    await t.writeConfig(config({ alpha: { port: 20000 }, beta: { port: 20001 }, gamma: { port: 20002, held: true } }));
    let reloaded = false;
    const reload = t.cp.reloadConfig().then((r) => ((reloaded = true), r));
    const got = [await client.next(), await client.next(), await client.next(), await client.next()];
    await new Promise((r) => setTimeout(r, 100));
    expect((await savedHosts(t))?.gamma, 'the state file was written while Envoy was warming the new clusters').to.equal(undefined);
    expect(reloaded).to.equal(false);
    for (const r of got) ack(client, r);
    expect(await reload).to.deep.equal({ ok: true });
    // The reload returns once the state is written.
    expect((await savedHosts(t))?.gamma?.scaledToZero).to.equal(true);
  });

  it('loses nothing when the process dies before the write: a restart gives the reloaded hosts the same marks', async () => {
    await t.writeConfig(config({ alpha: { port: 20000 }, beta: { port: 20001 }, gamma: { port: 20002, held: true } }));
    void t.cp.reloadConfig();
    for (let i = 0; i < 4; i++) await client.next();
    expect((await savedHosts(t))?.gamma).to.equal(undefined);
    // A second control plane on the same config file and state directory, as after a crash of the first.
    const restarted = await startControlPlane({
      configPath: path.join(t.dir, 'gateway.yaml'),
      stateDir: path.join(t.dir, 'state'),
      filterWasmPath: '/opt/stz/filter.wasm',
      log: silentLogger,
      xdsSecurity: 'plaintext',
    });
    try {
      expect(restarted.store.hosts().map((h) => [h.config.name, h.scaledToZero])).to.deep.equal(
        t.cp.store.hosts().map((h) => [h.config.name, h.scaledToZero]),
      );
    } finally {
      await restarted.close();
    }
  });

  it('is written on shutdown while the push still waits', async () => {
    await t.writeConfig(config({ alpha: { port: 20000 }, beta: { port: 20001 }, gamma: { port: 20002, held: true } }));
    void t.cp.reloadConfig();
    for (let i = 0; i < 4; i++) await client.next();
    expect((await savedHosts(t))?.gamma).to.equal(undefined);
    await t.cp.close();
    expect((await savedHosts(t))?.gamma?.scaledToZero).to.equal(true);
  });
});
