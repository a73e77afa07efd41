// Keeps a rebuilt model's unchanged parts as the very objects of the previous model. A source that rebuilds
// its whole model on every change (Kubernetes: each watch event translates every object again) passes the
// result through here, so the snapshot builders, which reuse their output for the same input object
// (snapshots/memo.ts), rebuild, re-hash and re-encode only the backends and virtual hosts that changed.
import type { BackendModel, GatewayModel, ListenerModel, VirtualHostModel } from './gateway-model.ts';

export function internModel(previous: GatewayModel | undefined, next: GatewayModel): GatewayModel {
  if (previous === undefined) return next;
  const backends = new Map(previous.backends.map((b) => [b.name, b]));
  const virtualHosts = new Map(previous.listeners.flatMap((l) => l.virtualHosts.map((vh) => [`${l.name}\u0000${vh.name}`, vh] as const)));
  return {
    listeners: next.listeners.map((l): ListenerModel => ({
      ...l,
      virtualHosts: l.virtualHosts.map((vh) => same(virtualHosts.get(`${l.name}\u0000${vh.name}`), vh)),
    })),
    backends: next.backends.map((b) => same(backends.get(b.name), b)),
  };
}

function same<T extends BackendModel | VirtualHostModel>(previous: T | undefined, next: T): T {
  return previous !== undefined && serialisedOnce(previous) === JSON.stringify(next) ? previous : next;
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
