// Every proxy_on_* callback of Proxy-Wasm ABI 0.2.1 this filter implements. Each delegates to the
// plugin or HTTP context code; an id this module does not know gets a harmless default (Continue,
// true, nothing) rather than a trap, which would take down every request held in this VM.
import { onConfigure, onHttpCallResponse, onPluginDelete, onTick, onVmStart } from "./plugin-context";
import { forgetStream, onRequestBody, onRequestHeaders, onRequestTrailers, onResponseHeaders } from "./http-context";
import { createPluginContext, isPluginContext } from "./contexts";

export function proxy_on_context_create(contextId: u32, parentContextId: u32): void {
  // Parent 0 = a plugin context. HTTP contexts need no registration (see contexts.ts).
  if (parentContextId == 0) createPluginContext(contextId);
}

export function proxy_on_vm_start(rootContextId: u32, vmConfigurationSize: u32): bool {
  return onVmStart(rootContextId);
}

export function proxy_on_configure(rootContextId: u32, pluginConfigurationSize: u32): bool {
  return onConfigure(rootContextId, pluginConfigurationSize);
}

export function proxy_on_tick(rootContextId: u32): void {
  onTick(rootContextId);
}

export function proxy_on_request_headers(contextId: u32, numHeaders: u32, endOfStream: u32): u32 {
  return onRequestHeaders(contextId);
}

export function proxy_on_request_body(contextId: u32, bodySize: u32, endOfStream: u32): u32 {
  return onRequestBody(contextId);
}

export function proxy_on_request_trailers(contextId: u32, numTrailers: u32): u32 {
  return onRequestTrailers(contextId);
}

export function proxy_on_response_headers(contextId: u32, numHeaders: u32, endOfStream: u32): u32 {
  return onResponseHeaders(contextId);
}

export function proxy_on_http_call_response(
  rootContextId: u32, calloutId: u32, numHeaders: u32, bodySize: u32, numTrailers: u32,
): void {
  onHttpCallResponse(rootContextId, calloutId, numHeaders);
}

export function proxy_on_done(contextId: u32): bool {
  if (!isPluginContext(contextId)) forgetStream(contextId);
  return true;
}

export function proxy_on_delete(contextId: u32): void {
  if (isPluginContext(contextId)) onPluginDelete(contextId);
  else forgetStream(contextId);
}
