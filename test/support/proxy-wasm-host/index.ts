export { ProxyWasmHost, Action, FILTER_WASM, filterModule } from './host.ts';
export type { HttpContext, HttpCall, LocalReply, RootContext, Headers, HostOptions } from './host.ts';
export { SharedDataStore, StatsStore, MonotonicClock, Status } from './shared-state.ts';
