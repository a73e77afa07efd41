// The admin REST API as a Koa app. createAdminApp never listens: tests drive app.callback() directly and
// the control plane binds it to loopback.
import { readFileSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import Router from '@koa/router';
import Koa from 'koa';
import type { Snapshot } from '../../snapshots/build.ts';
import type { FieldError } from '../../snapshots/errors.ts';
import { redactSecrets } from '../../snapshots/listeners.ts';
import { PUSH_ORDER, TYPE_URLS } from '../../snapshots/type-urls.ts';
import type { AdsSession } from '../ads/session.ts';
import { DEFAULT_GROUP, type SnapshotCache } from '../cache/snapshot-cache.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { HostChange, HostController, ScalingStatus } from '../scaling/backend-controller.ts';
import type { ScalableBackend } from '../scaling/provider.ts';
import { UnknownHostError, type BackendState, type BackendView } from '../state/backend-state.ts';
import type { AdminAccess, AdminAuth } from './auth.ts';
import { readJsonBody } from './body.ts';
import { AdminError, badRequest, notFound } from './errors.ts';
import { buildOpenApiDocument, ROUTES, type RouteId } from './openapi.ts';
import { TokenBucket } from './rate-limit.ts';
import { checkHeldReport, checkHostActionBody, checkHostName, checkReadyToken, compileOutputSchema, outputProblems } from './schemas.ts';
import type { HeldReports } from '../status/held-reports.ts';
import type { StatusFeed } from '../status/status-feed.ts';

/** The status page's files (plain HTML, CSS and JavaScript; no framework, nothing fetched from elsewhere). */
const PAGE_DIR = new URL('../status/page/', import.meta.url);
const pageFile = (name: string): string => readFileSync(new URL(name, PAGE_DIR), 'utf8');
/** A comment line on an idle event stream, so proxies and browsers keep it open. */
const EVENT_STREAM_KEEPALIVE_MS = 15_000;

export interface AdminDeps {
  store: BackendState;
  hosts: HostController;
  sessions: () => AdsSession[];
  cache: SnapshotCache;
  metrics: Metrics;
  /** The status page's live document. */
  status: StatusFeed;
  /** Requests held now, as the filter's wake calls report them. */
  held: HeldReports;
  /** Something the status page shows may have changed. */
  statusChanged: () => void;
  /** Re-reads the config file; field errors when it is invalid (the old config stays). */
  reloadConfig: () => Promise<{ ok: true } | { ok: false; errors: FieldError[] }>;
  log: Logger;
  /** A host process's readiness signal (file mode); absent: every signal is refused (403). */
  readySignal?: (host: string, token: string) => 'accepted' | 'no_start' | 'wrong_token';
  /**
   * When set, every route marked `auth` in ROUTES (and every path no route serves) is checked by it: a static
   * token (file mode) or the cluster's TokenReview + SubjectAccessReview (Kubernetes mode).
   */
  auth?: AdminAuth;
  /** The namespace a host belongs to (Kubernetes mode: its Service's), for namespaced RBAC checks. */
  hostNamespace?: (host: string) => string | undefined;
  /** Wake calls from the filter accepted per host per second (burst 2 × rate; all hosts together 40 × rate). */
  wakeRatePerSecond?: number;
  /**
   * An answer that does not match its documented schema is logged ('log', the default) or, for tests,
   * turned into a 500 ('fail') so the mismatch cannot go unnoticed.
   */
  responseCheck?: 'log' | 'fail';
}

type Handler = (ctx: Koa.ParameterizedContext & { params: Record<string, string> }) => unknown;

/**
 * Methods HTTP itself defines (RFC 9110, PATCH, QUERY): on a known path they get 405 with Allow. Extension
 * methods (WebDAV's PROPFIND, MKCOL, ...) get 501: this server does not implement them anywhere.
 */
const HTTP_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'CONNECT', 'QUERY']);

/** /v1/hosts/{name} → ^/v1/hosts/[^/]+$ (everything else literal). */
const pathPattern = (p: string): RegExp =>
  new RegExp(`^${p.split(/\{[^}]+\}/).map((part) => part.replace(/[.*+?^$()|[\]\\]/g, '\\$&')).join('[^/]+')}$`);
const ROUTE_PATTERNS = ROUTES.map((r) => ({ route: r, pattern: pathPattern(r.path) }));

/** The methods served on a path, in the Allow header's form (HEAD with GET, OPTIONS always); [] for an unknown path. */
export function allowedMethods(p: string): string[] {
  const methods = ROUTE_PATTERNS.filter((r) => r.pattern.test(p)).map((r) => r.route.method.toUpperCase());
  if (methods.length === 0) return [];
  if (methods.includes('GET')) methods.push('HEAD');
  return [...new Set([...methods, 'OPTIONS'])];
}

