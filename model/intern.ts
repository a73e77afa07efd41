// Keeps a rebuilt model's unchanged parts as the very objects of the previous model. A source that rebuilds
// its whole model on every change (Kubernetes: each watch event translates every object again) passes the
// result through here, so the snapshot builders, which reuse their output for the same input object
// (snapshots/memo.ts), rebuild, re-hash and re-encode only the backends and virtual hosts that changed.
// When nothing changed at all the previous model itself comes back, so a caller learns "no change" from
// identity instead of serialising the whole model again.
import type { BackendModel, GatewayModel, ListenerModel, VirtualHostModel } from './gateway-model.ts';

export function internModel(previous: GatewayModel | undefined, next: GatewayModel): GatewayModel {
  if (previous === undefined) return next;
  const backends = new Map(previous.backends.map((b) => [b.name, b]));
  const virtualHosts = new Map(previous.listeners.flatMap((l) => l.virtualHosts.map((vh) => [`${l.name}\u0000${vh.name}`, vh] as const)));
  const listeners = next.listeners.map((l): ListenerModel => ({
    ...l,
    virtualHosts: l.virtualHosts.map((vh) => same(virtualHosts.get(`${l.name}\u0000${vh.name}`), vh)),
  }));
  const interned: GatewayModel = { listeners, backends: next.backends.map((b) => same(backends.get(b.name), b)) };
  return unchanged(previous, interned) ? previous : interned;
}

function same<T extends BackendModel | VirtualHostModel>(previous: T | undefined, next: T): T {
  return previous !== undefined && serialisedOnce(previous) === JSON.stringify(next) ? previous : next;
}

/** Whether an interned model says exactly what the previous one said (its parts are then the previous objects). */
function unchanged(previous: GatewayModel, next: GatewayModel): boolean {
  if (previous.backends.length !== next.backends.length || previous.listeners.length !== next.listeners.length) return false;
  if (next.backends.some((b, i) => b !== previous.backends[i])) return false;
  return next.listeners.every((l, i) => {
    const p = previous.listeners[i]!;
    return (
      l.virtualHosts.length === p.virtualHosts.length &&
      l.virtualHosts.every((vh, j) => vh === p.virtualHosts[j]) &&
      // A listener's own fields (name, port, TLS, ...) are few: compared by value, virtual hosts left out.
      serialisedOnce(listenerFields(p)) === JSON.stringify({ ...l, virtualHosts: undefined })
    );
  });
}

// One stand-in object per listener in force, so its fields' serialisation is computed once.
const fieldsOf = new WeakMap<ListenerModel, object>();
function listenerFields(l: ListenerModel): object {
  let fields = fieldsOf.get(l);
  if (fields === undefined) {
    fields = { ...l, virtualHosts: undefined };
    fieldsOf.set(l, fields);
  }
  return fields;
}

// What is in force is compared on every rebuild: its serialisation is kept (model parts and host configs are
// never changed in place).
const serialisations = new WeakMap<object, string>();

/** JSON.stringify of a value that is never changed in place, computed once. */
export function serialisedOnce(part: object): string {
  let text = serialisations.get(part);
  if (text === undefined) {
    text = JSON.stringify(part);
    serialisations.set(part, text);
  }
  return text;
}
