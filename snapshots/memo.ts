// What lets a rebuild cost work proportional to the change: a builder hands out the very same (frozen) object
// for the same input, so its protobuf encoding and hash (wire.ts, remembered by object; version.ts hashes
// those) are done once. Inputs are the model's own objects: a source that keeps unchanged parts of its
// model from one build to the next (the file source does) gets the reuse; one that rebuilds its model
// (Kubernetes) gets fresh objects, exactly as before.

/** Freezes a value and everything in it, so it can be shared between builds and its hash remembered. */
export function deepFrozen<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    if (Array.isArray(value)) {
      // Indexed: for...in over an array walks its indices as strings, a slow keyed load each.
      for (let i = 0; i < value.length; i++) {
        const v: unknown = value[i];
        if (v !== null && typeof v === 'object') deepFrozen(v);
      }
    } else {
      // for...in, not Object.values: no array per object (builders' outputs are plain data, no inherited keys).
      for (const key in value) {
        const v = (value as Record<string, unknown>)[key];
        if (v !== null && typeof v === 'object') deepFrozen(v);
      }
    }
    Object.freeze(value);
  }
  return value;
}

/**
 * One builder's outputs by input object. `key` names whatever else the output depends on (runtime state such
 * as whether a backend is held): the same input with another key is built again.
 */
export class BuildMemo<I extends object, O> {
  private readonly outputs = new WeakMap<I, { key: string; output: O }>();

  get(input: I, key: string, build: () => O): O {
    const known = this.outputs.get(input);
    if (known !== undefined && known.key === key) return known.output;
    const output = deepFrozen(build());
    this.outputs.set(input, { key, output });
    return output;
  }

  /** get() in two steps, for a caller that builds without a closure per input: the output known for this key. */
  known(input: I, key: string): O | undefined {
    const known = this.outputs.get(input);
    return known !== undefined && known.key === key ? known.output : undefined;
  }

  /** Keeps a built output (frozen here, if its builder did not freeze it). */
  remember(input: I, key: string, output: O): O {
    deepFrozen(output);
    this.outputs.set(input, { key, output });
    return output;
  }
}
