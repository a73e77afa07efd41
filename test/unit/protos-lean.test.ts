// The control plane's protobuf types are rebuilt from their JSON form to keep less in memory
// (xds-server/protos/load.ts): they must encode every resource to the very bytes the types read from the
// .proto files do (versions hash those bytes), and read back what they wrote.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { parse } from 'yaml';
import { buildSnapshot } from '../../snapshots/build.ts';
import type { GatewayModel } from '../../model/gateway-model.ts';
import { validateGatewayConfig } from '../../sources/file/parse.ts';
import { fileConfigToModel } from '../../sources/file/to-model.ts';
import { PUSH_ORDER } from '../../snapshots/type-urls.ts';
import { resourceType } from '../../snapshots/wire.ts';
import { envoyProtos, envoyProtosFromFiles } from '../../xds-server/protos/load.ts';

const GOLDEN = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'golden', 'snapshots');

describe('the protobuf types rebuilt from JSON', () => {
  it('encode every golden snapshot resource to the same bytes as the types read from the .proto files, and decode them back', () => {
    const fromFiles = envoyProtosFromFiles();
    expect(envoyProtos()).to.not.equal(fromFiles);
    let compared = 0;
    for (const file of readdirSync(GOLDEN).filter((f) => f.endsWith('.in.yaml'))) {
      const input = parse(readFileSync(path.join(GOLDEN, file), 'utf8')) as { config?: unknown; model?: GatewayModel; scaledToZero?: string[] };
      let model = input.model;
      if (!model) {
        const config = validateGatewayConfig(input.config);
        if (!config.ok) continue;
        model = fileConfigToModel(config.value);
      }
      const snapshot = buildSnapshot({ model, held: new Set(input.scaledToZero ?? []), generation: 1, filterWasmPath: '/f.wasm' });
      if (!snapshot.ok) continue;
      for (const kind of PUSH_ORDER) {
        const lean = resourceType(kind);
        const full = fromFiles.lookupType(lean.fullName.slice(1));
        for (const resource of snapshot.value.resources[kind].values()) {
          const bytes = lean.encode(lean.fromObject(resource)).finish();
          expect(Buffer.from(bytes).toString('hex'), `${file} ${kind} ${resource.name}`).to.equal(Buffer.from(full.encode(full.fromObject(resource)).finish()).toString('hex'));
          const back = lean.encode(lean.decode(bytes)).finish();
          expect(Buffer.from(back).equals(Buffer.from(bytes)), `${file} ${kind} ${resource.name} decoded and encoded again`).to.equal(true);
          compared += 1;
        }
      }
    }
    expect(compared).to.be.greaterThan(50);
  });

  it('read a request Envoy sends the same way', () => {
    const name = 'envoy.service.discovery.v3.DeltaDiscoveryRequest';
    const [lean, full] = [envoyProtos().lookupType(name), envoyProtosFromFiles().lookupType(name)];
    const message = { node: { id: 'n', metadata: { fields: { k: { string_value: 'v' } } } }, type_url: 'type.googleapis.com/envoy.config.cluster.v3.Cluster', resource_names_subscribe: ['a', 'b'], initial_resource_versions: { a: '1' }, response_nonce: '7', error_detail: { code: 3, message: 'bad' } };
    const bytes = full.encode(full.fromObject(message)).finish();
    expect(lean.toObject(lean.decode(bytes))).to.deep.equal(full.toObject(full.decode(bytes)));
  });
});