export function createAdminApp(deps: AdminDeps): Koa {
  const app = new Koa();
  // Errors Koa sees outside a handler (a stream body whose client went away): a closed status stream is normal.
  app.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'ERR_STREAM_PREMATURE_CLOSE' || err.code === 'ECONNRESET' || err.code === 'EPIPE') return;
    deps.log.error('admin response failed', { error: String(err.stack ?? err) });
  });
  const router = new Router();
  // Per host, so many hosts waking at once do not starve each other (each Envoy calls about once per second
  // per held host); and overall, so nobody floods the unauthenticated route or probes names quickly.
  const wakeRate = deps.wakeRatePerSecond ?? 5;
  const wakeBuckets = new Map<string, TokenBucket>();
  const allWakes = new TokenBucket(wakeRate * 40, wakeRate * 80);
  const openApi = buildOpenApiDocument({ auth: deps.auth !== undefined, kubernetes: deps.auth?.kind === 'kubernetes' });
  const page = { html: pageFile('index.html'), js: pageFile('app.js'), css: pageFile('style.css') };

  app.use(async (ctx, next) => {
    try {
      await next();
    } catch (err) {
      const e = err instanceof AdminError ? err : err instanceof UnknownHostError ? notFound(err.message) : null;
      if (e === null) deps.log.error('admin request failed', { method: ctx.method, path: ctx.path, error: String((err as Error)?.stack ?? err) });
      ctx.status = e?.status ?? 500;
      for (const [k, v] of Object.entries(e?.headers ?? {})) ctx.set(k, v);
      ctx.body = {
        error: e?.code ?? 'internal_error',
        message: e?.message ?? 'the control plane failed to handle this request; see its log',
        ...(e?.details ? { details: e.details } : {}),
        ...e?.extra,
      };
    }
  });

  const authorize = async (ctx: Koa.Context, access?: AdminAccess): Promise<void> => {
    if (deps.auth === undefined) return;
    await deps.auth.check(ctx.get('authorization'), access);
  };
  /** The permission a route needs, narrowed to the host it names (and that host's namespace, when known). */
  const accessFor = (route: (typeof ROUTES)[number], params: Record<string, string>): AdminAccess | undefined => {
    if (!route.permission) return undefined;
    if (route.permission.resource !== 'hosts' || params.name === undefined) return { ...route.permission };
    const namespace = deps.hostNamespace?.(params.name);
    return { ...route.permission, name: params.name, ...(namespace !== undefined ? { namespace } : {}) };
  };

  const json = (h: BackendView): HostJson => hostJson(h, deps.hosts.status(h.backend.name));
  /** After an await the backend may be gone (a config reload, a deleted Service): answer 404, not 500. */
  const current = (name: string): HostJson => {
    const h = deps.store.find(name);
    if (!h) throw notFound(new UnknownHostError(name).message);
    return json(h);
  };

  const handlers: Record<RouteId, Handler> = {
    health: () => ({ status: 'ok' }),
    openapi: () => openApi,
    metrics: (ctx) => {
      ctx.type = 'text/plain; version=0.0.4';
      return deps.metrics.render();
    },
    listHosts: () => ({ hosts: deps.store.scalable().map(json) }),
    getHost: (ctx) => json(findHost(deps.store, ctx.params.name!)),
    scaleToZero: async (ctx) => {
      const name = findHost(deps.store, ctx.params.name!).backend.name;
      const body = checkHostActionBody(await readJsonBody(ctx));
      let change;
      try {
        change = await deps.hosts.scaleToZero(name, body.reason ?? 'admin API');
      } catch (err) {
        if (err instanceof UnknownHostError || err instanceof AdminError) throw err;
        throw new AdminError(503, 'scale_down_failed', `host "${name}" could not be scaled to zero: ${(err as Error).message}`, undefined, { 'retry-after': '1' });
      }
      return { host: current(name), changed: change.changed, snapshot: snapshotSummary(deps), notApplied: notAppliedJson(change) };
    },
    wakeHost: async (ctx) => {
      const name = findHost(deps.store, ctx.params.name!).backend.name;
      const body = checkHostActionBody(await readJsonBody(ctx));
      const change = await deps.hosts.wake(name, body.reason ?? 'admin API', 'admin');
      if (change.error) throw new AdminError(503, 'wake_failed', `host "${name}" did not become ready: ${change.error}`, undefined, { 'retry-after': '1' });
      return { host: current(name), changed: change.changed, snapshot: snapshotSummary(deps), notApplied: notAppliedJson(change) };
    },
    // The filter's wake call. No token (Envoy does not carry one), so it is limited to known hosts and
    // rate limited: it cannot be used to wake arbitrary hosts or to probe quickly for names.
    filterWake: (ctx) => {
      const limited = (): AdminError => {
        deps.metrics.inc('stz_wake_calls_total', { result: 'rate_limited' });
        return new AdminError(429, 'rate_limited', 'too many wake calls; retry later', undefined, { 'retry-after': '1' });
      };
      if (!allWakes.take()) throw limited();
      const name = findHost(deps.store, ctx.params.name!).backend.name;
      const header = (h: string): string | undefined => {
        const v = ctx.req.headers[h];
        return Array.isArray(v) ? v.join(', ') : v;
      };
      const report = checkHeldReport(header('x-scale-to-zero-held'), header('x-scale-to-zero-envoy'));
      let bucket = wakeBuckets.get(name);
      if (!bucket) wakeBuckets.set(name, (bucket = new TokenBucket(wakeRate, wakeRate * 2)));
      if (!bucket.take()) throw limited();
      deps.metrics.inc('stz_wake_calls_total', { result: 'accepted' });
      if (report) {
        deps.held.record(name, report.envoy, report.count);
        deps.statusChanged();
      }
      // Answer at once: the filter only needs to know the call landed; readiness arrives over ECDS.
      void deps.hosts.wake(name, 'first request held by Envoy', 'filter').catch((err: Error) => deps.log.error('wake failed', { host: name, error: err.message }));
      return { host: name, accepted: true };
    },
    // A process says it serves. Its per-start token is the credential (no admin token: the process has none).
    readySignal: (ctx) => {
      const name = findHost(deps.store, ctx.params.name!).backend.name;
      const raw = ctx.req.headers['x-scale-to-zero-ready-token'];
      const token = checkReadyToken(Array.isArray(raw) ? raw.join(', ') : raw);
      const result = deps.readySignal?.(name, token) ?? 'no_start';
      if (result !== 'accepted') {
        throw new AdminError(403, 'invalid_ready_token', result === 'no_start'
          ? `no process of host "${name}" started by this control plane is running`
          : `this token is not the one host "${name}" was started with (a process of an earlier start?)`);
      }
      deps.log.info('readiness signalled by the host process', { host: name });
      return { host: name, accepted: true };
    },
    listNodes: () => ({ nodes: deps.sessions().map((s) => s.status()) }),
    nodeSnapshot: (ctx) => {
      const session = deps.sessions().find((s) => s.nodeId === ctx.params.id);
      if (!session) throw notFound(`no xDS client with node id "${ctx.params.id}" is connected`);
      const snapshot = deps.cache.getSnapshot(session.group);
      return { node: session.status(), snapshot: snapshot ? snapshotJson(snapshot) : null };
    },
    currentSnapshot: () => {
      const snapshot = deps.cache.getSnapshot(DEFAULT_GROUP);
      return { generation: deps.store.currentGeneration, snapshot: snapshot ? snapshotJson(snapshot) : null };
    },
    statusPage: (ctx) => {
      ctx.type = 'text/html; charset=utf-8';
      return page.html;
    },
    statusScript: (ctx) => {
      ctx.type = 'text/javascript; charset=utf-8';
      return page.js;
    },
    statusStyle: (ctx) => {
      ctx.type = 'text/css; charset=utf-8';
      return page.css;
    },
    status: () => deps.status.current(),
    statusEvents: (ctx) => {
      const route = ROUTES.find((r) => r.id === 'statusEvents')!;
      const stream = new PassThrough();
      ctx.req.socket.setTimeout(0);
      ctx.req.socket.setNoDelay(true);
      ctx.type = 'text/event-stream; charset=utf-8';
      ctx.set('cache-control', 'no-store');
      ctx.set('x-accel-buffering', 'no');
      const send = (json: string): void => {
        const problems = outputProblems(route.events!.schema, JSON.parse(json));
        if (problems.length > 0) {
          deps.log.error('status event does not match its documented schema', { problems });
          if (deps.responseCheck === 'fail') {
            stream.end(`event: error\ndata: ${JSON.stringify({ error: 'internal_error', message: problems.join('; ') })}\n\n`);
            return;
          }
        }
        stream.write(`event: ${route.events!.name}\ndata: ${json}\n\n`);
      };
      const unsubscribe = deps.status.subscribe(send);
      const keepalive = setInterval(() => stream.write(': keep-alive\n\n'), EVENT_STREAM_KEEPALIVE_MS);
      keepalive.unref();
      const stop = (): void => {
        clearInterval(keepalive);
        unsubscribe();
      };
      ctx.req.once('close', stop);
      stream.once('close', stop);
      return stream;
    },
    reloadConfig: async () => {
      const result = await deps.reloadConfig();
      if (!result.ok) throw badRequest('the config file is invalid; the previous config stays in force', result.errors);
      return { reloaded: true, snapshot: snapshotSummary(deps) };
    },
  };

  for (const route of ROUTES) {
    compileOutputSchema(route.ok.schema);
    const handler = handlers[route.id];
    router[route.method](route.path.replace(/\{([^}]+)\}/g, ':$1'), async (ctx) => {
      if (route.auth) await authorize(ctx, accessFor(route, ctx.params));
      const body = await handler(ctx);
      // An event stream checks each event as it is sent (above).
      const problems = route.events ? [] : outputProblems(route.ok.schema, body);
      if (problems.length > 0) {
        deps.log.error('admin answer does not match its documented schema', { route: route.id, problems });
        if (deps.responseCheck === 'fail') throw new Error(`the answer of ${route.id} does not match its schema: ${problems.join('; ')}`);
      }
      ctx.status = route.ok.status;
      ctx.body = body;
    });
  }

  app.use(router.routes());
  // Whatever no route took: a JSON error that says which, never Koa's plain-text default.
  app.use(async (ctx) => {
    const allowed = allowedMethods(ctx.path);
    const isPublic = ROUTE_PATTERNS.some((r) => !r.route.auth && r.pattern.test(ctx.path));
    if (!isPublic) await authorize(ctx);
    if (!HTTP_METHODS.has(ctx.method)) {
      throw new AdminError(501, 'not_implemented', `${ctx.method} is not a method this API knows; it serves ${allowed.length ? allowed.join(', ') : 'GET and POST'}`, undefined, allowed.length ? { allow: allowed.join(', ') } : {});
    }
    if (allowed.length === 0) throw notFound(`no route for ${ctx.method} ${ctx.path}; GET /openapi.json lists them`);
    if (ctx.method === 'OPTIONS') {
      ctx.set('allow', allowed.join(', '));
      ctx.status = 204;
      return;
    }
    throw new AdminError(405, 'method_not_allowed', `${ctx.method} is not allowed on ${ctx.path}; allowed: ${allowed.join(', ')}`, undefined, { allow: allowed.join(', ') });
  });
  return app;
}

