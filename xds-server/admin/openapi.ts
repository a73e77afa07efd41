// The OpenAPI document, assembled from the same schemas the handlers validate with.
import { HOST_ACTION_BODY_SCHEMA, HOST_NAME_PARAM_SCHEMA, NOT_APPLIED_SCHEMA } from './schemas.ts';

const errorSchema = {
  type: 'object',
  required: ['error', 'message'],
  properties: {
    error: { type: 'string', description: 'A stable code, e.g. invalid_request, not_found, unauthorized, rate_limited.' },
    message: { type: 'string' },
    details: { type: 'array', items: { type: 'object', properties: { path: { type: 'string' }, message: { type: 'string' } } } },
  },
};

const hostSchema = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    domains: { type: 'array', items: { type: 'string' } },
    protocol: { enum: ['http1', 'http2', 'grpc'] },
    endpoints: { type: 'array', items: { type: 'object', properties: { address: { type: 'string' }, port: { type: 'integer' } } } },
    state: { enum: ['ready', 'scaled_to_zero'] },
    changedAt: { type: 'string', format: 'date-time' },
    reason: { type: 'string' },
    buffer: { type: 'object' },
    scaler: { type: 'string' },
  },
};

const errors = (...codes: number[]): Record<string, unknown> =>
  Object.fromEntries(codes.map((c) => [String(c), { description: 'error', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } }]));
const ok = (description: string, schema: unknown = { type: 'object' }): Record<string, unknown> => ({
  '200': { description, content: { 'application/json': { schema } } },
});
const hostChange = { type: 'object', properties: { host: { $ref: '#/components/schemas/Host' }, changed: { type: 'boolean' }, snapshot: { type: 'object' }, notApplied: NOT_APPLIED_SCHEMA } };
const nameParam = { name: 'name', in: 'path', required: true, schema: HOST_NAME_PARAM_SCHEMA };
const actionBody = { required: false, content: { 'application/json': { schema: HOST_ACTION_BODY_SCHEMA } } };

export function buildOpenApiDocument(): Record<string, unknown> {
  return {
    openapi: '3.1.0',
    info: { title: 'scale-to-zero control plane admin API', version: '1' },
    components: {
      schemas: { Error: errorSchema, Host: hostSchema },
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
    },
    security: [{ bearer: [] }],
    paths: {
      '/healthz': { get: { security: [], responses: ok('the control plane is up') } },
      '/metrics': { get: { responses: { '200': { description: 'Prometheus text format' } } } },
      '/v1/hosts': { get: { summary: 'List hosts with their state', responses: ok('hosts') } },
      '/v1/hosts/{name}': {
        get: { parameters: [nameParam], responses: { ...ok('one host', { $ref: '#/components/schemas/Host' }), ...errors(400, 401, 404) } },
      },
      '/v1/hosts/{name}/scale-to-zero': {
        post: {
          summary: 'Mark the host scaled to zero: Envoy holds its new requests from now on',
          parameters: [nameParam],
          requestBody: actionBody,
          responses: { ...ok('the snapshot holding the host is published', hostChange), ...errors(400, 401, 404, 413, 415) },
        },
      },
      '/v1/hosts/{name}/wake': {
        post: {
          summary: 'Wake the host; held requests are released once it is ready (idempotent)',
          parameters: [nameParam],
          requestBody: actionBody,
          responses: { ...ok('the snapshot releasing the host is published', hostChange), ...errors(400, 401, 404, 413, 415) },
        },
      },
      '/v1/wake/{name}': {
        post: {
          summary: 'Wake call from the buffer filter; known hosts only, rate limited, no token',
          security: [],
          parameters: [nameParam],
          responses: { '202': { description: 'accepted' }, ...errors(400, 404, 429) },
        },
      },
      '/v1/nodes': { get: { summary: 'Connected Envoys: per type the version sent, ACKed, and the last NACK', responses: ok('nodes') } },
      '/v1/nodes/{id}/snapshot': {
        get: { parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }], responses: { ...ok('the node and its snapshot'), ...errors(401, 404) } },
      },
      '/v1/snapshot': { get: { summary: 'The current snapshot and filter generation', responses: ok('snapshot') } },
      '/v1/config/reload': { post: { summary: 'Re-read the config file', responses: { ...ok('reloaded'), ...errors(400, 401) } } },
    },
  };
}
