// What lets a rebuild cost work proportional to the change: a builder hands out the very same (frozen) object
// for the same input, so its serialisation, hash (version.ts) and protobuf encoding (the codec caches by
// object) are done once. Inputs are the model's own objects: a source that keeps unchanged parts of its
// model from one build to the next (the file source does) gets the reuse; one that rebuilds its model
// (Kubernetes) gets fresh objects, exactly as before.

/** Freezes a value and everything in it, so it can be shared between builds and its hash remembered. */
export function deepFrozen<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFrozen(v);
    Object.freeze(value);
  }
  return value;
}

// Every builder output handed out by a BuildMemo: the objects that can appear again, unchanged, inside a
// later build (a virtual host inside the next route table). version.ts remembers the serialisation of these
// only, not of every frozen object inside them: what is never serialised again as a part of something else
// would only be kept in memory for nothing (at 5,000 hosts that was ~35 MiB of strings).
const handedOut = new WeakSet<object>();

/** Whether a value is a builder output that later builds may hand out again (see BuildMemo). */
export function isReusedOutput(value: object): boolean {
  return handedOut.has(value);
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
    if (output !== null && typeof output === 'object') handedOut.add(output);
    this.outputs.set(input, { key, output });
    return output;
  }
}
