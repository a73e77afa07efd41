// JSON Schemas of every admin API input and output, compiled once. The handlers validate requests with the
// input schemas, every answer is checked against its output schema before it is sent (app.ts), and the
// OpenAPI document is assembled from these same objects (openapi.ts): the document cannot drift from
// what the API does without a test failing.
import { Ajv, type ValidateFunction } from 'ajv';
import { HOST_NAME_PATTERN } from '../../sources/file/parse.ts';
import { fieldErrorsFromAjv } from '../../snapshots/schema-errors.ts';
import { badRequest } from './errors.ts';

type Schema = Readonly<Record<string, unknown>>;

export const HOST_NAME_PARAM_SCHEMA = { type: 'string', pattern: HOST_NAME_PATTERN, maxLength: 63 } as const;
export const NODE_ID_PARAM_SCHEMA = { type: 'string', minLength: 1, maxLength: 1024 } as const;

export const HOST_ACTION_BODY_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    reason: { type: 'string', minLength: 1, maxLength: 200, description: 'Why; shown in the host state.' },
  },
} as const;

/**
 * `notApplied` in the answer of a scale-to-zero or wake: the xDS clients that rejected the change (NACK) or
 * had not applied it when the wait ended. Empty: every connected client that subscribes to the changed
 * types applied it.
 */
export const NOT_APPLIED_SCHEMA = {
  type: 'array',
  items: {
    type: 'object',
    required: ['node', 'stream', 'client', 'type', 'reason'],
    properties: {
      node: { type: 'string', description: 'node.id of the client' },
      stream: { type: 'integer', description: 'its ADS stream (two Envoys may share a node id)' },
      client: { enum: ['envoy', 'grpc', 'xds-client'] },
      type: { enum: ['cluster', 'endpoint', 'listener', 'route', 'extensionConfig'] },
      reason: { enum: ['rejected', 'timeout'] },
      message: { type: 'string', description: "the client's NACK message" },
    },
  },
} as const;

export interface HostActionBody {
  reason?: string;
}

// ---- Outputs. Objects the admin module builds itself are closed (additionalProperties: false), so a field
// added without documenting it fails the response check; objects built elsewhere (scaling status, xDS
// stream status, xDS resources) are described as far as clients rely on them and left open.

export const ERROR_SCHEMA: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['error', 'message'],
  properties: {
    error: {
      type: 'string',
      description:
        'A stable code: invalid_request, unauthorized, not_found, method_not_allowed, not_implemented, body_too_large, unsupported_media_type, headers_too_large, rate_limited, wake_failed, scale_down_failed, starting, internal_error.',
    },
    message: { type: 'string', description: 'What is wrong, for a person.' },
    details: {
      type: 'array',
      description: 'Field errors: which input field (a JSON pointer) and what is wrong with it.',
      items: { type: 'object', additionalProperties: false, required: ['path', 'message'], properties: { path: { type: 'string' }, message: { type: 'string' } } },
    },
  },
};

export const SCALING_STATUS_SCHEMA: Schema = {
  type: 'object',
  description: "The backend's scaling phase, as the control plane drives it.",
  required: ['phase', 'since', 'wakeCount'],
  properties: {
    phase: { enum: ['scaled_to_zero', 'waking', 'ready', 'draining', 'failed'], description: 'failed: the last wake failed; requests are answered at once until the backoff ends.' },
    since: { type: 'string', format: 'date-time' },
    lastError: { type: 'string' },
    lastErrorAt: { type: 'string', format: 'date-time' },
    wakeCount: { type: 'integer', minimum: 0 },
  },
};

const ENDPOINT_SCHEMA: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['address', 'port'],
  properties: { address: { type: 'string' }, port: { type: 'integer', minimum: 0, maximum: 65535 } },
};

const BUFFER_SCHEMA: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['holdTimeoutMs', 'maxHeld', 'retryAfterSeconds'],
  properties: {
    holdTimeoutMs: { type: 'integer', minimum: 0, description: 'Longest time a request is held before the 503 / UNAVAILABLE answer.' },
    maxHeld: { type: 'integer', minimum: 0, description: 'Most requests held per Envoy worker; more are answered at once.' },
    retryAfterSeconds: { type: 'integer', minimum: 0 },
  },
};

