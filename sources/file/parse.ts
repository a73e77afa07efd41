// The declarative config file (config/gateway.yaml): schema, validation with field-naming errors, and
// defaults. Pure: text in, GatewayConfig or errors out.
import { isIP } from 'node:net';
import { Ajv } from 'ajv';
import { CORE_SCHEMA, load as loadYaml } from 'js-yaml';
import {
  DEFAULT_BUFFER,
  DEFAULT_GRPC_SERVICE,
  DEFAULT_HEALTH_PATH,
  DEFAULT_HEALTH_TIMEOUT_MS,
  DEFAULT_IDLE_AFTER_MS,
  DEFAULT_WAKE_FAILURE_BACKOFF_MS,
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_STREAM_IDLE_TIMEOUT_MS,
  DEFAULT_WAKE_TIMEOUT_MS,
} from '../../snapshots/defaults.ts';
import type { GatewayConfig, HealthCheck, HostConfig, Protocol, ScalerConfig } from './config.ts';
import {
  MAX_HOLD_TIMEOUT_MS, MAX_MAX_HELD, MAX_RETRY_AFTER_SECONDS, MIN_HOLD_TIMEOUT_MS, MIN_MAX_HELD, MIN_RETRY_AFTER_SECONDS,
} from '../../filter/assembly/config/rules.ts';
import type { FieldError, Result } from '../../snapshots/errors.ts';
import { fieldErrorsFromAjv } from '../../snapshots/schema-errors.ts';

export const HOST_NAME_PATTERN = '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$';
// A lower-case DNS name, optionally starting with "*." for a suffix wildcard (as Envoy virtual hosts allow).
export const DOMAIN_PATTERN = '^(\\*\\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$';

const port = { type: 'integer', minimum: 1, maximum: 65535 } as const;
const address = { type: 'string', minLength: 1, maxLength: 253, pattern: '^[A-Za-z0-9.:-]+$' } as const;

export const BUFFER_POLICY_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    // The filter's own bounds (one source: filter/assembly/config/rules.ts).
    holdTimeoutMs: { type: 'integer', minimum: MIN_HOLD_TIMEOUT_MS, maximum: MAX_HOLD_TIMEOUT_MS },
    maxHeld: { type: 'integer', minimum: MIN_MAX_HELD, maximum: MAX_MAX_HELD },
    retryAfterSeconds: { type: 'integer', minimum: MIN_RETRY_AFTER_SECONDS, maximum: MAX_RETRY_AFTER_SECONDS },
  },
} as const;

// Up to a day; 0 switches the timeout off.
const requestTimeoutMs = { type: 'integer', minimum: 0, maximum: 86_400_000 } as const;
const streamIdleTimeoutMs = { type: 'integer', minimum: 0, maximum: 86_400_000 } as const;

export const ENDPOINT_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['address', 'port'],
  properties: { address, port },
} as const;

/**
 * Hosts per config file. Measured on a real Envoy 1.40 with every host scaled to zero (so every one is in the
 * filter's config): 10,000 hosts had the listener active 5.6 s after Envoy started, and a wake took 1.2 s
 * (each wake pushes the whole filter config). Beyond that is untested, so refused, saying so.
 */
export const MAX_HOSTS = 10_000;

