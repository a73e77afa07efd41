// Every admin route, described once: app.ts registers its handlers from this table (and checks each answer
// against the schema given here), and the served OpenAPI document is generated from it.
import {
  CURRENT_SNAPSHOT_SCHEMA,
  HEALTH_SCHEMA,
  HOST_ACTION_BODY_SCHEMA,
  HOST_CHANGE_SCHEMA,
  HOST_LIST_SCHEMA,
  HOST_NAME_PARAM_SCHEMA,
  HOST_SCHEMA,
  NAMED_SCHEMAS,
  NODE_ID_PARAM_SCHEMA,
  NODE_LIST_SCHEMA,
  NODE_SNAPSHOT_SCHEMA,
  OPENAPI_DOCUMENT_SCHEMA,
  RELOADED_SCHEMA,
  STATUS_SCHEMA,
  WAKE_ACCEPTED_SCHEMA,
  HELD_HEADER_SCHEMA,
  ENVOY_HEADER_SCHEMA,
  READY_ACCEPTED_SCHEMA,
  READY_TOKEN_HEADER_SCHEMA,
} from './schemas.ts';

import { ADMIN_API_GROUP, type AdminPermission } from './auth.ts';

type Schema = Readonly<Record<string, unknown>>;

export type RouteId =
  | 'health'
  | 'openapi'
  | 'metrics'
  | 'listHosts'
  | 'getHost'
  | 'scaleToZero'
  | 'wakeHost'
  | 'filterWake'
  | 'readySignal'
  | 'listNodes'
  | 'nodeSnapshot'
  | 'currentSnapshot'
  | 'reloadConfig'
  | 'statusPage'
  | 'statusScript'
  | 'statusStyle'
  | 'status'
  | 'statusEvents';

export interface RouteSpec {
  id: RouteId;
  method: 'get' | 'post';
  /** OpenAPI form: /v1/hosts/{name}. */
  path: string;
  summary: string;
  /** Needs the bearer token when one is configured. */
  auth: boolean;
  /** What a caller needs in Kubernetes mode (RBAC on ADMIN_API_GROUP); every `auth` route names one. */
  permission?: AdminPermission;
  params?: { name: string; schema: Schema; description: string }[];
  /** Request headers (optional unless `required`). */
  headers?: { name: string; schema: Schema; description: string; required?: boolean }[];
  /**
   * A stream of server-sent events (text/event-stream) that does not end: the `data` of every event matches
   * this schema, and each is checked before it is sent (as answers are).
   */
  events?: { name: string; schema: Schema };
  /** An optional JSON body. */
  body?: Schema;
  ok: { status: 200 | 202; description: string; schema: Schema; contentType?: string; links?: Record<string, Link> };
  /** Error answers this route gives besides 401 (added when a token is configured). */
  errors: Partial<Record<ErrorStatus, string>>;
}

type ErrorStatus = 400 | 403 | 404 | 413 | 415 | 429 | 503;

/** An OpenAPI link: which operation takes a value from this answer (clients and fuzzers follow them). */
interface Link {
  operationId: RouteId;
  parameters: Record<string, string>;
}

const FIRST_HOST = '$response.body#/hosts/0/name';
const hostLinks: Record<string, Link> = {
  getHost: { operationId: 'getHost', parameters: { name: FIRST_HOST } },
  scaleToZero: { operationId: 'scaleToZero', parameters: { name: FIRST_HOST } },
  wakeHost: { operationId: 'wakeHost', parameters: { name: FIRST_HOST } },
  filterWake: { operationId: 'filterWake', parameters: { name: FIRST_HOST } },
};

const hostParam = { name: 'name', schema: HOST_NAME_PARAM_SCHEMA, description: 'The host (backend) name.' };
const bodyErrors = {
  400: 'invalid host name or body (details name the field)',
  413: 'body larger than 16 KiB',
  415: 'a body that is not application/json',
} as const;