export const HOST_SCHEMA: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'domains', 'protocol', 'endpoints', 'state', 'changedAt', 'scaling', 'buffer', 'scaler'],
  properties: {
    name: { type: 'string' },
    domains: { type: 'array', items: { type: 'string' }, description: 'Request hosts only this backend serves (file mode); empty in Kubernetes mode.' },
    protocol: { enum: ['http1', 'http2', 'grpc'] },
    endpoints: { type: 'array', items: ENDPOINT_SCHEMA, description: 'Where Envoy sends requests now.' },
    state: { enum: ['ready', 'scaled_to_zero'], description: 'What the filter does now: pass requests (ready) or hold them (scaled_to_zero).' },
    changedAt: { type: 'string', format: 'date-time' },
    reason: { type: 'string', description: 'Why the state last changed.' },
    scaling: { anyOf: [SCALING_STATUS_SCHEMA, { type: 'null' }] },
    buffer: BUFFER_SCHEMA,
    scaler: { enum: ['manual', 'process', 'kubernetes'], description: 'What wakes and stops the backend.' },
  },
};

export const HOST_LIST_SCHEMA: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['hosts'],
  properties: { hosts: { type: 'array', items: HOST_SCHEMA } },
};

export const SNAPSHOT_SUMMARY_SCHEMA: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['generation', 'versions'],
  properties: {
    generation: { type: 'integer', description: 'The filter generation (grows with every change, across restarts).' },
    versions: {
      anyOf: [{ type: 'object', additionalProperties: { type: 'string' }, description: 'Version per resource kind.' }, { type: 'null' }],
    },
  },
};

export const HOST_CHANGE_SCHEMA: Schema = {
  type: 'object',
  required: ['host', 'changed', 'snapshot'],
  properties: {
    host: HOST_SCHEMA,
    changed: { type: 'boolean', description: 'false: the host was already in the asked state.' },
    snapshot: SNAPSHOT_SUMMARY_SCHEMA,
    notApplied: NOT_APPLIED_SCHEMA,
  },
};

export const WAKE_ACCEPTED_SCHEMA: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['host', 'accepted'],
  properties: { host: { type: 'string' }, accepted: { const: true } },
};

const VERSION_STATE_SCHEMA: Schema = {
  type: 'object',
  required: ['subscribed'],
  properties: {
    sentVersion: { type: 'string' },
    ackedVersion: { type: 'string' },
    wildcard: { type: 'boolean', description: 'Subscribed to every resource of the type ("*", or the legacy empty first request for listeners and clusters).' },
    subscribed: { type: 'array', items: { type: 'string' }, description: 'Resource names asked for explicitly.' },
    nack: { type: 'object', description: 'The standing NACK of this type: version, message, when.' },
    retry: {
      type: 'object',
      description: 'A rejected version resent with backoff until the client accepts it or the config changes.',
      required: ['version', 'attempts', 'nextRetryAt'],
      properties: { version: { type: 'string' }, attempts: { type: 'integer', minimum: 0 }, nextRetryAt: { type: 'string', format: 'date-time' } },
    },
  },
};

export const NODE_SCHEMA: Schema = {
  type: 'object',
  required: ['streamId', 'nodeId', 'connectedAt', 'types'],
  properties: {
    streamId: { type: 'integer' },
    nodeId: { type: 'string' },
    nodeCluster: { type: 'string' },
    userAgent: { type: 'string' },
    clientKind: { enum: ['envoy', 'grpc', 'xds-client'], description: 'From node.user_agent_name: Envoy, a proxyless gRPC client, or another xDS client.' },
    variant: { enum: ['sotw', 'delta'], description: 'State-of-the-world or delta (incremental) ADS.' },
    group: { type: 'string', description: 'The snapshot it is served: default (every gateway), gateway/<namespace>/<name> (node.metadata["scaletozero.dev/gateway"]), proxyless-grpc.' },
    connectedAt: { type: 'string', format: 'date-time' },
    types: { type: 'object', additionalProperties: VERSION_STATE_SCHEMA, description: 'Per resource kind (listener, route, cluster, endpoint, extensionConfig).' },
  },
};

export const NODE_LIST_SCHEMA: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['nodes'],
  properties: { nodes: { type: 'array', items: NODE_SCHEMA } },
};