const GATEWAY_CONFIG_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['listener', 'hosts'],
  properties: {
    listener: {
      type: 'object',
      additionalProperties: false,
      required: ['port'],
      properties: {
        address,
        port: { type: 'integer', minimum: 0, maximum: 65535 },
        http10DefaultHost: { type: 'string', maxLength: 253, pattern: DOMAIN_PATTERN },
      },
    },
    defaults: {
      type: 'object',
      additionalProperties: false,
      properties: { buffer: BUFFER_POLICY_SCHEMA, requestTimeoutMs, streamIdleTimeoutMs },
    },
    hosts: {
      type: 'array',
      maxItems: MAX_HOSTS,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'domains', 'endpoints'],
        properties: {
          name: { type: 'string', pattern: HOST_NAME_PATTERN },
          domains: {
            type: 'array',
            minItems: 1,
            maxItems: 100,
            items: { type: 'string', maxLength: 253, pattern: DOMAIN_PATTERN },
          },
          protocol: { enum: ['http1', 'http2', 'grpc'] },
          endpoints: { type: 'array', minItems: 1, maxItems: 100, items: ENDPOINT_SCHEMA },
          initialState: { enum: ['ready', 'scaled_to_zero'] },
          buffer: BUFFER_POLICY_SCHEMA,
          scaler: {
            type: 'object',
            required: ['kind'],
            oneOf: [
              {
                additionalProperties: false,
                properties: { kind: { const: 'manual' } },
              },
              {
                additionalProperties: false,
                required: ['kind', 'command'],
                properties: {
                  kind: { const: 'process' },
                  command: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } },
                  cwd: { type: 'string', minLength: 1 },
                  env: { type: 'object', additionalProperties: { type: 'string' } },
                },
              },
            ],
          },
          health: {
            type: 'object',
            additionalProperties: false,
            properties: {
              path: { type: 'string', pattern: '^/' },
              grpcService: { type: 'string' },
              timeoutMs: { type: 'integer', minimum: 1, maximum: 60_000 },
            },
          },
          wakeTimeoutMs: { type: 'integer', minimum: 1, maximum: 3_600_000 },
          wakeFailureBackoffMs: { type: 'integer', minimum: 1000, maximum: 3_600_000 },
          idleAfterMs: { type: 'integer', minimum: 0, maximum: 604_800_000 },
          heldHeader: { type: 'boolean' },
          requestTimeoutMs,
          streamIdleTimeoutMs,
        },
      },
    },
  },
} as const;

const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true });
const validateShape = ajv.compile(GATEWAY_CONFIG_SCHEMA);
/** One entry of `hosts` on its own: the same rules the whole file's schema applies to each entry. */
export const validateHostShape = ajv.compile(GATEWAY_CONFIG_SCHEMA.properties.hosts.items);

/** Raw shapes as the schema admits them; only used between validation and normalisation. */
export interface RawBuffer { holdTimeoutMs?: number; maxHeld?: number; retryAfterSeconds?: number }
export interface RawHost {
  name: string;
  domains: string[];
  protocol?: Protocol;
  endpoints: { address: string; port: number }[];
  initialState?: 'ready' | 'scaled_to_zero';
  buffer?: RawBuffer;
  scaler?: ScalerConfig;
  health?: { path?: string; grpcService?: string; timeoutMs?: number };
  wakeTimeoutMs?: number;
  wakeFailureBackoffMs?: number;
  idleAfterMs?: number;
  heldHeader?: boolean;
  requestTimeoutMs?: number;
  streamIdleTimeoutMs?: number;
}
export interface RawDefaults { buffer?: RawBuffer; requestTimeoutMs?: number; streamIdleTimeoutMs?: number }
interface RawConfig {
  listener: { address?: string; port: number; http10DefaultHost?: string };
  defaults?: RawDefaults;
  hosts: RawHost[];
}

export function parseGatewayConfigText(text: string): Result<GatewayConfig> {
  const data = loadConfigText(text);
  return data.ok ? validateGatewayConfig(data.value) : data;
}

/** The file's text as data (YAML 1.2 core schema; JSON is YAML), or the reader's error with its line. */
export function loadConfigText(text: string): Result<unknown> {
  // A file written as JSON (generated configs usually are) is read by the JSON reader, ~10x faster than the
  // YAML reader for the same text; anything it does not take as it stands goes to the YAML reader below.
  const json = readJsonStrictly(text);
  if (json !== undefined) return { ok: true, value: json.value };
  try {
    // js-yaml, not the \`yaml\` package the rest of the project writes with: reading a 1,000-host file took
    // ~80 ms with \`yaml\` and is several times faster here, and every reload reads the whole file. The YAML 1.2
    // core schema, as before: "yes" stays a string, duplicate keys are an error.
    return { ok: true, value: text.trim() === '' ? null : loadYaml(text, { schema: CORE_SCHEMA }) };
  } catch (err) {
    return { ok: false, errors: [{ path: '', message: `not valid YAML or JSON: ${(err as Error).message}` }] };
  }
}

/**
 * The value of a text that is a JSON object with no key twice in one object; undefined for anything else.
 * For such a text the YAML reader (YAML 1.2 is a superset of JSON) gives the same value. A duplicate key is
 * an error to the YAML reader but not to JSON.parse (the last one wins): a duplicate is seen as more keys in
 * the text than in the value, and the text then goes to the YAML reader, whose error names the key and line.
 */
export function readJsonStrictly(text: string): { value: unknown } | undefined {
  const start = text.search(/\S/);
  if (start < 0 || text.charCodeAt(start) !== 0x7b /* { */) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  return noKeyDropped(text, value) ? { value } : undefined;
}

