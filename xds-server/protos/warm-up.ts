// The first encoding of each message type costs more than the rest: the writer (snapshots/proto-writer.ts)
// reads the type's reflection into a plan, and its code is not optimised yet (when protobufjs encoded every
// resource, writing its per-type encoders and converters took ~70 ms). Done lazily, that cost lands on the
// first real push to Envoy, the one a new gateway waits for; done here, once, while the control plane starts,
// before it serves anyone.
import type { ResourceKind } from '../../snapshots/type-urls.ts';
import { buildSnapshot } from '../../snapshots/build.ts';
import { encodeResource } from '../../snapshots/wire.ts';
import { validateGatewayConfig } from '../../sources/file/parse.ts';
import { fileConfigToModel } from '../../sources/file/to-model.ts';

/**
 * Encodes a small snapshot that uses what a real one does (HTTP/1, HTTP/2 and gRPC backends, a held host in
 * the filter config), so the writer's plans are made before the first push. Returns how long it took (ms).
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
  return performance.now() - started;
}