export const ROUTES: readonly RouteSpec[] = [
  { id: 'health', method: 'get', path: '/healthz', summary: 'Liveness: the control plane answers', auth: false, ok: { status: 200, description: 'up', schema: HEALTH_SCHEMA }, errors: {} },
  { id: 'openapi', method: 'get', path: '/openapi.json', summary: 'This document', auth: false, ok: { status: 200, description: 'the OpenAPI 3.1 document', schema: OPENAPI_DOCUMENT_SCHEMA }, errors: {} },
  {
    id: 'metrics',
    method: 'get',
    path: '/metrics',
    summary: 'Prometheus metrics (stz_*)',
    auth: true,
    permission: { verb: 'get', resource: 'status' },
    ok: { status: 200, description: 'Prometheus text format 0.0.4', schema: { type: 'string' }, contentType: 'text/plain' },
    errors: {},
  },
  {
    id: 'listHosts',
    method: 'get',
    path: '/v1/hosts',
    summary: 'Every scalable host with its state',
    auth: true,
    permission: { verb: 'list', resource: 'hosts' },
    ok: { status: 200, description: 'hosts', schema: HOST_LIST_SCHEMA, links: hostLinks },
    errors: {},
  },
  {
    id: 'getHost',
    method: 'get',
    path: '/v1/hosts/{name}',
    summary: 'One host with its state',
    auth: true,
    permission: { verb: 'get', resource: 'hosts' },
    params: [hostParam],
    ok: { status: 200, description: 'the host', schema: HOST_SCHEMA },
    errors: { 400: 'invalid host name', 404: 'no such host' },
  },
  {
    id: 'scaleToZero',
    method: 'post',
    path: '/v1/hosts/{name}/scale-to-zero',
    summary: 'Mark the host scaled to zero: Envoy holds its new requests from now on; a process host is drained and stopped',
    auth: true,
    permission: { verb: 'update', resource: 'hosts' },
    params: [hostParam],
    body: HOST_ACTION_BODY_SCHEMA,
    ok: { status: 200, description: 'the snapshot holding the host is published (and applied, or the wait timed out)', schema: HOST_CHANGE_SCHEMA },
    errors: { ...bodyErrors, 404: 'no such host', 503: 'scale_down_failed: the backend could not be stopped; it stays held, its next request wakes it' },
  },
  {
    id: 'wakeHost',
    method: 'post',
    path: '/v1/hosts/{name}/wake',
    summary: 'Wake the host; held requests are released once it is ready (idempotent)',
    auth: true,
    permission: { verb: 'wake', resource: 'hosts' },
    params: [hostParam],
    body: HOST_ACTION_BODY_SCHEMA,
    ok: { status: 200, description: 'the host is ready and the snapshot releasing it is published', schema: HOST_CHANGE_SCHEMA },
    errors: { ...bodyErrors, 404: 'no such host', 503: 'wake_failed: the backend did not become ready (the message says why); retry later' },
  },
  {
    id: 'filterWake',
    method: 'post',
    path: '/v1/wake/{name}',
    summary: "The buffer filter's wake call: known hosts only, rate limited, no token; answers at once",
    auth: false,
    params: [hostParam],
    headers: [
      { name: 'x-scale-to-zero-held', schema: HELD_HEADER_SCHEMA, description: "Requests this Envoy holds for the host now (the filter's per-host gauge, all workers). Without x-scale-to-zero-envoy it is recorded as from an unidentified Envoy." },
      { name: 'x-scale-to-zero-envoy', schema: ENVOY_HEADER_SCHEMA, description: 'An id the filter gives its Envoy process (stable while it runs); only meaningful with x-scale-to-zero-held.' },
    ],
    ok: { status: 202, description: 'the wake is under way (readiness reaches Envoy over ECDS)', schema: WAKE_ACCEPTED_SCHEMA },
    errors: { 400: 'invalid host name, or an invalid held report', 404: 'no such host; or mutual TLS is on and wake calls go to the wake port instead', 429: 'rate_limited: too many wake calls; retry after the Retry-After seconds' },
  },
  {
    id: 'readySignal',
    method: 'post',
    path: '/v1/ready/{name}',
    summary: "A host process's readiness signal: it POSTs here (STZ_READY_URL) with the token of its start (STZ_READY_TOKEN) once it serves; no admin token",
    auth: false,
    params: [hostParam],
    headers: [
      { name: 'x-scale-to-zero-ready-token', schema: READY_TOKEN_HEADER_SCHEMA, required: true, description: 'The token the control plane put in STZ_READY_TOKEN when it started this process. Good for that start only.' },
    ],
    ok: { status: 202, description: 'accepted: the host counts as ready and its held requests are released (a repeat is accepted too)', schema: READY_ACCEPTED_SCHEMA },
    errors: { 400: 'invalid host name, or the token header missing or malformed', 403: 'invalid_ready_token: no process of this host is running, or it was started with another token (an earlier start)', 404: 'no such host' },
  },
  {
    id: 'listNodes',
    method: 'get',
    path: '/v1/nodes',
    summary: 'Connected xDS clients: per type the version sent, ACKed, subscribed names and the last NACK',
    auth: true,
    permission: { verb: 'get', resource: 'snapshots' },
    ok: {
      status: 200,
      description: 'nodes',
      schema: NODE_LIST_SCHEMA,
      links: { nodeSnapshot: { operationId: 'nodeSnapshot', parameters: { id: '$response.body#/nodes/0/nodeId' } } },
    },
    errors: {},
  },
  {
    id: 'nodeSnapshot',
    method: 'get',
    path: '/v1/nodes/{id}/snapshot',
    summary: 'One connected node and the snapshot it is served',
    auth: true,
    permission: { verb: 'get', resource: 'snapshots' },
    params: [{ name: 'id', schema: NODE_ID_PARAM_SCHEMA, description: 'The node id from the client bootstrap.' }],
    ok: { status: 200, description: 'the node and its snapshot', schema: NODE_SNAPSHOT_SCHEMA },
    errors: { 404: 'no node with this id is connected' },
  },
  {
    id: 'currentSnapshot',
    method: 'get',
    path: '/v1/snapshot',
    summary: 'The current snapshot and filter generation',
    auth: true,
    permission: { verb: 'get', resource: 'snapshots' },
    ok: { status: 200, description: 'the snapshot', schema: CURRENT_SNAPSHOT_SCHEMA },
    errors: {},
  },
  {
    id: 'reloadConfig',
    method: 'post',
    path: '/v1/config/reload',
    summary: 'Re-read the config file (file mode); an invalid file is refused and the previous config stays',
    auth: true,
    permission: { verb: 'update', resource: 'config' },
    ok: { status: 200, description: 'reloaded and published', schema: RELOADED_SCHEMA },
    errors: { 400: 'the config file is invalid (details name each field), or there is no config file (Kubernetes mode)' },
  },
  // The status page: its files hold no data and are served without the token (a browser cannot send one
  // when it opens a URL); everything it shows and does goes through the routes below, which need it.
  { id: 'statusPage', method: 'get', path: '/status', summary: 'The status page (HTML; asks for the token when one is configured)', auth: false, ok: { status: 200, description: 'the page', schema: { type: 'string' }, contentType: 'text/html' }, errors: {} },
  { id: 'statusScript', method: 'get', path: '/status/app.js', summary: "The status page's script", auth: false, ok: { status: 200, description: 'JavaScript', schema: { type: 'string' }, contentType: 'text/javascript' }, errors: {} },
  { id: 'statusStyle', method: 'get', path: '/status/style.css', summary: "The status page's style sheet", auth: false, ok: { status: 200, description: 'CSS', schema: { type: 'string' }, contentType: 'text/css' }, errors: {} },
  {
    id: 'status',
    method: 'get',
    path: '/v1/status',
    summary: 'What the status page shows: hosts (phase, held requests, cold starts) and xDS clients (ACKed versions, NACKs, load-report freshness)',
    auth: true,
    permission: { verb: 'get', resource: 'status' },
    ok: { status: 200, description: 'the status document', schema: STATUS_SCHEMA },
    errors: {},
  },
  {
    id: 'statusEvents',
    method: 'get',
    path: '/v1/status/events',
    summary: 'The status document as server-sent events: one `status` event at once, then one whenever it changes (the stream does not end)',
    auth: true,
    permission: { verb: 'get', resource: 'status' },
    events: { name: 'status', schema: STATUS_SCHEMA },
    ok: {
      status: 200,
      description: 'text/event-stream; every `status` event carries the status document (the Status schema) as its data',
      schema: { type: 'string' },
      contentType: 'text/event-stream',
    },
    errors: {},
  },
];

