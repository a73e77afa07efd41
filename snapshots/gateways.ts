// Per-gateway snapshots: which part of the model one gateway's Envoys are sent. Pure. A listener names its
// gateway (Kubernetes); a listener that names none (file mode, one gateway) belongs to every gateway.
import type { GatewayModel } from '../model/gateway-model.ts';

/** The gateways the model's listeners belong to, sorted; empty in file mode. */
export function gatewaysOf(model: GatewayModel): string[] {
  return [...new Set(model.listeners.flatMap((l) => (l.gateway !== undefined ? [l.gateway] : [])))].sort();
}

/**
 * The model one gateway's Envoys see: its own listeners (and those that name no gateway) and only the backends
 * their routes forward to, so the clusters, endpoints and filter config of another gateway never reach them.
 * A model without any gateway (file mode) is returned as it is: every Envoy gets the one gateway.
 */
export function modelForGateway(model: GatewayModel, gateway: string): GatewayModel {
  if (model.listeners.every((l) => l.gateway === undefined)) return model;
  const listeners = model.listeners.filter((l) => l.gateway === undefined || l.gateway === gateway);
  const used = new Set<string>();
  for (const l of listeners) {
    for (const vh of l.virtualHosts) {
      for (const r of vh.routes) if (r.action.kind === 'forward') for (const b of r.action.backends) used.add(b.backend);
    }
  }
  return { listeners, backends: model.backends.filter((b) => used.has(b.name)) };
}
