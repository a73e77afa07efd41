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
        'A stable code: invalid_request, unauthorized, forbidden, auth_unavailable, not_found, method_not_allowed, not_implemented, body_too_large, unsupported_media_type, headers_too_large, rate_limited, wake_failed, scale_down_failed, starting, internal_error.',
    },
    message: { type: 'string', description: 'What is wrong, for a person.' },
    details: {
      type: 'array',
      description: 'Field errors: which input field (a JSON pointer) and what is wrong with it.',
      items: { type: 'object', additionalProperties: false, required: ['path', 'message'], properties: { path: { type: 'string' }, message: { type: 'string' } } },
    },
    required: {
      type: 'object',
      description: 'With 403 (Kubernetes mode): the RBAC permission the call needs and the caller lacks.',
      additionalProperties: false,
      required: ['group', 'resource', 'verb'],
      properties: { group: { type: 'string' }, resource: { type: 'string' }, verb: { type: 'string' }, namespace: { type: 'string' }, name: { type: 'string' } },
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

// ---- The status page's document (GET /v1/status and every event of /v1/status/events).

const COLD_START_SCHEMA: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['source', 'reason', 'outcome', 'startedAt'],
  properties: {
    source: { enum: ['filter', 'admin'], description: 'filter: a held request woke it; admin: the admin API (or the status page).' },
    reason: { type: 'string' },
    outcome: { enum: ['waking', 'ready', 'failed'] },
    startedAt: { type: 'string', format: 'date-time', description: 'The wake began (scale-up asked of the provider).' },
    spawnedAt: { type: 'string', format: 'date-time', description: 'The provider started the replicas (a process spawned; a /scale write answered).' },
    readyAt: { type: 'string', format: 'date-time', description: 'The backend passed its readiness check, or its process signalled readiness (readyBy).' },
    readyBy: { enum: ['probe', 'signal'], description: 'Process hosts: probe = its health check passed; signal = the process said so (READY=1 on STZ_READY_FD, or POST /v1/ready/{name} with its token). Absent for other providers.' },
    releasePushedAt: { type: 'string', format: 'date-time', description: "The snapshot releasing the backend was published (written to the Envoys' streams)." },
    releaseAckedAt: { type: 'string', format: 'date-time', description: 'Every connected Envoy ACKed the release (or the wait ended).' },
    firstTrafficReportedAt: {
      type: 'string',
      format: 'date-time',
      description:
        "The first load report (LRS) after the release was pushed in which the backend's cluster had requests (it may precede releaseAckedAt: the report and the ACK travel on two streams). The first request's answer is not visible to the control plane; this bounds it to one report interval.",
    },
    phases: {
      type: 'array',
      description: 'The cold start so far, in order: start_requested, spawned, ready, release_pushed, release_acked, first_traffic_reported (the phases reached). sincePreviousMs: from the phase before.',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['phase', 'at', 'sincePreviousMs'],
        properties: {
          phase: { enum: ['start_requested', 'spawned', 'ready', 'release_pushed', 'release_acked', 'first_traffic_reported'] },
          at: { type: 'string', format: 'date-time' },
          sincePreviousMs: { type: 'integer', minimum: 0 },
        },
      },
    },
    wakeToReadyMs: { type: 'integer', minimum: 0 },
    readyToReleaseAckedMs: { type: 'integer', minimum: 0 },
    totalMs: { type: 'integer', minimum: 0, description: 'Wake to release ACKed.' },
    notApplied: { type: 'integer', minimum: 1, description: 'Envoys that had not applied the release when the wait ended.' },
    failure: {
      type: 'object',
      additionalProperties: false,
      required: ['reason', 'message'],
      properties: { reason: { enum: ['refused', 'exited', 'not_ready', 'release_failed'] }, message: { type: 'string' } },
    },
  },
};

const STATUS_HOST_SCHEMA: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'domains', 'protocol', 'scaler', 'state', 'phase', 'since', 'wakeCount', 'held', 'inProgress', 'coldStarts'],
  properties: {
    name: { type: 'string' },
    domains: { type: 'array', items: { type: 'string' } },
    protocol: { enum: ['http1', 'http2', 'grpc'] },
    scaler: { enum: ['manual', 'process', 'kubernetes'] },
    state: { enum: ['ready', 'scaled_to_zero'] },
    phase: { enum: ['scaled_to_zero', 'waking', 'ready', 'draining', 'failed'] },
    since: { type: 'string', format: 'date-time' },
    wakeCount: { type: 'integer', minimum: 0 },
    lastError: { type: 'string' },
    lastErrorAt: { type: 'string', format: 'date-time' },
    held: {
      type: 'object',
      additionalProperties: false,
      required: ['total', 'byEnvoy'],
      description:
        "Requests held now, as the filter's wake calls report them (about once a second per Envoy while any is held; a report older than 2.5 s is dropped, and all are dropped once the host is released or its wake fails).",
      properties: {
        total: { type: 'integer', minimum: 0 },
        byEnvoy: {
          type: 'array',
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['envoy', 'count', 'reportedAt'],
            properties: { envoy: { type: 'string', description: 'The id the filter gives its Envoy process (not the node id).' }, count: { type: 'integer', minimum: 0 }, reportedAt: { type: 'string', format: 'date-time' } },
          },
        },
      },
    },
    inProgress: { type: 'integer', minimum: 0, description: "Requests in progress at the backend, from the Envoys' latest load reports." },
    coldStarts: { type: 'array', items: COLD_START_SCHEMA, maxItems: 10, description: 'The last cold starts, newest first.' },
  },
};

