// Reads a small JSON body with a hard size cap, so a large or malformed body is a 400/413, never a crash.
import type { Context } from 'koa';
import { AdminError, badRequest } from './errors.ts';

export const MAX_BODY_BYTES = 16 * 1024;

export async function readJsonBody(ctx: Context): Promise<unknown> {
  const declared = Number(ctx.get('content-length') || '0');
  if (declared > MAX_BODY_BYTES) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw tooLarge();
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return undefined;
  if (!ctx.is('application/json')) {
    throw new AdminError(415, 'unsupported_media_type', 'send the body as JSON with content-type: application/json');
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch (err) {
    throw badRequest(`the request body is not valid JSON: ${(err as Error).message}`);
  }
}

function tooLarge(): AdminError {
  return new AdminError(413, 'body_too_large', `the request body is larger than ${MAX_BODY_BYTES} bytes`);
}
