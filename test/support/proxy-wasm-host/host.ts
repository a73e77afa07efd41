// A Proxy-Wasm ABI 0.2.1 host emulator that runs the real filter/build/filter.wasm with Node's
// WebAssembly, implements the host functions the filter imports, and exposes the resulting state
// (per-context action, continues, local replies, tick periods, metrics, logs, shared data, HTTP
// calls, property reads) for tests to assert on. Behaviour follows proxy-wasm-cpp-host where it matters: the effective
// context is reset at every callback, the tick period applies to the effective context's root,
// setting the effective context to an unknown id is BadArgument, shared data CAS rules.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { MonotonicClock, type MetricKind, SharedDataStore, StatsStore, Status } from './shared-state.ts';

export const FILTER_WASM = fileURLToPath(new URL('../../../filter/build/filter.wasm', import.meta.url));

let compiled: WebAssembly.Module | undefined;

/** The compiled filter. Fails (never skips) when it has not been built. */
export function filterModule(): WebAssembly.Module {
  if (compiled) return compiled;
  if (!existsSync(FILTER_WASM)) {
    throw new Error(`${FILTER_WASM} is missing: run npm run build:filter`);
  }
  compiled = new WebAssembly.Module(readFileSync(FILTER_WASM));
  return compiled;
}

export type Headers = Array<[string, string]>;

export interface LocalReply {
  statusCode: number;
  details: string;
  body: string;
  headers: Headers;
  /** null when the filter passed "no gRPC status" (-1). */
  grpcStatus: number | null;
}

/**
 * A property path as the ABI carries it (segments joined by NUL bytes, as Envoy splits them):
 * propertyPath('xds', 'cluster_name') is the attribute `xds.cluster_name`.
 */
export function propertyPath(...segments: string[]): string {
  return segments.join('\0');
}

/** The property Envoy sets to the upstream cluster its route picked for the request. */
export const CLUSTER_NAME = propertyPath('xds', 'cluster_name');
/** Why Envoy sent the response headers ("via_upstream" when an upstream answered). */
export const CODE_DETAILS = propertyPath('response', 'code_details');

export interface RequestOptions {
  /** Properties this request's context answers proxy_get_property with, keyed by propertyPath(...). */
  properties?: Record<string, string>;
}

export interface PropertyRead {
  /** Context in effect when the filter asked. */
  contextId: number;
  /** The path's segments (the wire path split on NUL). */
  path: string[];
  status: number;
}

export interface HttpContext {
  id: number;
  rootId: number;
  requestHeaders: Headers;
  /** Response headers as the filter left them (set by response(); headers it added are appended). */
  responseHeaders: Headers;
  /** Per-request properties (wire path -> value); absent ones answer NotFound. */
  properties: Map<string, string>;
  /** Value returned by the last request callback (headers/body/trailers). */
  lastAction: number | undefined;
  continued: number;
  continueFailures: number;
  localReply: LocalReply | undefined;
  localReplies: number;
  done: boolean;
}

export interface RootContext {
  id: number;
  tickPeriodMs: number;
  nextTickAtMs: number;
  configureResult: boolean | undefined;
  deleted: boolean;
}

export interface HttpCall {
  token: number;
  /** Context that was effective (or current) when the call was made. */
  contextId: number;
  upstream: string;
  headers: Headers;
  body: string;
  timeoutMs: number;
}

export interface LogLine {
  level: number;
  message: string;
}

export const Action = {
  Continue: 0,
  StopIteration: 1,
  StopAllIterationAndWatermark: 4,
  StopIterationAndWatermark: 2,
} as const;

export interface HostOptions {
  sharedData?: SharedDataStore;
  stats?: StatsStore;
  clock?: MonotonicClock;
  /** proxy_get_log_level answer; trace by default so every log line is built and exercised. */
  logLevel?: number;
}

interface FilterExports {
  memory: WebAssembly.Memory;
  _initialize(): void;
  proxy_on_memory_allocate(size: number): number;
  proxy_on_context_create(id: number, parent: number): void;
  proxy_on_vm_start(id: number, size: number): number;
  proxy_on_configure(id: number, size: number): number;
  proxy_on_tick(id: number): void;
  proxy_on_request_headers(id: number, n: number, eos: number): number;
  proxy_on_request_body(id: number, size: number, eos: number): number;
  proxy_on_request_trailers(id: number, n: number): number;
  proxy_on_response_headers(id: number, n: number, eos: number): number;
  proxy_on_http_call_response(id: number, token: number, headers: number, body: number, trailers: number): void;
  proxy_on_done(id: number): number;
  proxy_on_delete(id: number): void;
}

