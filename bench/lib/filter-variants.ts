// Experiments only: the filter built with another per-callback bound (MAX_ACTIONS_PER_CALLBACK in
// filter/assembly/vm.ts), into .cache/filter-variants/bound-N/filter.wasm, once per bound. The shipped
// filter is always filter/build/filter.wasm.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../../envoy-bootstrap/envoy.ts';

export function buildFilterWithBound(bound: number): string {
  if (!Number.isInteger(bound) || bound < 1) throw new Error(`--bound must be a positive integer, not ${bound}`);
  const dir = path.join(REPO_ROOT, '.cache', 'filter-variants', `bound-${bound}`);
  const out = path.join(dir, 'filter.wasm');
  if (existsSync(out)) return out;
  mkdirSync(dir, { recursive: true });
  cpSync(path.join(REPO_ROOT, 'filter'), path.join(dir, 'filter'), { recursive: true, filter: (p) => path.basename(p) !== 'build' });
  const vm = path.join(dir, 'filter', 'assembly', 'vm.ts');
  const text = readFileSync(vm, 'utf8');
  const pattern = /export const MAX_ACTIONS_PER_CALLBACK: i32 = \d+;/;
  if (!pattern.test(text)) throw new Error('MAX_ACTIONS_PER_CALLBACK not found in filter/assembly/vm.ts');
  writeFileSync(vm, text.replace(pattern, `export const MAX_ACTIONS_PER_CALLBACK: i32 = ${bound};`));
  execFileSync(path.join(REPO_ROOT, 'node_modules', '.bin', 'asc'), ['filter/assembly/index.ts', '--config', 'filter/asconfig.json', '--target', 'release', '--outFile', out], { cwd: dir, stdio: 'inherit' });
  return out;
}
