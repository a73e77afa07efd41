/** Polls `check` until it stops throwing, within a stated bound; the failure quotes the last error. */
export async function eventually<T>(check: () => T | Promise<T>, options: { timeoutMs?: number; intervalMs?: number; what?: string } = {}): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  let last: unknown;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`${options.what ?? 'condition'} not met within ${options.timeoutMs ?? 10_000} ms: ${(last as Error)?.message ?? String(last)}`);
    }
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 25));
  }
}