const METRIC_KINDS: MetricKind[] = ['counter', 'gauge', 'histogram'];

export class ProxyWasmHost {
  readonly sharedData: SharedDataStore;
  readonly stats: StatsStore;
  readonly clock: MonotonicClock;
  logLevel: number;

  readonly roots = new Map<number, RootContext>();
  readonly streams = new Map<number, HttpContext>();
  readonly logs: LogLine[] = [];
  readonly httpCalls: HttpCall[] = [];
  /** Every proxy_get_property call, in order. */
  readonly propertyReads: PropertyRead[] = [];
  /** Resumes + local replies made inside each callback, in order. */
  readonly effectsPerCallback: number[] = [];

  private readonly exports: FilterExports;
  private nextContextId = 1;
  private nextToken = 1;
  private current = 0;
  private effective = 0;
  private effects = 0;
  private pluginConfiguration: Buffer | undefined;
  private callResponseHeaders: Headers | undefined;
  private readonly metricNames = new Map<number, string>();
  private nextMetricId = 0;

  constructor(options: HostOptions = {}) {
    this.sharedData = options.sharedData ?? new SharedDataStore();
    this.stats = options.stats ?? new StatsStore();
    this.clock = options.clock ?? new MonotonicClock();
    this.logLevel = options.logLevel ?? 0;
    const instance = new WebAssembly.Instance(filterModule(), this.imports());
    this.exports = instance.exports as unknown as FilterExports;
    this.exports._initialize();
  }

  // ---- driving the filter -------------------------------------------------------------------

  /** New plugin context with this configuration (an object is JSON-encoded); returns its id. */
  startPlugin(configuration: string | object): { rootId: number; ok: boolean } {
    const id = this.nextContextId++;
    const root: RootContext = { id, tickPeriodMs: 0, nextTickAtMs: 0, configureResult: undefined, deleted: false };
    this.roots.set(id, root);
    this.callback(id, () => this.exports.proxy_on_context_create(id, 0));
    this.callback(id, () => this.exports.proxy_on_vm_start(id, 0));
    const text = typeof configuration === 'string' ? configuration : JSON.stringify(configuration);
    this.pluginConfiguration = Buffer.from(text, 'utf8');
    try {
      root.configureResult = this.callback(id, () => this.exports.proxy_on_configure(id, this.pluginConfiguration!.length)) !== 0;
    } finally {
      this.pluginConfiguration = undefined;
    }
    return { rootId: id, ok: root.configureResult };
  }

  /** New HTTP context under rootId; calls proxy_on_request_headers. */
  request(rootId: number, headers: Headers | Record<string, string>, options: RequestOptions = {}): HttpContext {
    const id = this.nextContextId++;
    const list: Headers = Array.isArray(headers) ? headers : Object.entries(headers);
    const ctx: HttpContext = {
      id, rootId, requestHeaders: list.map(([k, v]) => [k.toLowerCase(), v]), responseHeaders: [],
      properties: new Map(Object.entries(options.properties ?? {})), lastAction: undefined,
      continued: 0, continueFailures: 0, localReply: undefined, localReplies: 0, done: false,
    };
    this.streams.set(id, ctx);
    this.callback(id, () => this.exports.proxy_on_context_create(id, rootId));
    ctx.lastAction = this.callback(id, () => this.exports.proxy_on_request_headers(id, ctx.requestHeaders.length, 0));
    return ctx;
  }

  /**
   * Response headers reach the filter (proxy_on_response_headers); returns its action. `codeDetails` is what
   * Envoy answers for response.code_details: "via_upstream" for an upstream's answer (the default), another
   * string for one Envoy made itself (e.g. the router's "no_healthy_upstream").
   */
  response(ctx: HttpContext, headers: Record<string, string> = { ':status': '200' }, codeDetails = 'via_upstream'): number {
    ctx.responseHeaders = Object.entries(headers);
    ctx.properties.set(CODE_DETAILS, codeDetails);
    return this.callback(ctx.id, () => this.exports.proxy_on_response_headers(ctx.id, ctx.responseHeaders.length, 0));
  }

