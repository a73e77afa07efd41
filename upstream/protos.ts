import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';

export const ECHO_PROTO_PATH = fileURLToPath(new URL('./protos/echo.proto', import.meta.url));
export const ECHO_SERVICE_NAME = 'stz.demo.v1.Echo';
export const ECHO_METHOD_PATH = `/${ECHO_SERVICE_NAME}/Echo`;
export const ECHO_STREAM_METHOD_PATH = `/${ECHO_SERVICE_NAME}/EchoStream`;
export const ECHO_CHAT_METHOD_PATH = `/${ECHO_SERVICE_NAME}/EchoChat`;
export const HEALTH_PROTO_PATH = healthProtoPath;

// Numbers rather than strings for int64: payloads in tests and benches are far
// below 2^53, and plain numbers keep assertions simple.
const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

export interface EchoRequest {
  message: string;
  payload: Buffer;
}

export interface EchoStreamRequest {
  message: string;
  count: number;
  interval_ms: number;
}

export interface EchoReply {
  message: string;
  upstream: string;
  payload_bytes: number;
  payload_sha256: string;
  authority: string;
  sequence: number;
}

let echoDefinition: protoLoader.PackageDefinition | undefined;
let healthDefinition: protoLoader.PackageDefinition | undefined;

export function echoPackageDefinition(): protoLoader.PackageDefinition {
  echoDefinition ??= protoLoader.loadSync(ECHO_PROTO_PATH, LOADER_OPTIONS);
  return echoDefinition;
}

export function echoServiceDefinition(): grpc.ServiceDefinition {
  const def = echoPackageDefinition()[ECHO_SERVICE_NAME];
  if (def === undefined || !('Echo' in def)) {
    throw new Error(`${ECHO_SERVICE_NAME} missing from ${ECHO_PROTO_PATH}`);
  }
  return def as grpc.ServiceDefinition;
}

export function echoClientConstructor(): grpc.ServiceClientConstructor {
  return grpc.makeGenericClientConstructor(echoServiceDefinition(), 'Echo');
}

export function healthClientConstructor(): grpc.ServiceClientConstructor {
  healthDefinition ??= protoLoader.loadSync(HEALTH_PROTO_PATH, LOADER_OPTIONS);
  const def = healthDefinition['grpc.health.v1.Health'];
  if (def === undefined || !('Check' in def)) {
    throw new Error(`grpc.health.v1.Health missing from ${HEALTH_PROTO_PATH}`);
  }
  return grpc.makeGenericClientConstructor(def as grpc.ServiceDefinition, 'Health');
}
