// Entry of the Wasm module: the ABI version marker, the allocator and the callbacks.
// Compiled in so asconfig.json can point `--use abort=` at it.
import "./abi/abort";
export { proxy_abi_version_0_2_1 } from "./abi/lifecycle";
export { proxy_on_memory_allocate } from "./abi/memory";
export {
  proxy_on_context_create,
  proxy_on_vm_start,
  proxy_on_configure,
  proxy_on_tick,
  proxy_on_request_headers,
  proxy_on_request_body,
  proxy_on_request_trailers,
  proxy_on_response_headers,
  proxy_on_http_call_response,
  proxy_on_done,
  proxy_on_delete,
} from "./exports";
