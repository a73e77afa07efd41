// One protobufjs Root with every Envoy type the control plane sends or reads, loaded from the protos that
// @grpc/grpc-js-xds ships under deps/ (there is no @envoyproxy/protos package on npm).
import { createRequire } from 'node:module';
import path from 'node:path';
import protobuf from 'protobufjs';

const require = createRequire(import.meta.url);
const depsDir = path.join(path.dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');
const protobufjsDir = path.dirname(require.resolve('protobufjs/package.json'));

const INCLUDE_DIRS = [
  path.join(depsDir, 'envoy-api'),
  path.join(depsDir, 'xds'),
  path.join(depsDir, 'googleapis'),
  path.join(depsDir, 'protoc-gen-validate'),
  // google/protobuf/*.proto (descriptor.proto among them) ship with protobufjs itself.
  protobufjsDir,
];

const ENTRY_FILES = [
  'envoy/service/discovery/v3/ads.proto',
  'envoy/service/load_stats/v3/lrs.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/config/core/v3/extension.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/filters/http/wasm/v3/wasm.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
  'envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  'google/protobuf/wrappers.proto',
];

let root: protobuf.Root | undefined;

/**
 * The types the control plane uses. Read from the .proto files, then rebuilt from their JSON form: the parsed
 * files keep every comment, and every name parsed out of a file's text keeps that whole text alive (V8 keeps a
 * substring as a slice of its parent); the rebuilt root has neither: ~2 MiB less heap for as long as the
 * process lives, for ~50 ms at start (test/unit/protos-lean.test.ts: the same bytes for the same resources).
 */
export function envoyProtos(): protobuf.Root {
  if (root) return root;
  // Through JSON text, so the rebuilt root's names are new strings, not slices of the files' text.
  const lean = protobuf.Root.fromJSON(JSON.parse(JSON.stringify(envoyProtosFromFiles().toJSON())) as protobuf.INamespace);
  lean.resolveAll();
  root = lean;
  return lean;
}

/** The types as read from the .proto files (a new root on every call: envoyProtos() is the one to use). */
export function envoyProtosFromFiles(): protobuf.Root {
  const r = new protobuf.Root();
  r.resolvePath = (_origin: string, target: string): string | null => {
    if (path.isAbsolute(target)) return target;
    for (const dir of INCLUDE_DIRS) {
      const candidate = path.join(dir, target);
      if (require('node:fs').existsSync(candidate)) return candidate;
    }
    return null;
  };
  // keepCase: resources are written with the protos' own snake_case field names, as in Envoy YAML.
  r.loadSync(ENTRY_FILES, { keepCase: true });
  r.resolveAll();
  return r;
}

export function messageType(fullName: string): protobuf.Type {
  return envoyProtos().lookupType(fullName);
}
