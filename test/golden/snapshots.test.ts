// Golden files for both pure stages. test/golden/snapshots/<case>.in.yaml holds either a file-mode `config`
// (stage 1, source → model, is pinned in <case>.model.yaml) or a `model` directly (for what only the
// Kubernetes source can express); stage 2, model → xDS, is pinned in <case>.out.yaml (every resource, in push
// order, with versions). Invalid input pins <case>.error.yaml (the field errors) instead.
// UPDATE_GOLDEN=1 rewrites outputs and deletes ones no case produces; CI never sets it.
import { existsSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { parse, stringify } from 'yaml';
import { buildSnapshot } from '../../snapshots/build.ts';
import type { GatewayModel } from '../../model/gateway-model.ts';
import type { DesiredState, WakeFailure, WakeTarget } from '../../snapshots/desired-state.ts';
import { validateGatewayConfig } from '../../sources/file/parse.ts';
import { fileConfigToModel } from '../../sources/file/to-model.ts';
import { PUSH_ORDER, TYPE_URLS } from '../../snapshots/type-urls.ts';
import { expectDeepFrozen } from '../support/deep-frozen.ts';
import { expectWriterMatchesProtobufjs } from '../support/same-bytes.ts';

const DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'snapshots');
const UPDATE = process.env.UPDATE_GOLDEN === '1';

interface GoldenInput {
  config?: unknown;
  model?: GatewayModel;
  scaledToZero?: string[];
  generation?: number;
  filterWasmPath?: string;
  wake?: WakeTarget;
  wakeFailures?: Record<string, WakeFailure>;
}

type Rendered = { kind: 'out' | 'error' | 'model'; text: string }[];

function render(input: GoldenInput): Rendered {
  let model: GatewayModel;
  const rendered: Rendered = [];
  if (input.model) {
    model = input.model;
  } else {
    const config = validateGatewayConfig(input.config);
    if (!config.ok) return [{ kind: 'error', text: stringify({ errors: config.errors }) }];
    model = fileConfigToModel(config.value);
    rendered.push({ kind: 'model', text: stringify(model, { lineWidth: 0, aliasDuplicateObjects: false }) });
  }
  const state: DesiredState = {
    model,
    held: new Set(input.scaledToZero ?? []),
    generation: input.generation ?? 1,
    filterWasmPath: input.filterWasmPath ?? '/opt/stz/filter.wasm',
    ...(input.wake ? { wake: input.wake } : {}),
    ...(input.wakeFailures ? { wakeFailures: new Map(Object.entries(input.wakeFailures)) } : {}),
  };
  const snapshot = buildSnapshot(state);
  if (!snapshot.ok) return [{ kind: 'error', text: stringify({ errors: snapshot.errors }) }];
  // Every resource must encode as Envoy's protobuf (a wrapper type spelled as a bare number, say, would
  // otherwise surface only as a failed push), and our writer must give protobufjs's very bytes.
  for (const kind of PUSH_ORDER) for (const r of snapshot.value.resources[kind].values()) expectWriterMatchesProtobufjs(kind, r);
  for (const table of snapshot.value.resources.route.values()) expectDeepFrozen(table, `route ${table.name}`);
  const out = PUSH_ORDER.map((kind) => ({
    type: TYPE_URLS[kind],
    version: snapshot.value.versions[kind],
    resources: [...snapshot.value.resources[kind].values()],
  }));
  rendered.push({ kind: 'out', text: stringify(out, { lineWidth: 0, aliasDuplicateObjects: false }) });
  return rendered;
}

const KINDS = ['out', 'error', 'model'] as const;

const cases = readdirSync(DIR).filter((f) => f.endsWith('.in.yaml')).map((f) => f.slice(0, -'.in.yaml'.length)).sort();

describe('snapshot golden files', () => {
  it('has cases', () => expect(cases.length).to.be.greaterThan(3));

  for (const name of cases) {
    it(name, () => {
      const input = parse(readFileSync(path.join(DIR, `${name}.in.yaml`), 'utf8')) as GoldenInput;
      const rendered = render(input);
      for (const kind of KINDS) {
        const file = path.join(DIR, `${name}.${kind}.yaml`);
        const produced = rendered.find((r) => r.kind === kind);
        if (UPDATE) {
          if (produced) writeFileSync(file, produced.text);
          else if (existsSync(file)) unlinkSync(file);
          continue;
        }
        if (!produced) {
          expect(existsSync(file), `${name}: ${path.basename(file)} is stale (run with UPDATE_GOLDEN=1)`).to.equal(false);
          continue;
        }
        expect(existsSync(file), `${name}: expected ${path.basename(file)} (run with UPDATE_GOLDEN=1 to create it)`).to.equal(true);
        expect(produced.text, `${name}.${kind}.yaml`).to.equal(readFileSync(file, 'utf8'));
      }
    });
  }

  if (UPDATE) {
    after(() => {
      for (const f of readdirSync(DIR)) {
        const m = /^(.*)\.(out|error|model)\.yaml$/.exec(f);
        if (m && !cases.includes(m[1]!)) unlinkSync(path.join(DIR, f));
      }
    });
  }
});