/** Headers an answer carries, by status. */
const ERROR_HEADERS: Partial<Record<number, Record<string, { description: string }>>> = {
  401: { 'WWW-Authenticate': { description: 'Bearer' } },
  429: { 'Retry-After': { description: 'seconds' } },
  503: { 'Retry-After': { description: 'seconds' } },
};

export interface OpenApiOptions {
  /** A token is configured: routes that need it declare bearer auth and a 401 answer. */
  auth: boolean;
  /** Kubernetes RBAC decides (TokenReview + SubjectAccessReview): such routes also answer 403 and name their permission. */
  kubernetes?: boolean;
}

export function buildOpenApiDocument(options: OpenApiOptions): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of ROUTES) {
    const errors: Partial<Record<number, string>> = { ...r.errors };
    if (options.auth && r.auth) errors[401] = options.kubernetes ? 'unauthorized: send a Kubernetes bearer token the API server accepts as "Authorization: Bearer <token>"' : 'unauthorized: send the admin token as "Authorization: Bearer <token>"';
    if (options.kubernetes && r.permission) errors[403] = `forbidden: the caller may not "${r.permission.verb}" ${r.permission.resource}.${ADMIN_API_GROUP} (RBAC); the body's "required" names the permission`;
    const responses: Record<string, unknown> = {
      [String(r.ok.status)]: {
        description: r.ok.description,
        content: { [r.ok.contentType ?? 'application/json']: { schema: r.ok.schema } },
        ...(r.ok.links ? { links: r.ok.links } : {}),
      },
    };
    for (const [status, description] of Object.entries(errors)) {
      if (description === undefined) continue;
      const headers = ERROR_HEADERS[Number(status)];
      responses[status] = {
        description,
        ...(headers ? { headers: Object.fromEntries(Object.entries(headers).map(([h, d]) => [h, { ...d, schema: { type: 'string' } }])) } : {}),
        content: { 'application/json': { schema: NAMED_SCHEMAS.Error } },
      };
    }
    paths[r.path] = {
      ...paths[r.path],
      [r.method]: {
        operationId: r.id,
        summary: r.summary,
        ...(options.auth ? { security: r.auth ? [{ bearer: [] }] : [] } : {}),
        ...(r.params || r.headers
          ? {
              parameters: [
                ...(r.params ?? []).map((p) => ({ name: p.name, in: 'path', required: true, description: p.description, schema: p.schema })),
                ...(r.headers ?? []).map((h) => ({ name: h.name, in: 'header', required: h.required ?? false, description: h.description, schema: h.schema })),
              ],
            }
          : {}),
        ...(options.kubernetes && r.permission ? { 'x-kubernetes-rbac': { group: ADMIN_API_GROUP, ...r.permission } } : {}),
        ...(r.events ? { 'x-event-stream': { event: r.events.name, data: r.events.schema } } : {}),
        ...(r.body ? { requestBody: { required: false, content: { 'application/json': { schema: r.body } } } } : {}),
        responses,
      },
    };
  }
  return withRefs({
    openapi: '3.1.0',
    info: {
      title: 'scale-to-zero control plane admin API',
      version: '1',
      description:
        'Every error is JSON ({error, message, details?}). Unknown paths answer 404, known paths with another method 405 (with Allow), extension methods (PROPFIND, ...) 501; OPTIONS answers 204 with Allow. While the control plane starts, every route answers 503 {"error": "starting"}.',
    },
    components: {
      schemas: NAMED_SCHEMAS,
      ...(options.auth ? { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } } : {}),
    },
    paths,
  });
}

/**
 * A copy of the document where every use of a named schema object becomes a $ref to its component (the
 * handlers share the objects themselves, so identity is what names them).
 */
function withRefs(doc: Record<string, unknown>): Record<string, unknown> {
  const names = new Map<unknown, string>(Object.entries(NAMED_SCHEMAS).map(([name, s]) => [s, name]));
  const walk = (value: unknown, root?: unknown): unknown => {
    if (Array.isArray(value)) return value.map((v) => walk(v));
    if (value === null || typeof value !== 'object') return value;
    const name = names.get(value);
    if (name !== undefined && value !== root) return { $ref: `#/components/schemas/${name}` };
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, walk(v)]));
  };
  const { components, ...rest } = doc as { components: { schemas: Record<string, unknown> } & Record<string, unknown> };
  return {
    ...(walk(rest) as Record<string, unknown>),
    components: { ...components, schemas: Object.fromEntries(Object.entries(components.schemas).map(([n, s]) => [n, walk(s, s)])) },
  };
}
