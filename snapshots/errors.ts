/** One problem with an input, located by a JSON-pointer-like path ("/hosts/0/endpoints/1/port"). */
export interface FieldError {
  path: string;
  message: string;
}

export type Result<T> = { ok: true; value: T } | { ok: false; errors: FieldError[] };

export function formatFieldErrors(errors: readonly FieldError[]): string {
  return errors.map((e) => `${e.path || '/'}: ${e.message}`).join('; ');
}
