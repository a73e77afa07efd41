import type { DesiredState } from './desired-state.ts';
import { buildFilterConfig, serialiseFilterConfig } from './filter-config.ts';
import { BUFFER_FILTER_NAME } from './names.ts';
import type { Resource } from './resource.ts';
import { ANY_TYPES } from './type-urls.ts';

/**
 * The ECDS resource. vm_config depends only on the wasm path, so it is byte-identical across pushes:
 * Envoy then keeps each worker's VM and only creates a new plugin context, whose on_configure releases
 * what the VM holds. Changing anything in vm_config would start new VMs and strand the old ones' holds.
 */
export function buildBufferFilter(state: DesiredState): Resource[] {
  return [
    {
      name: BUFFER_FILTER_NAME,
      typed_config: {
        '@type': ANY_TYPES.wasmFilter,
        config: {
          name: BUFFER_FILTER_NAME,
          root_id: BUFFER_FILTER_NAME,
          vm_config: {
            vm_id: BUFFER_FILTER_NAME,
            runtime: 'envoy.wasm.runtime.v8',
            code: { local: { filename: state.filterWasmPath } },
          },
          configuration: { '@type': ANY_TYPES.stringValue, value: serialiseFilterConfig(buildFilterConfig(state)) },
        },
      },
    },
  ];
}
