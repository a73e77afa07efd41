// Registry of plugin contexts (one per plugin configuration: Envoy makes a new one in the running VM
// for every ECDS push). HTTP contexts need no entry: the only per-request state is a held request,
// which lives in buffer/held-requests.ts, so an unlisted host's request allocates nothing here.
import { FilterConfig } from "./config/filter-config";

export class PluginContext {
  config: FilterConfig | null = null;
  constructor(public id: u32) {}
}

const plugins = new Map<u32, PluginContext>();

export function createPluginContext(id: u32): PluginContext {
  if (plugins.has(id)) return plugins.get(id);
  const p = new PluginContext(id);
  plugins.set(id, p);
  return p;
}

export function isPluginContext(id: u32): bool {
  return plugins.has(id);
}

export function removePluginContext(id: u32): void {
  plugins.delete(id);
}

/** The live plugin context with the newest configuration (ties: the newest context), or null. */
export function newestConfiguredPlugin(): PluginContext | null {
  const all = plugins.values();
  let best: PluginContext | null = null;
  let bestGeneration: i64 = -1;
  for (let i = 0; i < all.length; i++) {
    const p = unchecked(all[i]);
    const c = p.config;
    if (c === null) continue;
    if (c.generation > bestGeneration || (c.generation == bestGeneration && best !== null && p.id > best.id)) {
      best = p;
      bestGeneration = c.generation;
    }
  }
  return best;
}