/**
 * Whether JSON.parse kept every key of the text. Without a backslash in the text (config files rarely have
 * one) each string's text is its value, so every colon of the text is either a key's (one per key) or inside a
 * string the value holds: a key given twice drops its first entry, and with it at least that key's colon, from
 * the value's count. Counting colons is a builtin scan, ~4x faster than the tokenizer below (4 ms at 5,000
 * hosts), which is kept for texts with escapes.
 */
function noKeyDropped(text: string, value: unknown): boolean {
  if (text.indexOf('\\') >= 0) return keysInText(text) === keysInValue(value);
  let colons = 0;
  for (let i = text.indexOf(':'); i >= 0; i = text.indexOf(':', i + 1)) colons++;
  return colons === colonsInValue(value);
}

/** Keys, and colons inside keys and strings, of a parsed JSON value. */
function colonsInValue(value: unknown): number {
  if (typeof value === 'string') return colonsIn(value);
  if (value === null || typeof value !== 'object') return 0;
  let colons = 0;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) colons += colonsInValue(value[i]);
    return colons;
  }
  for (const key in value) colons += 1 + colonsIn(key) + colonsInValue((value as Record<string, unknown>)[key]);
  return colons;
}

function colonsIn(s: string): number {
  let n = 0;
  for (let i = s.indexOf(':'); i >= 0; i = s.indexOf(':', i + 1)) n++;
  return n;
}

// Outside its strings JSON has no quote: string tokens are found one after the other from the start, and a
// key is a string token followed by a colon.
const STRING_TOKEN = /"(?:[^"\\]|\\.)*"(\s*:)?/g;
function keysInText(text: string): number {
  let keys = 0;
  STRING_TOKEN.lastIndex = 0;
  for (let m = STRING_TOKEN.exec(text); m !== null; m = STRING_TOKEN.exec(text)) if (m[1] !== undefined) keys += 1;
  return keys;
}

function keysInValue(value: unknown): number {
  if (value === null || typeof value !== 'object') return 0;
  let keys = 0;
  if (Array.isArray(value)) {
    for (const v of value) keys += keysInValue(v);
    return keys;
  }
  for (const key in value) keys += 1 + keysInValue((value as Record<string, unknown>)[key]);
  return keys;
}

export function validateGatewayConfig(data: unknown): Result<GatewayConfig> {
  if (!validateShape(data)) {
    const errors = fieldErrorsFromAjv(validateShape.errors).map((e) =>
      e.path === '/hosts' && /more than/.test(e.message) ? { path: e.path, message: `has more than ${MAX_HOSTS} hosts, the most one file may have (the largest number tested with a real Envoy; split the hosts over several gateways)` } : e,
    );
    return { ok: false, errors: dedupe(errors) };
  }
  const raw = data as unknown as RawConfig;
  const errors: FieldError[] = [];
  const seenNames = new Map<string, number>();
  const seenDomains = new Map<string, string>();
  raw.hosts.forEach((h, i) => {
    const prev = seenNames.get(h.name);
    if (prev !== undefined) errors.push({ path: `/hosts/${i}/name`, message: `duplicates the name of /hosts/${prev}` });
    seenNames.set(h.name, i);
    h.domains.forEach((d, j) => {
      const owner = seenDomains.get(d);
      if (owner !== undefined) errors.push({ path: `/hosts/${i}/domains/${j}`, message: `"${d}" is already served by host "${owner}"` });
      seenDomains.set(d, h.name);
    });
    errors.push(...hostProblems(h, i));
  });
  if (raw.listener.http10DefaultHost?.startsWith('*.')) {
    errors.push({ path: '/listener/http10DefaultHost', message: 'must be a host name, not a wildcard: it becomes the Host of HTTP/1.0 requests that have none' });
  }
  if (errors.length > 0) return { ok: false, errors };

  const hosts: HostConfig[] = raw.hosts.map((h) => normaliseHost(h, raw.defaults ?? {}));
  const listener = { address: raw.listener.address ?? '127.0.0.1', port: raw.listener.port };
  return {
    ok: true,
    value: { listener: raw.listener.http10DefaultHost !== undefined ? { ...listener, http10DefaultHost: raw.listener.http10DefaultHost } : listener, hosts },
  };
}

