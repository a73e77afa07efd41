// Experiments and mechanism tests only: the filter built with other pacing constants of
// filter/assembly/vm.ts (MAX_ACTIONS_PER_CALLBACK, WORK_TICK_MS), into .cache/filter-variants/. A build is
// named by its constants and a hash of the filter's sources, so an edited filter is never served a stale
// variant. The shipped filter is always filter/build/filter.wasm.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../../envoy-bootstrap/envoy.ts';
import { compareNames } from '../../model/name-order.ts';

export interface FilterVariant {
  /** Resumes or local replies per callback (MAX_ACTIONS_PER_CALLBACK). */
  bound?: number;
  /** Tick period while work is queued, ms (WORK_TICK_MS). */
  workTickMs?: number;
}

const CONSTANTS: Record<keyof FilterVariant, string> = {
  bound: 'MAX_ACTIONS_PER_CALLBACK',
  workTickMs: 'WORK_TICK_MS',
};

export function buildFilterVariant(variant: FilterVariant): string {
  const entries = Object.entries(variant).filter(([, v]) => v !== undefined) as Array<[keyof FilterVariant, number]>;
  for (const [key, value] of entries) {
    if (!Number.isInteger(value) || value < 1) throw new Error(`${key} must be a positive integer, not ${value}`);
  }
  const filterDir = path.join(REPO_ROOT, 'filter');
  const name = [...entries.map(([k, v]) => `${k}-${v}`), sourceHash(path.join(filterDir, 'assembly')).slice(0, 12)].join('_');
  const dir = path.join(REPO_ROOT, '.cache', 'filter-variants', name);
  const out = path.join(dir, 'filter.wasm');
  if (existsSync(out)) return out;
  mkdirSync(dir, { recursive: true });
  cpSync(filterDir, path.join(dir, 'filter'), { recursive: true, filter: (p) => path.basename(p) !== 'build' });
  const vm = path.join(dir, 'filter', 'assembly', 'vm.ts');
  let text = readFileSync(vm, 'utf8');
  for (const [key, value] of entries) {
    const pattern = new RegExp(`export const ${CONSTANTS[key]}: i32 = \\d+;`);
    if (!pattern.test(text)) throw new Error(`${CONSTANTS[key]} not found in filter/assembly/vm.ts`);
    text = text.replace(pattern, `export const ${CONSTANTS[key]}: i32 = ${value};`);
  }
  writeFileSync(vm, text);
  execFileSync(path.join(REPO_ROOT, 'node_modules', '.bin', 'asc'), ['filter/assembly/index.ts', '--config', 'filter/asconfig.json', '--target', 'release', '--outFile', out], { cwd: dir, stdio: 'inherit' });
  return out;
}

export function buildFilterWithBound(bound: number): string {
  return buildFilterVariant({ bound });
}

function sourceHash(dir: string): string {
  const hash = createHash('sha256');
  const walk = (d: string): void => {
    for (const entry of readdirSync(d, { withFileTypes: true }).sort((a, b) => compareNames(a.name, b.name))) {
      const p = path.join(d, entry.name);
      if (entry.isDirectory()) walk(p);
      else hash.update(path.relative(dir, p)).update('\0').update(readFileSync(p)).update('\0');
    }
  };
  walk(dir);
  return hash.digest('hex');
}