const STATUS_NODE_SCHEMA: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['streamId', 'nodeId', 'clientKind', 'userAgent', 'connectedAt', 'types', 'loadReports'],
  properties: {
    streamId: { type: 'integer' },
    nodeId: { type: 'string' },
    clientKind: { enum: ['envoy', 'grpc', 'xds-client'] },
    userAgent: { type: 'string' },
    connectedAt: { type: 'string', format: 'date-time' },
    types: {
      type: 'object',
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        properties: {
          sentVersion: { type: 'string' },
          ackedVersion: { type: 'string' },
          nack: {
            type: 'object',
            additionalProperties: false,
            required: ['version', 'message', 'at'],
            properties: { version: { type: 'string' }, message: { type: 'string' }, at: { type: 'string', format: 'date-time' } },
          },
        },
      },
    },
    lastNack: {
      type: 'object',
      additionalProperties: false,
      required: ['type', 'version', 'message', 'at'],
      description: 'The newest NACK on this stream, kept after a later version is accepted.',
      properties: { type: { type: 'string' }, version: { type: 'string' }, message: { type: 'string' }, at: { type: 'string', format: 'date-time' } },
    },
    loadReports: {
      type: 'object',
      additionalProperties: false,
      required: ['streams', 'fresh'],
      properties: {
        streams: { type: 'integer', minimum: 0 },
        lastReportAt: { type: 'string', format: 'date-time' },
        fresh: { type: 'boolean', description: 'A report within three report intervals.' },
      },
    },
  },
};

export const STATUS_SCHEMA: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['generatedAt', 'loadReportIntervalMs', 'hosts', 'nodes'],
  properties: {
    generatedAt: { type: 'string', format: 'date-time' },
    loadReportIntervalMs: { type: 'integer', minimum: 1 },
    hosts: { type: 'array', items: STATUS_HOST_SCHEMA },
    nodes: { type: 'array', items: STATUS_NODE_SCHEMA },
  },
};

/** The filter's wake call reports what it holds in two headers (the filter sends both). */
export const HELD_HEADER_SCHEMA = { type: 'string', pattern: '^[0-9]{1,7}$' } as const;
/** A process's readiness token (32 hex digits, made per start: xds-server/scaling/process-provider.ts). */
export const READY_TOKEN_HEADER_SCHEMA = { type: 'string', pattern: '^[0-9a-f]{32}$' } as const;
export const READY_ACCEPTED_SCHEMA: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['host', 'accepted'],
  properties: { host: { type: 'string' }, accepted: { const: true } },
};
export const ENVOY_HEADER_SCHEMA = { type: 'string', minLength: 1, maxLength: 256, pattern: '^[\\x21-\\x7e]+$' } as const;

/** Named schemas: components of the OpenAPI document, referenced wherever the same object is used. */
export const NAMED_SCHEMAS: Readonly<Record<string, Schema>> = {
  Error: ERROR_SCHEMA,
  Host: HOST_SCHEMA,
  ScalingStatus: SCALING_STATUS_SCHEMA,
  SnapshotSummary: SNAPSHOT_SUMMARY_SCHEMA,
  HostChange: HOST_CHANGE_SCHEMA,
  Node: NODE_SCHEMA,
  Snapshot: SNAPSHOT_SCHEMA,
  Status: STATUS_SCHEMA,
  ColdStart: COLD_START_SCHEMA,
};

// allErrors stays off for untrusted input (each error costs work); bodies are also capped before parsing.
// Formats are annotations here (date-time strings come from toISOString).
const ajv = new Ajv({ allErrors: false, strict: true, validateFormats: false });
const validateHostName = ajv.compile<string>(HOST_NAME_PARAM_SCHEMA);
const validateHostAction = ajv.compile<HostActionBody>(HOST_ACTION_BODY_SCHEMA);
const validateHeldHeader = ajv.compile<string>(HELD_HEADER_SCHEMA);
const validateEnvoyHeader = ajv.compile<string>(ENVOY_HEADER_SCHEMA);
const validateReadyToken = ajv.compile<string>(READY_TOKEN_HEADER_SCHEMA);

/** The readiness signal's token header: required, 32 lower-case hex digits. */
export function checkReadyToken(token: string | undefined): string {
  if (token === undefined || !validateReadyToken(token)) {
    throw badRequest('x-scale-to-zero-ready-token must be the token the control plane gave this process in STZ_READY_TOKEN (32 hex digits)', [
      { path: '/headers/x-scale-to-zero-ready-token', message: `must match ${READY_TOKEN_HEADER_SCHEMA.pattern}` },
    ]);
  }
  return token;
}

/**
 * The wake call's held report: each header, when present, must be valid (400 otherwise). A count without an
 * Envoy id is recorded under "unidentified"; an id without a count reports nothing.
 */
export function checkHeldReport(held: string | undefined, envoy: string | undefined): { count: number; envoy: string } | undefined {
  if (held !== undefined && !validateHeldHeader(held)) {
    throw badRequest('x-scale-to-zero-held must be the number of requests held (0 to 9999999)', [
      { path: '/headers/x-scale-to-zero-held', message: `must match ${HELD_HEADER_SCHEMA.pattern}` },
    ]);
  }
  if (envoy !== undefined && !validateEnvoyHeader(envoy)) {
    throw badRequest('x-scale-to-zero-envoy must be the id of the calling Envoy (1 to 256 visible ASCII characters)', [
      { path: '/headers/x-scale-to-zero-envoy', message: 'must be 1 to 256 visible ASCII characters' },
    ]);
  }
  if (held === undefined) return undefined;
  return { count: Number(held), envoy: envoy ?? 'unidentified' };
}

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