  requestBody(ctx: HttpContext, size: number, endOfStream: boolean): number {
    ctx.lastAction = this.callback(ctx.id, () => this.exports.proxy_on_request_body(ctx.id, size, endOfStream ? 1 : 0));
    return ctx.lastAction;
  }

  requestTrailers(ctx: HttpContext): number {
    ctx.lastAction = this.callback(ctx.id, () => this.exports.proxy_on_request_trailers(ctx.id, 1));
    return ctx.lastAction;
  }

  /** The stream ends (client gone or response done): on_done then on_delete, as Envoy does. */
  finish(ctx: HttpContext): void {
    this.callback(ctx.id, () => this.exports.proxy_on_done(ctx.id));
    this.callback(ctx.id, () => this.exports.proxy_on_delete(ctx.id));
    ctx.done = true;
  }

  deleteRoot(rootId: number): void {
    this.callback(rootId, () => this.exports.proxy_on_done(rootId));
    this.callback(rootId, () => this.exports.proxy_on_delete(rootId));
    const root = this.roots.get(rootId);
    if (root) root.deleted = true;
  }

  /** Calls on_tick of one root regardless of its period (a raw callback, for edge cases). */
  tick(rootId: number): void {
    this.callback(rootId, () => this.exports.proxy_on_tick(rootId));
  }

  /** Advances time in `stepMs` steps, firing every due tick the way Envoy's timers would. */
  runFor(ms: number, stepMs = 1): void {
    const end = this.clock.nowMs + ms;
    while (this.clock.nowMs < end) {
      this.clock.advance(Math.min(stepMs, end - this.clock.nowMs));
      for (const root of this.roots.values()) {
        if (root.deleted || root.tickPeriodMs === 0 || root.nextTickAtMs > this.clock.nowMs) continue;
        root.nextTickAtMs = this.clock.nowMs + root.tickPeriodMs;
        this.tick(root.id);
      }
    }
  }

  /** Delivers the reply of an HTTP call (status undefined = the call failed: no headers). */
  httpCallResponse(call: HttpCall, status?: number): void {
    this.callResponseHeaders = status === undefined ? undefined : [[':status', String(status)]];
    try {
      const n = this.callResponseHeaders?.length ?? 0;
      this.callback(call.contextId, () => this.exports.proxy_on_http_call_response(call.contextId, call.token, n, 0, 0));
    } finally {
      this.callResponseHeaders = undefined;
    }
  }

  /** Raw access for edge cases (e.g. callbacks for ids the filter never saw). */
  get raw(): FilterExports {
    return this.exports;
  }

  /** Runs a raw callback with the host's per-callback bookkeeping. */
  callback<T>(contextId: number, fn: () => T): T {
    const savedCurrent = this.current;
    const savedEffective = this.effective;
    const savedEffects = this.effects;
    this.current = contextId;
    this.effective = 0;
    this.effects = 0;
    try {
      return fn();
    } finally {
      this.effectsPerCallback.push(this.effects);
      this.current = savedCurrent;
      this.effective = savedEffective;
      this.effects = savedEffects;
    }
  }

  // ---- state for assertions ------------------------------------------------------------------

  metric(name: string): number | undefined {
    return this.stats.value(name);
  }

  logText(): string {
    return this.logs.map((l) => `[${l.level}] ${l.message}`).join('\n');
  }

  // ---- host functions --------------------------------------------------------------------------

  private contextInEffect(): number {
    return this.effective !== 0 ? this.effective : this.current;
  }

  private liveContext(id: number): boolean {
    const s = this.streams.get(id);
    if (s) return !s.done;
    const r = this.roots.get(id);
    return r !== undefined && !r.deleted;
  }

  private bytes(): Uint8Array {
    return new Uint8Array(this.exports.memory.buffer);
  }

  private view(): DataView {
    return new DataView(this.exports.memory.buffer);
  }

  private readString(ptr: number, len: number): string {
    return Buffer.from(this.bytes().subarray(ptr, ptr + len)).toString('utf8');
  }

