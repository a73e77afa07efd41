// The first encoding of each message type costs more than the rest: the writer (snapshots/proto-writer.ts)
// reads the type's reflection into a plan, and its code is not optimised yet (when protobufjs encoded every
// resource, writing its per-type encoders and converters took ~70 ms). Done lazily, that cost lands on the
// first real push to Envoy, the one a new gateway waits for; done here, once, while the control plane starts,
// before it serves anyone.
//
// The same goes for the JIT: a config load's code (read, validate, model, build, hash, encode, plan) runs
// interpreted until V8 has seen enough of it. The first load of a fresh control plane is the one an Envoy
// that starts with it waits for, so the load path is also run here on a generated config of a few hundred
// hosts, which gets its hot functions compiled before anything is pushed.
import type { ResourceKind } from '../../snapshots/type-urls.ts';
import { buildSnapshot, type Snapshot } from '../../snapshots/build.ts';
import { filterConfigContent } from '../../snapshots/filter-config.ts';
import { canonicalJson, versionOf } from '../../snapshots/version.ts';
import { encodeResource } from '../../snapshots/wire.ts';
import { IncrementalConfigParser } from '../../sources/file/incremental-parse.ts';
import { validateGatewayConfig } from '../../sources/file/parse.ts';
import { keepUnchangedHosts } from '../../sources/file/reload-diff.ts';
import { fileConfigToModel } from '../../sources/file/to-model.ts';
import { planOf } from '../publish-plan.ts';
import { encodeDiscoveryResponse } from './codec.ts';
import { readDeltaDiscoveryRequest, readDiscoveryRequest } from './request-decode.ts';

/** Hosts in the generated config the load path is warmed with: enough for V8 to compile its hot loops. */
export const WARM_UP_HOSTS = 400;

/**
 * Encodes a small snapshot that uses what a real one does (HTTP/1, HTTP/2 and gRPC backends, a held host in
 * the filter config), so the writer's plans are made before the first push, then runs the load path on
 * WARM_UP_HOSTS generated hosts. Returns how long it took (ms).
 */
export function warmUpCodec(): number {
  const started = performance.now();
  const protocols = ['http1', 'http2', 'grpc'] as const;
  const config = validateGatewayConfig({
    listener: { port: 10000 },
    hosts: protocols.map((protocol, i) => ({
      name: `warm-up-${protocol}`,
      domains: [`warm-up-${protocol}.invalid`],
      protocol,
      endpoints: [{ address: '127.0.0.1', port: 1 + i }],
      initialState: i === 0 ? 'scaled_to_zero' : 'ready',
    })),
  });
  if (!config.ok) throw new Error(`codec warm-up config refused: ${JSON.stringify(config.errors)}`);
  const snapshot = buildSnapshot({ model: fileConfigToModel(config.value), held: new Set(['warm-up-http1']), generation: 1, filterWasmPath: '/warm-up.wasm' });
  if (!snapshot.ok) throw new Error(`codec warm-up snapshot refused: ${JSON.stringify(snapshot.errors)}`);
  for (const kind of Object.keys(snapshot.value.resources) as ResourceKind[]) {
    for (const resource of snapshot.value.resources[kind].values()) encodeResource(kind, resource);
  }
  warmUpLoadPath(snapshot.value);
  warmUpRequestReading();
  return performance.now() - started;
}

/** Resource names in the requests the request reader is warmed with. */
export const WARM_UP_REQUEST_NAMES = 2000;

/**
 * Reads generated requests of WARM_UP_REQUEST_NAMES names (an EDS ACK, a delta subscription) a few times: the
 * first EDS request and its ACK of a cold load carry every cluster's name and are on its critical path; read
 * by code V8 has not compiled yet, 5,000 names took ~1.5-3 ms each instead of ~0.1 (bench/request-decode.ts).
 */
export function warmUpRequestReading(): void {
  const names: string[] = [];
  for (let i = 0; i < WARM_UP_REQUEST_NAMES; i++) names.push(stringField(3, `host_warm-up-${i}`));
  const eds = 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment';
  // DiscoveryRequest: version_info 1, resource_names 3, type_url 4, response_nonce 5.
  const ack = Buffer.from(stringField(1, '1.warm-up') + names.join('') + stringField(4, eds) + stringField(5, '1'), 'latin1');
  // DeltaDiscoveryRequest: type_url 2, resource_names_subscribe 3 (the same tag as above).
  const subscribe = Buffer.from(stringField(2, eds) + names.join(''), 'latin1');
  for (let i = 0; i < 3; i++) {
    if (readDiscoveryRequest(ack).resource_names.length !== WARM_UP_REQUEST_NAMES) throw new Error('request reader warm-up: wrong name count');
    if (readDeltaDiscoveryRequest(subscribe).resource_names_subscribe.length !== WARM_UP_REQUEST_NAMES) throw new Error('request reader warm-up: wrong name count (delta)');
  }
}

/** A length-delimited field of an ASCII string shorter than 128 bytes (one tag byte, one length byte), as latin1 text. */
function stringField(field: number, value: string): string {
  return String.fromCharCode((field << 3) | 2, value.length) + value;
}
/** The pure part of a config load and reload, as the control plane runs it, on a generated config. */
function warmUpLoadPath(small: Snapshot): void {
  const hosts = (port: number) =>
    Array.from({ length: WARM_UP_HOSTS }, (_, i) => ({
      name: `warm-up-${i}`,
      domains: [`warm-up-${i}.invalid`],
      protocol: (['http1', 'http2', 'grpc'] as const)[i % 3],
      endpoints: [{ address: '127.0.0.1', port: i === 0 ? port : 1 + i }],
      initialState: i % 7 === 0 ? 'scaled_to_zero' : 'ready',
    }));
  const parser = new IncrementalConfigParser();
  parser.parse(JSON.stringify({ listener: { port: 10000 }, hosts: [] }));
  let previous: Snapshot = small;
  let previousConfig: ReturnType<typeof validateGatewayConfig> | undefined;
  // A first load (read whole), then a one-host change (read entry by entry).
  for (const port of [1, 2]) {
    const read = parser.parse(JSON.stringify({ listener: { port: 10000 }, hosts: hosts(port) }));
    parser.remember();
    if (!read.ok) throw new Error(`load warm-up config refused: ${JSON.stringify(read.errors.slice(0, 3))}`);
    const config = previousConfig?.ok ? keepUnchangedHosts(previousConfig.value, read.value).config : read.value;
    previousConfig = read;
    const state = { model: fileConfigToModel(config), held: new Set(config.hosts.filter((h) => h.initialState === 'scaled_to_zero').map((h) => h.name)), generation: 1, filterWasmPath: '/warm-up.wasm' };
    canonicalJson(filterConfigContent(state));
    const built = buildSnapshot(state);
    if (!built.ok) throw new Error(`load warm-up snapshot refused: ${JSON.stringify(built.errors.slice(0, 3))}`);
    const next = built.value;
    planOf(previous, next);
    for (const kind of Object.keys(next.resources) as ResourceKind[]) {
      versionOf(kind, next.resources[kind]);
      encodeDiscoveryResponse(kind, next.versions[kind], '1', [...next.resources[kind]].map(([name, r]) => ({ name, bytes: encodeResource(kind, r) })));
    }
    previous = next;
  }
}
