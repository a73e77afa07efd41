// Golden files for the Kubernetes source: test/golden/gateway-api/<case>.in.yaml (Kubernetes objects, as the
// API server returns them, and options) -> <case>.model.yaml (the GatewayModel) and <case>.status.yaml (the
// status of every object we own); with more than one Gateway also <case>.split.yaml (what each Gateway's
// Envoys are sent: resource names per type and the hosts of the filter config). UPDATE_GOLDEN=1 rewrites outputs and deletes ones no case produces; CI
// never sets it.
import { existsSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { parse, stringify } from 'yaml';
import { buildSnapshot } from '../../snapshots/build.ts';
import { gatewaysOf, modelForGateway } from '../../snapshots/gateways.ts';
import { PUSH_ORDER } from '../../snapshots/type-urls.ts';
import { translate } from '../../sources/kubernetes/translate.ts';
import { expectDeepFrozen } from '../support/deep-frozen.ts';
import { expectWriterMatchesProtobufjs } from '../support/same-bytes.ts';
import type { Gateway, KubeObject, TranslateInput } from '../../sources/kubernetes/types.ts';

const DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'gateway-api');
const UPDATE = process.env.UPDATE_GOLDEN === '1';
const CONTROLLER = 'scaletozero.dev/gateway-controller';

interface GoldenInput {
  options?: {
    now?: string;
    controllerName?: string;
    /** "namespace/name" -> the address the runtime assigns that Gateway; default 127.0.0.1. */
    gatewayAddresses?: Record<string, string | null>;
  };
  objects: KubeObject[];
}

function input(golden: GoldenInput): TranslateInput {
  const of = <T>(kind: string): T[] => golden.objects.filter((o) => o.kind === kind) as T[];
  const addresses = golden.options?.gatewayAddresses ?? {};
  return {
    controllerName: golden.options?.controllerName ?? CONTROLLER,
    now: golden.options?.now ?? '2026-11-30T12:00:00Z',
    gatewayClasses: of('GatewayClass'),
    gateways: of('Gateway'),
    httpRoutes: of('HTTPRoute'),
    grpcRoutes: of('GRPCRoute'),
    referenceGrants: of('ReferenceGrant'),
    secrets: of('Secret'),
    services: of('Service'),
    endpointSlices: of('EndpointSlice'),
    namespaces: of('Namespace'),
    policies: of('ScaleToZeroPolicy'),
    gatewayAddress: (gw: Gateway) => {
      const key = `${gw.metadata.namespace ?? 'default'}/${gw.metadata.name}`;
      return key in addresses ? (addresses[key] ?? undefined) : '127.0.0.1';
    },
  };
}

const text = (value: unknown): string => stringify(value, { lineWidth: 0, aliasDuplicateObjects: false });

const cases = readdirSync(DIR).filter((f) => f.endsWith('.in.yaml')).map((f) => f.slice(0, -'.in.yaml'.length)).sort();

describe('Gateway API golden files', () => {
  it('has cases', () => expect(cases.length).to.be.greaterThan(10));

  for (const name of cases) {
    it(name, () => {
      const source = readFileSync(path.join(DIR, `${name}.in.yaml`), 'utf8');
      expect(source.startsWith('# '), `${name}.in.yaml must start with a one-line comment saying what it pins`).to.equal(true);
      const out = translate(input(parse(source) as GoldenInput));
      // The translation must not depend on anything but its input: a second run gives the same text.
      const again = translate(input(parse(source) as GoldenInput));
      const rendered: Record<string, string> = { model: text(out.model), status: text(out.statuses) };
      expect(text(again.model)).to.equal(rendered.model);
      expect(text(again.statuses)).to.equal(rendered.status);
      // Joined to the next stage: every model builds a consistent snapshot (each backend held, so the filter's
      // cluster entries are built too) whose resources encode as Envoy's protobuf, our writer's bytes the same as
      // protobufjs's.
      const held = new Set(out.model.backends.filter((b) => b.scaleToZero).map((b) => b.name));
      const snapshot = buildSnapshot({ model: out.model, held, generation: 1, filterWasmPath: '/f.wasm' });
      if (!snapshot.ok) throw new Error(`${name}: the model does not build: ${JSON.stringify(snapshot.errors)}`);
      for (const k of PUSH_ORDER) for (const r of snapshot.value.resources[k].values()) expectWriterMatchesProtobufjs(k, r, name);
      for (const table of snapshot.value.resources.route.values()) expectDeepFrozen(table, `${name}: route ${table.name}`);
      const gateways = gatewaysOf(out.model);
      if (gateways.length > 1) {
        const split: Record<string, unknown> = {};
        for (const gateway of gateways) {
          const own = buildSnapshot({ model: modelForGateway(out.model, gateway), held, generation: 1, filterWasmPath: '/f.wasm' });
          if (!own.ok) throw new Error(`${name}: gateway ${gateway} does not build: ${JSON.stringify(own.errors)}`);
          for (const k of PUSH_ORDER) for (const r of own.value.resources[k].values()) expectWriterMatchesProtobufjs(k, r, `${name} ${gateway}`);
          const filter = own.value.resources.extensionConfig.values().next().value as unknown as { typed_config: { config: { configuration: { value: string } } } };
          split[gateway] = {
            ...Object.fromEntries(PUSH_ORDER.filter((k) => k !== 'extensionConfig').map((k) => [k, [...own.value.resources[k].keys()]])),
            filterHosts: (JSON.parse(filter.typed_config.config.configuration.value) as { hosts: { name: string }[] }).hosts.map((h) => h.name),
          };
        }
        rendered.split = text(split);
      }
      for (const kind of ['model', 'status', ...(gateways.length > 1 ? ['split'] : [])]) {
        const file = path.join(DIR, `${name}.${kind}.yaml`);
        if (UPDATE) {
          writeFileSync(file, rendered[kind]!);
          continue;
        }
        expect(existsSync(file), `${name}: expected ${path.basename(file)} (run with UPDATE_GOLDEN=1 to create it)`).to.equal(true);
        expect(rendered[kind]!, `${name}.${kind}.yaml`).to.equal(readFileSync(file, 'utf8'));
      }
    });
  }

  if (UPDATE) {
    after(() => {
      for (const f of readdirSync(DIR)) {
        const m = /^(.*)\.(model|status|split)\.yaml$/.exec(f);
        if (m && !cases.includes(m[1]!)) unlinkSync(path.join(DIR, f));
      }
    });
  }
});
