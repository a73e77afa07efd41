// The filter's config and code lifecycle on the real Envoy: a config the filter refuses is NACKed and the
// last good one keeps working; a new filter build (a new VM) still releases what the old VM holds.
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { snapshotFromResources } from '../../snapshots/build.ts';
import type { Resource } from '../../snapshots/resource.ts';
import { eventually } from '../support/eventually.ts';
import { http1Request } from '../support/http-client.ts';
import { FILTER_WASM, startStack, type Stack } from '../support/stack.ts';

interface NodesJson {
  nodes: { group: string; types: { extensionConfig?: { nack?: { message: string }; ackedVersion?: string; sentVersion?: string } } }[];
}

/** The snapshot group the stack's one Envoy is served (its certificate names the file gateway). */
async function envoyGroup(stack: Stack): Promise<string> {
  return eventually(async () => {
    const group = ((await (await stack.adminFetch('/v1/nodes')).json()) as NodesJson).nodes[0]?.group;
    if (!group) throw new Error('no Envoy connected yet');
    return group;
  });
}

async function heldGauge(stack: Stack): Promise<number> {
  return (await stack.envoy.stats('scale_to_zero')).get('wasmcustom.scale_to_zero.held') ?? 0;
}

/** The same module with a custom section appended: identical behaviour, a different code hash, so Envoy builds a new VM. */
function withCustomSection(wasm: Buffer, name: string): Buffer {
  const nameBytes = Buffer.from(name);
  const payload = Buffer.concat([Buffer.from([nameBytes.length]), nameBytes, Buffer.from('upgrade')]);
  return Buffer.concat([wasm, Buffer.from([0, payload.length]), payload]);
}

describe('filter config and code lifecycle on a real Envoy', function () {
  this.timeout(120_000);
  let stack: Stack;

  before(async () => {
    stack = await startStack({
      config: (u) => ({
        hosts: [
          { name: 'web', domains: ['web.test'], endpoints: [{ address: '127.0.0.1', port: u.httpPort }] },
          { name: 'cold', domains: ['cold.test'], endpoints: [{ address: '127.0.0.1', port: u.httpPort }], initialState: 'scaled_to_zero', buffer: { holdTimeoutMs: 60_000 } },
        ],
      }),
    });
  });
  after(async () => {
    await stack?.close();
  });

  it('NACKs a filter config its on_configure refuses, and keeps holding and passing on the last good one', async () => {
    const group = await envoyGroup(stack);
    const good = stack.cp.cache.getSnapshot(group)!;
    const ecds = [...good.resources.extensionConfig.values()][0]!;
    const bad = structuredClone(ecds) as Resource & { typed_config: { config: { configuration: { value: string } } } };
    const config = JSON.parse(bad.typed_config.config.configuration.value) as { generation: number; hosts: { maxHeld: number }[] };
    config.generation += 1;
    config.hosts[0]!.maxHeld = -5;
    bad.typed_config.config.configuration.value = JSON.stringify(config);
    const snapshot = snapshotFromResources({ ...good.resources, extensionConfig: new Map([[bad.name, bad]]) });
    if (!snapshot.ok) throw new Error('test snapshot is inconsistent');
    stack.cp.cache.setSnapshot(group, snapshot.value);

    const nack = await eventually(async () => {
      const body = (await (await stack.adminFetch('/v1/nodes')).json()) as NodesJson;
      const n = body.nodes[0]?.types.extensionConfig?.nack;
      if (!n) throw new Error('no NACK yet');
      return n;
    }, { what: 'the NACK of the bad filter config' });
    expect(nack.message).to.match(/wasm/i);
    expect((await stack.envoy.stats('update_rejected')).get('extension_config_discovery.http_filter.scale_to_zero_buffer.update_rejected')).to.be.at.least(1);

    // The last good config still works: ready hosts pass, scaled-to-zero hosts are held.
    expect((await http1Request({ port: stack.port, host: 'web.test' })).status).to.equal(200);
    const held = http1Request({ port: stack.port, host: 'cold.test', timeoutMs: 60_000 });
    await eventually(async () => expect(await heldGauge(stack)).to.equal(1));

    // Publishing the store's (valid) state again is a new version: ACKed, and the wake releases.
    await stack.cp.publisher.publishNow();
    await eventually(async () => {
      const body = (await (await stack.adminFetch('/v1/nodes')).json()) as NodesJson;
      const e = body.nodes[0]?.types.extensionConfig;
      expect(e?.nack).to.equal(undefined);
      expect(e?.ackedVersion).to.equal(e?.sentVersion);
    }, { what: 'the good config ACKed' });
    expect((await stack.adminFetch('/v1/hosts/cold/wake', { method: 'POST' })).status).to.equal(200);
    expect((await held).status).to.equal(200);
    expect((await stack.adminFetch('/v1/hosts/cold/scale-to-zero', { method: 'POST' })).status).to.equal(200);
  });

  it('releases requests held by the old VM after the filter code is upgraded', async () => {
    const requests = Array.from({ length: 10 }, (_, i) => http1Request({ port: stack.port, host: 'cold.test', path: `/u${i}`, timeoutMs: 60_000 }));
    await eventually(async () => expect(await heldGauge(stack)).to.equal(10), { what: '10 held requests' });

    const vmsBefore = (await stack.envoy.stats('wasm.envoy.wasm.runtime.v8.created')).get('wasm.envoy.wasm.runtime.v8.created')!;
    const upgraded = path.join(stack.dir, 'filter-upgraded.wasm');
    await writeFile(upgraded, withCustomSection(await readFile(FILTER_WASM), 'stz-upgrade'));
    await stack.restartControlPlane({ filterWasmPath: upgraded });
    // The new build is in force on every worker: it is what Envoy ACKed.
    await eventually(async () => {
      const body = (await (await stack.adminFetch('/v1/nodes')).json()) as NodesJson;
      const e = body.nodes[0]?.types.extensionConfig;
      expect(e?.ackedVersion).to.equal(stack.cp.cache.getSnapshot(await envoyGroup(stack))!.versions.extensionConfig);
    }, { timeoutMs: 30_000, what: 'Envoy on the upgraded filter' });
    expect(await heldGauge(stack)).to.equal(10);
    // New code means new VMs (one per worker, plus the main thread's): the held requests live in the old ones.
    const vmsAfter = (await stack.envoy.stats('wasm.envoy.wasm.runtime.v8.created')).get('wasm.envoy.wasm.runtime.v8.created')!;
    expect(vmsAfter - vmsBefore).to.be.at.least(2);

    expect((await stack.adminFetch('/v1/hosts/cold/wake', { method: 'POST' })).status).to.equal(200);
    const replies = await Promise.all(requests);
    expect(replies.map((r) => r.status)).to.deep.equal(new Array(10).fill(200));
    expect(replies.map((r) => JSON.parse(r.body).path)).to.deep.equal(Array.from({ length: 10 }, (_, i) => `/u${i}`));
  });
});