  private readPairs(ptr: number, len: number): Headers {
    if (len === 0) return [];
    const v = this.view();
    const count = v.getUint32(ptr, true);
    const out: Headers = [];
    let data = ptr + 4 + count * 8;
    for (let i = 0; i < count; i++) {
      const nameLen = v.getUint32(ptr + 4 + i * 8, true);
      const valueLen = v.getUint32(ptr + 8 + i * 8, true);
      const name = this.readString(data, nameLen);
      data += nameLen + 1;
      const value = this.readString(data, valueLen);
      data += valueLen + 1;
      out.push([name, value]);
    }
    return out;
  }

  /** Copies bytes into a block from proxy_on_memory_allocate and writes its address and size. */
  private returnBytes(data: Uint8Array, ptrPtr: number, sizePtr: number): void {
    const ptr = this.exports.proxy_on_memory_allocate(data.length);
    this.bytes().set(data, ptr);
    const v = this.view();
    v.setUint32(ptrPtr, ptr, true);
    v.setUint32(sizePtr, data.length, true);
  }

  private rootOf(id: number): number {
    return this.streams.get(id)?.rootId ?? id;
  }

  private imports(): WebAssembly.Imports {
    const env = {
      proxy_log: (level: number, ptr: number, len: number): number => {
        this.logs.push({ level, message: this.readString(ptr, len) });
        return Status.Ok;
      },
      proxy_get_log_level: (ptr: number): number => {
        this.view().setUint32(ptr, this.logLevel, true);
        return Status.Ok;
      },
      proxy_get_current_time_nanoseconds: (ptr: number): number => {
        this.view().setBigUint64(ptr, BigInt(Date.now()) * 1_000_000n, true);
        return Status.Ok;
      },
      proxy_set_tick_period_milliseconds: (period: number): number => {
        const root = this.roots.get(this.rootOf(this.contextInEffect()));
        if (!root) return Status.BadArgument;
        root.tickPeriodMs = period >>> 0;
        root.nextTickAtMs = this.clock.nowMs + root.tickPeriodMs;
        return Status.Ok;
      },
      proxy_get_buffer_bytes: (type: number, start: number, max: number, ptrPtr: number, sizePtr: number): number => {
        if (type !== 7 || this.pluginConfiguration === undefined) return Status.NotFound;
        this.returnBytes(this.pluginConfiguration.subarray(start, start + max), ptrPtr, sizePtr);
        return Status.Ok;
      },
      proxy_get_header_map_value: (type: number, keyPtr: number, keyLen: number, ptrPtr: number, sizePtr: number): number => {
        const key = this.readString(keyPtr, keyLen).toLowerCase();
        let map: Headers | undefined;
        if (type === 0) map = this.streams.get(this.contextInEffect())?.requestHeaders;
        else if (type === 6) map = this.callResponseHeaders;
        if (!map) return Status.NotFound;
        const hit = map.find(([k]) => k === key);
        if (!hit) return Status.NotFound;
        this.returnBytes(Buffer.from(hit[1], 'utf8'), ptrPtr, sizePtr);
        return Status.Ok;
      },
      proxy_get_header_map_pairs: (): number => Status.NotFound,
      proxy_add_header_map_value: (type: number, keyPtr: number, keyLen: number, valuePtr: number, valueLen: number): number => {
        const ctx = this.streams.get(this.contextInEffect());
        if (!ctx || type !== 2) return Status.BadArgument;
        ctx.responseHeaders.push([this.readString(keyPtr, keyLen).toLowerCase(), this.readString(valuePtr, valueLen)]);
        return Status.Ok;
      },
      proxy_get_property: (pathPtr: number, pathLen: number, ptrPtr: number, sizePtr: number): number => {
        const path = this.readString(pathPtr, pathLen);
        const contextId = this.contextInEffect();
        const value = this.streams.get(contextId)?.properties.get(path);
        const status = value === undefined ? Status.NotFound : Status.Ok;
        this.propertyReads.push({ contextId, path: path.split('\0'), status });
        if (value !== undefined) this.returnBytes(Buffer.from(value, 'utf8'), ptrPtr, sizePtr);
        return status;
      },
      proxy_set_effective_context: (id: number): number => {
        if (!this.liveContext(id)) return Status.BadArgument;
        this.effective = id;
        return Status.Ok;
      },
      proxy_continue_stream: (streamType: number): number => {
        const ctx = this.streams.get(this.contextInEffect());
        if (!ctx || ctx.done || streamType !== 0) {
          if (ctx) ctx.continueFailures++;
          return Status.BadArgument;
        }
        this.effects++;
        ctx.continued++;
        return Status.Ok;
      },
      proxy_send_local_response: (
        statusCode: number, detailsPtr: number, detailsLen: number, bodyPtr: number, bodyLen: number,
        headersPtr: number, headersLen: number, grpcStatus: number,
      ): number => {
        const ctx = this.streams.get(this.contextInEffect());
        if (!ctx || ctx.done) return Status.BadArgument;
        this.effects++;
        ctx.localReplies++;
        ctx.localReply = {
          statusCode,
          details: this.readString(detailsPtr, detailsLen),
          body: this.readString(bodyPtr, bodyLen),
          headers: this.readPairs(headersPtr, headersLen),
          grpcStatus: grpcStatus >>> 0 === 0xffffffff ? null : grpcStatus,
        };
        return Status.Ok;
      },
      proxy_get_shared_data: (keyPtr: number, keyLen: number, ptrPtr: number, sizePtr: number, casPtr: number): number => {
        const entry = this.sharedData.get(this.readString(keyPtr, keyLen));
        if (!entry) return Status.NotFound;
        this.returnBytes(entry.value, ptrPtr, sizePtr);
        this.view().setUint32(casPtr, entry.cas, true);
        return Status.Ok;
      },
      proxy_set_shared_data: (keyPtr: number, keyLen: number, valuePtr: number, valueLen: number, cas: number): number => {
        const value = Buffer.from(this.bytes().subarray(valuePtr, valuePtr + valueLen));
        return this.sharedData.set(this.readString(keyPtr, keyLen), value, cas >>> 0);
      },
      proxy_http_call: (
        upPtr: number, upLen: number, hPtr: number, hLen: number, bPtr: number, bLen: number,
        _tPtr: number, _tLen: number, timeoutMs: number, tokenPtr: number,
      ): number => {
        const token = this.nextToken++;
        this.httpCalls.push({
          token, contextId: this.contextInEffect(), upstream: this.readString(upPtr, upLen),
          headers: this.readPairs(hPtr, hLen), body: this.readString(bPtr, bLen), timeoutMs,
        });
        this.view().setUint32(tokenPtr, token, true);
        return Status.Ok;
      },
      proxy_define_metric: (type: number, namePtr: number, nameLen: number, idPtr: number): number => {
        const kind = METRIC_KINDS[type];
        if (!kind) return Status.BadArgument;
        const name = this.readString(namePtr, nameLen);
        this.stats.define(name, kind);
        const id = this.nextMetricId++;
        this.metricNames.set(id, name);
        this.view().setUint32(idPtr, id, true);
        return Status.Ok;
      },
      proxy_increment_metric: (id: number, offset: bigint): number => {
        const m = this.stats.values.get(this.metricNames.get(id) ?? '');
        if (!m || m.kind === 'histogram') return Status.BadArgument;
        if (m.kind === 'counter' && offset < 0n) return Status.BadArgument;
        m.value += offset;
        return Status.Ok;
      },
      proxy_record_metric: (id: number, value: bigint): number => {
        const m = this.stats.values.get(this.metricNames.get(id) ?? '');
        if (!m) return Status.NotFound;
        if (m.kind === 'histogram') m.samples.push(value);
        else m.value = value;
        return Status.Ok;
      },
      proxy_get_metric: (id: number, ptr: number): number => {
        const m = this.stats.values.get(this.metricNames.get(id) ?? '');
        if (!m) return Status.NotFound;
        this.view().setBigUint64(ptr, m.value, true);
        return Status.Ok;
      },
    };
    const wasi = {
      clock_time_get: (clockId: number, _precision: bigint, ptr: number): number => {
        if (clockId === 1) this.view().setBigUint64(ptr, this.clock.nowNs, true);
        else if (clockId === 0) this.view().setBigUint64(ptr, BigInt(Date.now()) * 1_000_000n, true);
        else return 58;
        return 0;
      },
    };
    return { env, wasi_snapshot_preview1: wasi };
  }
}
