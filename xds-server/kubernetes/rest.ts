// A small REST client for the Kubernetes API: @kubernetes/client-node loads the kubeconfig (or the
// in-cluster service account) and authenticates each request; we speak plain JSON to any path, so one
// client serves built-in kinds, Gateway API kinds, our CRD and any workload's /scale subresource alike.
import { HttpMethod, RequestContext, Watch, type KubeConfig } from '@kubernetes/client-node';
import { fetch } from 'undici';

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    generation?: number;
    creationTimestamp?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    deletionTimestamp?: string;
  };
  [field: string]: unknown;
}

export interface ObjectList {
  items: KubeObject[];
  resourceVersion: string;
}

/** An answer other than 2xx, with the API server's own message (its Status object). */
export class KubeApiError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
    readonly path: string,
  ) {
    super(`${path}: ${status} ${reason}: ${message}`);
  }
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

export interface WatchHandle {
  abort(): void;
}

/** Per-call options; a call that must fit into a deadline (leader election) says how long it may take. */
export interface CallOptions {
  /** Default 30 s. */
  timeoutMs?: number;
}

/** What the informers and writers need from the API: easy to fake in unit tests. */
export interface KubeClient {
  get(path: string, options?: CallOptions): Promise<KubeObject>;
  list(path: string): Promise<ObjectList>;
  watch(path: string, resourceVersion: string, onEvent: (type: WatchEventType, object: KubeObject) => void, onDone: (err: unknown) => void): Promise<WatchHandle>;
  request(method: 'POST' | 'PUT' | 'PATCH' | 'DELETE', path: string, body: unknown, contentType?: string, options?: CallOptions): Promise<KubeObject>;
}

/** How long the server keeps one watch open before it ends it (we then resume from the last version). */
const WATCH_TIMEOUT_SECONDS = 290;

export class RestKubeClient implements KubeClient {
  private readonly watcher: Watch;

  constructor(
    private readonly config: KubeConfig,
    private readonly userAgent = 'envoy-scale-to-zero',
  ) {
    this.watcher = new Watch(config);
    // client-node 2.0.1 ends a watch that carried nothing for 30 s; bookmarks and our own watchdog keep
    // quiet watches honest, so let them stay open as long as the server keeps them.
    (this.watcher as unknown as { requestTimeoutMs: number }).requestTimeoutMs = (WATCH_TIMEOUT_SECONDS + 30) * 1000;
  }

  get server(): string {
    const cluster = this.config.getCurrentCluster();
    if (!cluster) throw new Error('the kubeconfig has no current cluster');
    return cluster.server.replace(/\/+$/, '');
  }

  async get(path: string, options: CallOptions = {}): Promise<KubeObject> {
    return (await this.send('GET', path, undefined, undefined, options.timeoutMs)) as KubeObject;
  }

  async list(path: string): Promise<ObjectList> {
    const body = (await this.send('GET', path)) as { items?: KubeObject[]; metadata?: { resourceVersion?: string } };
    return { items: body.items ?? [], resourceVersion: body.metadata?.resourceVersion ?? '' };
  }

  async request(method: 'POST' | 'PUT' | 'PATCH' | 'DELETE', path: string, body: unknown, contentType = 'application/json', options: CallOptions = {}): Promise<KubeObject> {
    return (await this.send(method, path, body, contentType, options.timeoutMs)) as KubeObject;
  }

  async watch(path: string, resourceVersion: string, onEvent: (type: WatchEventType, object: KubeObject) => void, onDone: (err: unknown) => void): Promise<WatchHandle> {
    const controller = await this.watcher.watch(
      path,
      { resourceVersion, allowWatchBookmarks: true, timeoutSeconds: WATCH_TIMEOUT_SECONDS },
      (type: string, object: KubeObject) => onEvent(type as WatchEventType, object),
      onDone,
    );
    return { abort: () => controller.abort() };
  }

  private async send(method: string, path: string, body?: unknown, contentType?: string, timeoutMs = 30_000): Promise<unknown> {
    const url = this.server + path;
    const ctx = new RequestContext(url, method as HttpMethod);
    await this.config.applySecurityAuthentication(ctx);
    const headers: Record<string, string> = { ...ctx.getHeaders(), accept: 'application/json', 'user-agent': this.userAgent };
    if (body !== undefined) headers['content-type'] = contentType ?? 'application/json';
    const dispatcher = ctx.getDispatcher();
    const response = await fetch(url, {
      method,
      headers,
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      ...(dispatcher ? { dispatcher } : {}),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text === '' ? {} : JSON.parse(text);
    } catch {
      parsed = { message: text };
    }
    if (!response.ok) {
      const status = parsed as { reason?: string; message?: string };
      throw new KubeApiError(response.status, status.reason ?? response.statusText, status.message ?? text, `${method} ${path}`);
    }
    return parsed;
  }
}
