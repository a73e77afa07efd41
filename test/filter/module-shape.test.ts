// What Envoy checks when it loads the module, and the layering rule of the filter's source tree.
import { expect } from 'chai';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { filterModule } from '../support/proxy-wasm-host/index.ts';

const ASSEMBLY = fileURLToPath(new URL('../../filter/assembly/', import.meta.url));

// Host functions proxy-wasm-cpp-host (Envoy 1.40) registers for ABI 0.2.1, limited to those this
// filter may reasonably use; an import outside this list fails the module's link in Envoy.
const ENVOY_HOST_FUNCTIONS = new Set([
  'env.proxy_log', 'env.proxy_get_log_level', 'env.proxy_get_current_time_nanoseconds',
  'env.proxy_set_tick_period_milliseconds', 'env.proxy_get_buffer_bytes', 'env.proxy_get_header_map_value',
  'env.proxy_get_header_map_pairs', 'env.proxy_set_effective_context', 'env.proxy_continue_stream',
  'env.proxy_send_local_response', 'env.proxy_get_shared_data', 'env.proxy_set_shared_data',
  'env.proxy_http_call', 'env.proxy_define_metric', 'env.proxy_increment_metric', 'env.proxy_record_metric',
  'env.proxy_get_metric', 'env.proxy_get_property', 'env.proxy_add_header_map_value', 'wasi_snapshot_preview1.clock_time_get',
]);

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? tsFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []);
}

function importsOf(file: string): string[] {
  return [...readFileSync(file, 'utf8').matchAll(/^\s*(?:import|export)\b[^;]*?from\s+["']([^"']+)["']/gm)].map((m) => m[1]!)
    .concat([...readFileSync(file, 'utf8').matchAll(/^\s*import\s+["']([^"']+)["']/gm)].map((m) => m[1]!));
}

describe('filter.wasm as Envoy sees it', () => {
  it('imports only host functions Envoy provides (no env.abort)', () => {
    const imports = WebAssembly.Module.imports(filterModule()).map((i) => `${i.module}.${i.name}`);
    expect(imports).to.not.include('env.abort');
    expect(imports.filter((i) => !ENVOY_HOST_FUNCTIONS.has(i))).to.deep.equal([]);
  });

  it('exports the ABI 0.2.1 marker exactly once, the allocator, memory and _initialize', () => {
    const exports = WebAssembly.Module.exports(filterModule()).map((e) => e.name);
    expect(exports.filter((n) => n.startsWith('proxy_abi_version_'))).to.deep.equal(['proxy_abi_version_0_2_1']);
    expect(exports).to.include.members(['proxy_on_memory_allocate', 'memory', '_initialize',
      'proxy_on_context_create', 'proxy_on_vm_start', 'proxy_on_configure', 'proxy_on_tick',
      'proxy_on_request_headers', 'proxy_on_request_body', 'proxy_on_done', 'proxy_on_delete',
      'proxy_on_http_call_response', 'proxy_on_response_headers']);
  });
});

describe('filter source layering', () => {
  for (const dir of ['buffer', 'config']) {
    it(`${dir}/ imports nothing from abi/ (the logic stays host-free)`, () => {
      const files = tsFiles(join(ASSEMBLY, dir));
      expect(files).to.not.be.empty;
      const offending = files.flatMap((f) => importsOf(f).filter((i) => /(^|\/)abi(\/|$)/.test(i)).map((i) => `${f}: ${i}`));
      expect(offending).to.deep.equal([]);
    });
  }

  it('the import scan itself sees an abi/ import where there is one', () => {
    const exportsFile = join(ASSEMBLY, 'http-context.ts');
    expect(importsOf(exportsFile).some((i) => i.startsWith('./abi/'))).to.equal(true);
  });
});
