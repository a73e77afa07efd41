// JSON Schemas of every admin API input, compiled once. The OpenAPI document is assembled from these.
import { Ajv, type ValidateFunction } from 'ajv';
import { HOST_NAME_PATTERN } from '../../sources/file/parse.ts';
import { fieldErrorsFromAjv } from '../../snapshots/schema-errors.ts';
import { badRequest } from './errors.ts';

export const HOST_NAME_PARAM_SCHEMA = { type: 'string', pattern: HOST_NAME_PATTERN, maxLength: 63 } as const;

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

// allErrors stays off for untrusted input (each error costs work); bodies are also capped before parsing.
const ajv = new Ajv({ allErrors: false, strict: true });
const validateHostName = ajv.compile<string>(HOST_NAME_PARAM_SCHEMA);
const validateHostAction = ajv.compile<HostActionBody>(HOST_ACTION_BODY_SCHEMA);

export function checkHostName(name: string): string {
  if (!validateHostName(name)) {
    throw badRequest(`"${name}" is not a valid host name (lower-case letters, digits and dashes, at most 63)`, [
      { path: '/name', message: `must match ${HOST_NAME_PATTERN}` },
    ]);
  }
  return name;
}

export function checkHostActionBody(body: unknown): HostActionBody {
  return check(validateHostAction, body ?? {});
}

function check<T>(validate: ValidateFunction<T>, data: unknown): T {
  if (!validate(data)) {
    const details = fieldErrorsFromAjv(validate.errors);
    throw badRequest(`the request body is not valid: ${details.map((d) => `${d.path || '/'} ${d.message}`).join('; ')}`, details);
  }
  return data;
}
