// One error type for the admin API: a status, a stable code a script can match on, a message a person can
// act on, and optional details (field errors). The middleware renders it as JSON; nothing else is exposed.
import type { FieldError } from '../../snapshots/errors.ts';

export class AdminError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: FieldError[],
    readonly headers: Record<string, string> = {},
    /** More fields of the JSON body (e.g. the permission a 403 lacks). */
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export const badRequest = (message: string, details?: FieldError[]): AdminError => new AdminError(400, 'invalid_request', message, details);
export const notFound = (message: string): AdminError => new AdminError(404, 'not_found', message);