function findHost(store: BackendState, rawName: string): BackendView {
  const name = checkHostName(rawName);
  const host = store.find(name);
  if (!host) throw notFound(new UnknownHostError(name).message);
  return host;
}

/** A host as the API shows it: HOST_SCHEMA in schemas.ts describes it (a test holds them together). */
export interface HostJson {
  name: string;
  domains: string[];
  protocol: ScalableBackend['protocol'];
  endpoints: { address: string; port: number }[];
  state: 'ready' | 'scaled_to_zero';
  changedAt: string;
  reason?: string;
  scaling: ScalingStatus | null;
  buffer: { holdTimeoutMs: number; maxHeld: number; retryAfterSeconds: number };
  scaler: string;
}

export function hostJson(h: BackendView, status: ScalingStatus | undefined): HostJson {
  const { backend } = h;
  const { buffer } = backend.scaleToZero;
  return {
    name: backend.name,
    domains: backend.scaleToZero.exclusiveDomains,
    protocol: backend.protocol,
    endpoints: backend.endpoints.map(({ address, port }) => ({ address, port })),
    // What the filter does now: hold (scaled_to_zero) or pass (ready).
    state: h.held ? 'scaled_to_zero' : 'ready',
    changedAt: h.changedAt,
    ...(h.reason ? { reason: h.reason } : {}),
    scaling: status ?? null,
    buffer: { holdTimeoutMs: buffer.holdTimeoutMs, maxHeld: buffer.maxHeld, retryAfterSeconds: buffer.retryAfterSeconds },
    scaler: backend.scaleToZero.workload.kind,
  };
}

function snapshotSummary(deps: AdminDeps): Record<string, unknown> {
  return { generation: deps.store.currentGeneration, versions: deps.cache.getSnapshot(DEFAULT_GROUP)?.versions ?? null };
}

function snapshotJson(snapshot: Snapshot): Record<string, unknown> {
  return {
    versions: snapshot.versions,
    // TLS private keys (Kubernetes HTTPS listeners) never leave through the admin API.
    resources: Object.fromEntries(PUSH_ORDER.map((kind) => [TYPE_URLS[kind], [...snapshot.resources[kind].values()].map((r) => redactSecrets(r))])),
  };
}

/** The Envoys (and other xDS clients) that did not apply a change, and why: rejected it, or not in time. */
function notAppliedJson(change: HostChange): Record<string, unknown>[] {
  return (change.notApplied ?? []).map((n) => ({ node: n.nodeId, stream: n.streamId, client: n.client, type: n.type, reason: n.reason, ...(n.message !== undefined ? { message: n.message } : {}) }));
}
