import type { ErrorObject } from 'ajv';
import type { FieldError } from './errors.ts';

/** Turns Ajv's errors into messages that name the field a user has to fix. */
export function fieldErrorsFromAjv(errors: readonly ErrorObject[] | null | undefined): FieldError[] {
  return (errors ?? []).map((e) => {
    const params = e.params as Record<string, unknown>;
    if (e.keyword === 'additionalProperties') {
      return { path: `${e.instancePath}/${String(params.additionalProperty)}`, message: 'is not a known field' };
    }
    if (e.keyword === 'required') {
      return { path: `${e.instancePath}/${String(params.missingProperty)}`, message: 'is required' };
    }
    if (e.keyword === 'enum') {
      const allowed = (params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ');
      return { path: e.instancePath, message: `must be one of ${allowed}` };
    }
    return { path: e.instancePath, message: e.message ?? `fails ${e.keyword}` };
  });
}