const SNAPSHOT_SCHEMA: Schema = {
  anyOf: [
    {
      type: 'object',
      additionalProperties: false,
      required: ['versions', 'resources'],
      properties: {
        versions: { type: 'object', additionalProperties: { type: 'string' } },
        resources: {
          type: 'object',
          description: 'Per xDS type URL, the resources as JSON (TLS private keys redacted).',
          additionalProperties: { type: 'array', items: { type: 'object' } },
        },
      },
    },
    { type: 'null', description: 'Nothing published yet.' },
  ],
};

export const NODE_SNAPSHOT_SCHEMA: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['node', 'snapshot'],
  properties: { node: NODE_SCHEMA, snapshot: SNAPSHOT_SCHEMA },
};

export const CURRENT_SNAPSHOT_SCHEMA: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['generation', 'snapshot'],
  properties: { generation: { type: 'integer' }, snapshot: SNAPSHOT_SCHEMA },
};

export const RELOADED_SCHEMA: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['reloaded', 'snapshot'],
  properties: { reloaded: { const: true }, snapshot: SNAPSHOT_SUMMARY_SCHEMA },
};

export const HEALTH_SCHEMA: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['status'],
  properties: { status: { const: 'ok' } },
};

/** The document itself is described loosely: it is checked by the tools that read it. */
export const OPENAPI_DOCUMENT_SCHEMA: Schema = {
  type: 'object',
  required: ['openapi', 'info', 'paths'],
  properties: { openapi: { type: 'string' }, info: { type: 'object' }, paths: { type: 'object' } },
};

/** Named schemas: components of the OpenAPI document, referenced wherever the same object is used. */
export const NAMED_SCHEMAS: Readonly<Record<string, Schema>> = {
  Error: ERROR_SCHEMA,
  Host: HOST_SCHEMA,
  ScalingStatus: SCALING_STATUS_SCHEMA,
  SnapshotSummary: SNAPSHOT_SUMMARY_SCHEMA,
  HostChange: HOST_CHANGE_SCHEMA,
  Node: NODE_SCHEMA,
  Snapshot: SNAPSHOT_SCHEMA,
};

// allErrors stays off for untrusted input (each error costs work); bodies are also capped before parsing.
// Formats are annotations here (date-time strings come from toISOString).
const ajv = new Ajv({ allErrors: false, strict: true, validateFormats: false });
const validateHostName = ajv.compile<string>(HOST_NAME_PARAM_SCHEMA);
const validateHostAction = ajv.compile<HostActionBody>(HOST_ACTION_BODY_SCHEMA);

export function checkHostName(name: string): string {
  const shown = name.length > 80 ? `${name.slice(0, 80)}…` : name;
  if (!validateHostName(name)) {
    throw badRequest(`"${shown}" is not a valid host name (lower-case letters, digits and dashes, at most 63)`, [
      { path: '/name', message: `must match ${HOST_NAME_PATTERN}` },
    ]);
  }
  return name;
}

/** `undefined` is no body at all (allowed); a JSON `null` is a body, and not an object. */
export function checkHostActionBody(body: unknown): HostActionBody {
  return check(validateHostAction, body === undefined ? {} : body);
}

function check<T>(validate: ValidateFunction<T>, data: unknown): T {
  if (!validate(data)) {
    const details = fieldErrorsFromAjv(validate.errors);
    throw badRequest(`the request body is not valid: ${details.map((d) => `${d.path || '/'} ${d.message}`).join('; ')}`, details);
  }
  return data;
}

const outputValidators = new WeakMap<Schema, ValidateFunction>();
// All errors for outputs: they are ours, and a mismatch report should list everything at once.
const outputAjv = new Ajv({ allErrors: true, strict: true, validateFormats: false });

/** Compiles an output schema once (at start-up: a schema Ajv refuses stops the control plane, not a request). */
export function compileOutputSchema(schema: Schema): ValidateFunction {
  let validate = outputValidators.get(schema);
  if (!validate) outputValidators.set(schema, (validate = outputAjv.compile(schema)));
  return validate;
}

/** Checks an answer against its documented schema: the problems, or [] when it matches. */
export function outputProblems(schema: Schema, body: unknown): string[] {
  const validate = compileOutputSchema(schema);
  if (validate(body)) return [];
  return fieldErrorsFromAjv(validate.errors).map((e) => `${e.path || '/'} ${e.message}`);
}
