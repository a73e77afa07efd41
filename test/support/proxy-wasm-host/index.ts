export { ProxyWasmHost, Action, CLUSTER_NAME, FILTER_WASM, filterModule, propertyPath } from './host.ts';
export type {
  HttpContext, HttpCall, LocalReply, RootContext, Headers, HostOptions, PropertyRead, RequestOptions,
} from './host.ts';
export { SharedDataStore, StatsStore, MonotonicClock, Status } from './shared-state.ts';