/** What the schema cannot say about one host on its own (entry i of `hosts`). */
export function hostProblems(h: RawHost, i: number): FieldError[] {
  const errors: FieldError[] = [];
  h.endpoints.forEach((e, j) => {
    // EDS endpoints are used as given: Envoy does not resolve names there (it would NACK the update).
    if (isIP(e.address) === 0) errors.push({ path: `/hosts/${i}/endpoints/${j}/address`, message: `"${e.address}" is not an IP address; endpoints are not resolved by DNS` });
  });
  const protocol = h.protocol ?? 'http1';
  if (protocol === 'grpc' && h.health?.path !== undefined) {
    errors.push({ path: `/hosts/${i}/health/path`, message: 'a gRPC host is checked with the gRPC health service; use grpcService' });
  }
  if (protocol !== 'grpc' && h.health?.grpcService !== undefined) {
    errors.push({ path: `/hosts/${i}/health/grpcService`, message: 'only a gRPC host has a gRPC health service; use path' });
  }
  return errors;
}

// What a host that says nothing of its health check, buffer or scaler gets: one frozen object each, shared by
// every such host (a config's objects are never changed in place; a reload makes new ones), rather than three
// objects per host on a cold load's way to Envoy.
const DEFAULT_GRPC_HEALTH: HealthCheck = Object.freeze({ kind: 'grpc', service: DEFAULT_GRPC_SERVICE, timeoutMs: DEFAULT_HEALTH_TIMEOUT_MS });
const DEFAULT_HTTP_HEALTH: HealthCheck = Object.freeze({ kind: 'http', path: DEFAULT_HEALTH_PATH, timeoutMs: DEFAULT_HEALTH_TIMEOUT_MS });
const MANUAL_SCALER = Object.freeze({ kind: 'manual' as const });
/** The buffer of hosts without one of their own, for the last `defaults` seen (one per config read). */
let defaultBuffer: { defaults: RawDefaults; buffer: HostConfig['buffer'] } | undefined;

function bufferOf(h: RawHost, defaults: RawDefaults): HostConfig['buffer'] {
  if (h.buffer !== undefined) return { ...DEFAULT_BUFFER, ...defaults.buffer, ...h.buffer };
  if (defaultBuffer?.defaults !== defaults) defaultBuffer = { defaults, buffer: Object.freeze({ ...DEFAULT_BUFFER, ...defaults.buffer }) };
  return defaultBuffer.buffer;
}

export function normaliseHost(h: RawHost, defaults: RawDefaults): HostConfig {
  const protocol = h.protocol ?? 'http1';
  const health: HealthCheck =
    h.health === undefined
      ? protocol === 'grpc'
        ? DEFAULT_GRPC_HEALTH
        : DEFAULT_HTTP_HEALTH
      : protocol === 'grpc'
        ? { kind: 'grpc', service: h.health.grpcService ?? DEFAULT_GRPC_SERVICE, timeoutMs: h.health.timeoutMs ?? DEFAULT_HEALTH_TIMEOUT_MS }
        : { kind: 'http', path: h.health.path ?? DEFAULT_HEALTH_PATH, timeoutMs: h.health.timeoutMs ?? DEFAULT_HEALTH_TIMEOUT_MS };
  return {
    name: h.name,
    domains: [...h.domains],
    protocol,
    endpoints: h.endpoints.map((e) => ({ address: e.address, port: e.port })),
    initialState: h.initialState ?? 'ready',
    buffer: bufferOf(h, defaults),
    scaler: h.scaler ?? MANUAL_SCALER,
    health,
    wakeTimeoutMs: h.wakeTimeoutMs ?? DEFAULT_WAKE_TIMEOUT_MS,
    wakeFailureBackoffMs: h.wakeFailureBackoffMs ?? DEFAULT_WAKE_FAILURE_BACKOFF_MS,
    idleAfterMs: h.idleAfterMs ?? DEFAULT_IDLE_AFTER_MS,
    heldHeader: h.heldHeader ?? false,
    // gRPC streams may live for hours: no request timeout unless the host itself asks for one (the file-wide
    // default is for HTTP hosts).
    requestTimeoutMs: h.requestTimeoutMs ?? (protocol === 'grpc' ? 0 : (defaults.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS)),
    streamIdleTimeoutMs: h.streamIdleTimeoutMs ?? defaults.streamIdleTimeoutMs ?? DEFAULT_STREAM_IDLE_TIMEOUT_MS,
  };
}

// oneOf failures report every branch; keep each distinct message once so the user reads it once.
function dedupe(errors: FieldError[]): FieldError[] {
  const seen = new Set<string>();
  return errors.filter((e) => {
    const key = `${e.path}\u0000${e.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
