// Golden files for the pure translation: test/golden/snapshots/<case>.in.yaml (desired state) →
// <case>.out.yaml (every resource, in push order, with versions) or <case>.error.yaml (the field errors).
// UPDATE_GOLDEN=1 rewrites outputs and deletes ones no case produces; CI never sets it.
import { existsSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { parse, stringify } from 'yaml';
import { buildSnapshot } from '../../snapshots/build.ts';
import type { DesiredState, WakeTarget } from '../../snapshots/desired-state.ts';
import { validateGatewayConfig } from '../../snapshots/gateway-config.ts';
import { PUSH_ORDER, TYPE_URLS } from '../../snapshots/type-urls.ts';

const DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'snapshots');
const UPDATE = process.env.UPDATE_GOLDEN === '1';

interface GoldenInput {
  config: unknown;
  scaledToZero?: string[];
  generation?: number;
  filterWasmPath?: string;
  wake?: WakeTarget;
}

function render(input: GoldenInput): { kind: 'out' | 'error'; text: string } {
  const config = validateGatewayConfig(input.config);
  if (!config.ok) return { kind: 'error', text: stringify({ errors: config.errors }) };
  const state: DesiredState = {
    config: config.value,
    scaledToZero: new Set(input.scaledToZero ?? []),
    generation: input.generation ?? 1,
    filterWasmPath: input.filterWasmPath ?? '/opt/stz/filter.wasm',
    ...(input.wake ? { wake: input.wake } : {}),
  };
  const snapshot = buildSnapshot(state);
  if (!snapshot.ok) return { kind: 'error', text: stringify({ errors: snapshot.errors }) };
  const out = PUSH_ORDER.map((kind) => ({
    type: TYPE_URLS[kind],
    version: snapshot.value.versions[kind],
    resources: [...snapshot.value.resources[kind].values()],
  }));
  return { kind: 'out', text: stringify(out, { lineWidth: 0, aliasDuplicateObjects: false }) };
}

const cases = readdirSync(DIR).filter((f) => f.endsWith('.in.yaml')).map((f) => f.slice(0, -'.in.yaml'.length)).sort();

describe('snapshot golden files', () => {
  it('has cases', () => expect(cases.length).to.be.greaterThan(3));

  for (const name of cases) {
    it(name, () => {
      const input = parse(readFileSync(path.join(DIR, `${name}.in.yaml`), 'utf8')) as GoldenInput;
      const { kind, text } = render(input);
      const expectedFile = path.join(DIR, `${name}.${kind}.yaml`);
      const otherFile = path.join(DIR, `${name}.${kind === 'out' ? 'error' : 'out'}.yaml`);
      if (UPDATE) {
        writeFileSync(expectedFile, text);
        if (existsSync(otherFile)) unlinkSync(otherFile);
        return;
      }
      expect(existsSync(expectedFile), `${name}: expected ${path.basename(expectedFile)} (run with UPDATE_GOLDEN=1 to create it)`).to.equal(true);
      expect(text).to.equal(readFileSync(expectedFile, 'utf8'));
    });
  }

  if (UPDATE) {
    after(() => {
      for (const f of readdirSync(DIR)) {
        const m = /^(.*)\.(out|error)\.yaml$/.exec(f);
        if (m && !cases.includes(m[1]!)) unlinkSync(path.join(DIR, f));
      }
    });
  }
});
