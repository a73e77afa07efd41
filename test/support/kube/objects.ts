// Kubernetes objects the end-to-end tests apply again and again: a GatewayClass of ours and a Gateway, and
// "an app" (Deployment + Service + HTTPRoute `<name>.example`) with or without a ScaleToZeroPolicy.
import type { KubeObject } from '../../../xds-server/kubernetes/rest.ts';
import { CONTROLLER_NAME } from './gateway-stack.ts';

/** Namespace `namespace`, GatewayClass `stz` (our controller) and Gateway `gw` with one HTTP listener on `port`. */
export function gatewayObjects(namespace: string, port: number): KubeObject[] {
  return [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } },
    { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GatewayClass', metadata: { name: 'stz' }, spec: { controllerName: CONTROLLER_NAME } },
    {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'Gateway',
      metadata: { name: 'gw', namespace },
      spec: { gatewayClassName: 'stz', listeners: [{ name: 'http', protocol: 'HTTP', port }] },
    },
  ];
}

/** Deployment `name` (containerPort 8080), Service `name` (port 80) and HTTPRoute `name` for host `<name>.example` on Gateway `gw`. */
export function appObjects(namespace: string, name: string, replicas: number, podAnnotations: Record<string, string> = {}): KubeObject[] {
  return [
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name, namespace },
      spec: {
        replicas,
        selector: { matchLabels: { app: name } },
        template: { metadata: { labels: { app: name }, annotations: podAnnotations }, spec: { containers: [{ name: 'app', image: 'example.invalid/app:1', ports: [{ containerPort: 8080 }] }] } },
      },
    },
    { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace }, spec: { selector: { app: name }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] } },
    {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: { name, namespace },
      spec: { parentRefs: [{ name: 'gw' }], hostnames: [`${name}.example`], rules: [{ backendRefs: [{ name, port: 80 }] }] },
    },
  ];
}

/** A ScaleToZeroPolicy for Service and Deployment `name` (30 s hold, 25 s wake, no idle scale-down unless given). */
export function scaleToZeroPolicy(namespace: string, name: string, spec: Record<string, unknown> = {}): KubeObject {
  return {
    apiVersion: 'scaletozero.dev/v1alpha1',
    kind: 'ScaleToZeroPolicy',
    metadata: { name, namespace },
    spec: {
      targetRefs: [{ group: '', kind: 'Service', name }],
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name },
      holdTimeoutMs: 30_000,
      wakeTimeoutMs: 25_000,
      idleAfterMs: 0,
      ...spec,
    },
  };
}
