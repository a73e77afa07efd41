// The admin REST API as a Koa app. createAdminApp never listens: tests drive app.callback() directly and
// the control plane binds it to loopback.
import { timingSafeEqual } from 'node:crypto';
import Router from '@koa/router';
import Koa from 'koa';
import type { Snapshot } from '../../snapshots/build.ts';
import type { FieldError } from '../../snapshots/errors.ts';
import { redactSecrets } from '../../snapshots/listeners.ts';
import { PUSH_ORDER, TYPE_URLS } from '../../snapshots/type-urls.ts';
import type { StreamSession } from '../ads/stream-session.ts';
import { DEFAULT_GROUP, type SnapshotCache } from '../cache/snapshot-cache.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { HostChange, HostController, ScalingStatus } from '../scaling/backend-controller.ts';
import { UnknownHostError, type BackendState, type BackendView } from '../state/backend-state.ts';
import { readJsonBody } from './body.ts';
import { AdminError, badRequest, notFound } from './errors.ts';
import { buildOpenApiDocument } from './openapi.ts';
import { TokenBucket } from './rate-limit.ts';
import { checkHostActionBody, checkHostName } from './schemas.ts';

export interface AdminDeps {
  store: BackendState;
  hosts: HostController;
  sessions: () => StreamSession[];
  cache: SnapshotCache;
  metrics: Metrics;
  /** Re-reads the config file; field errors when it is invalid (the old config stays). */
  reloadConfig: () => Promise<{ ok: true } | { ok: false; errors: FieldError[] }>;
  log: Logger;
  /** When set, every route but /healthz, /openapi.json and the filter's wake route needs "Authorization: Bearer <token>". */
  token?: string;
  /** Wake calls from the filter accepted per host per second (burst 2 × rate; all hosts together 40 × rate). */
  wakeRatePerSecond?: number;
}

const PUBLIC_PATHS = new Set(['/healthz', '/openapi.json']);
const WAKE_PREFIX = '/v1/wake/';

export function createAdminApp(deps: AdminDeps): Koa {
  const app = new Koa();
  const router = new Router();
  // Per host, so many hosts waking at once do not starve each other (each Envoy calls about once per second
  // per held host); and overall, so nobody floods the unauthenticated route or probes names quickly.
  const wakeRate = deps.wakeRatePerSecond ?? 5;
  const wakeBuckets = new Map<string, TokenBucket>();
  const allWakes = new TokenBucket(wakeRate * 40, wakeRate * 80);

  app.use(async (ctx, next) => {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) throw notFound(`no route for ${ctx.method} ${ctx.path}`);
      if (ctx.status === 405) throw new AdminError(405, 'method_not_allowed', `${ctx.method} is not allowed on ${ctx.path}`);
    } catch (err) {
      const e = err instanceof AdminError ? err : null;
      if (e === null) deps.log.error('admin request failed', { method: ctx.method, path: ctx.path, error: String((err as Error)?.stack ?? err) });
      ctx.status = e?.status ?? 500;
      for (const [k, v] of Object.entries(e?.headers ?? {})) ctx.set(k, v);
      ctx.body = {
        error: e?.code ?? 'internal_error',
        message: e?.message ?? 'the control plane failed to handle this request; see its log',
        ...(e?.details ? { details: e.details } : {}),
      };
    }
  });

  app.use(async (ctx, next) => {
    if (deps.token === undefined || PUBLIC_PATHS.has(ctx.path) || ctx.path.startsWith(WAKE_PREFIX)) return next();
    const given = /^Bearer (.+)$/.exec(ctx.get('authorization'))?.[1] ?? '';
    const a = Buffer.from(given);
    const b = Buffer.from(deps.token);
    if (a.length !== b.length || !timingSafeEqual(a, b)) {
      throw new AdminError(401, 'unauthorized', 'send the admin token as "Authorization: Bearer <token>"', undefined, { 'www-authenticate': 'Bearer' });
    }
    return next();
  });

  router.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });
  router.get('/openapi.json', (ctx) => {
    ctx.body = buildOpenApiDocument();
  });
  router.get('/metrics', (ctx) => {
    ctx.type = 'text/plain; version=0.0.4';
    ctx.body = deps.metrics.render();
  });

  const json = (h: BackendView): Record<string, unknown> => hostJson(h, deps.hosts.status(h.backend.name));
  /** After an await the backend may be gone (a config reload, a deleted Service): answer 404, not 500. */
  const current = (name: string): Record<string, unknown> => {
    const h = deps.store.find(name);
    if (!h) throw notFound(new UnknownHostError(name).message);
    return json(h);
  };
  router.get('/v1/hosts', (ctx) => {
    ctx.body = { hosts: deps.store.scalable().map(json) };
  });
  router.get('/v1/hosts/:name', (ctx) => {
    ctx.body = json(findHost(deps.store, ctx.params.name!));
  });
  router.post('/v1/hosts/:name/scale-to-zero', async (ctx) => {
    const name = findHost(deps.store, ctx.params.name!).backend.name;
    const body = checkHostActionBody(await readJsonBody(ctx));
    const change = await deps.hosts.scaleToZero(name, body.reason ?? 'admin API');
    ctx.body = { host: current(name), changed: change.changed, snapshot: snapshotSummary(deps), notApplied: notAppliedJson(change) };
  });
  router.post('/v1/hosts/:name/wake', async (ctx) => {
    const name = findHost(deps.store, ctx.params.name!).backend.name;
    const body = checkHostActionBody(await readJsonBody(ctx));
    const change = await deps.hosts.wake(name, body.reason ?? 'admin API', 'admin');
    if (change.error) throw new AdminError(503, 'wake_failed', `host "${name}" did not become ready: ${change.error}`, undefined, { 'retry-after': '1' });
    ctx.body = { host: current(name), changed: change.changed, snapshot: snapshotSummary(deps), notApplied: notAppliedJson(change) };
  });
  // The filter's wake call. No token (Envoy does not carry one), so it is limited to known hosts and
  // rate limited: it cannot be used to wake arbitrary hosts or to probe quickly for names.
  router.post('/v1/wake/:name', async (ctx) => {
    const limited = (): AdminError => {
      deps.metrics.inc('stz_wake_calls_total', { result: 'rate_limited' });
      return new AdminError(429, 'rate_limited', 'too many wake calls; retry later', undefined, { 'retry-after': '1' });
    };
    if (!allWakes.take()) throw limited();
    const name = findHost(deps.store, ctx.params.name!).backend.name;
    let bucket = wakeBuckets.get(name);
    if (!bucket) wakeBuckets.set(name, (bucket = new TokenBucket(wakeRate, wakeRate * 2)));
    if (!bucket.take()) throw limited();
    deps.metrics.inc('stz_wake_calls_total', { result: 'accepted' });
    // Answer at once: the filter only needs to know the call landed; readiness arrives over ECDS.
    void deps.hosts.wake(name, 'first request held by Envoy', 'filter').catch((err: Error) => deps.log.error('wake failed', { host: name, error: err.message }));
    ctx.status = 202;
    ctx.body = { host: name, accepted: true };
  });

  router.get('/v1/nodes', (ctx) => {
    ctx.body = { nodes: deps.sessions().map((s) => s.status()) };
  });
  router.get('/v1/nodes/:id/snapshot', (ctx) => {
    const session = deps.sessions().find((s) => s.nodeId === ctx.params.id);
    if (!session) throw notFound(`no Envoy with node id "${ctx.params.id}" is connected`);
    const snapshot = deps.cache.getSnapshot(session.group);
    ctx.body = { node: session.status(), snapshot: snapshot ? snapshotJson(snapshot) : null };
  });
  router.get('/v1/snapshot', (ctx) => {
    const snapshot = deps.cache.getSnapshot(DEFAULT_GROUP);
    ctx.body = { generation: deps.store.currentGeneration, snapshot: snapshot ? snapshotJson(snapshot) : null };
  });
  router.post('/v1/config/reload', async (ctx) => {
    const result = await deps.reloadConfig();
    if (!result.ok) throw badRequest('the config file is invalid; the previous config stays in force', result.errors);
    ctx.body = { reloaded: true, snapshot: snapshotSummary(deps) };
  });

  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}

function findHost(store: BackendState, rawName: string): BackendView {
  const name = checkHostName(rawName);
  const host = store.find(name);
  if (!host) throw notFound(new UnknownHostError(name).message);
  return host;
}

export function hostJson(h: BackendView, status: ScalingStatus | undefined): Record<string, unknown> {
  const { backend } = h;
  return {
    name: backend.name,
    domains: backend.scaleToZero.exclusiveDomains,
    protocol: backend.protocol,
    endpoints: backend.endpoints,
    // What the filter does now: hold (scaled_to_zero) or pass (ready).
    state: h.held ? 'scaled_to_zero' : 'ready',
    changedAt: h.changedAt,
    ...(h.reason ? { reason: h.reason } : {}),
    scaling: status ?? null,
    buffer: backend.scaleToZero.buffer,
    scaler: backend.scaleToZero.workload.kind,
  };
}

/** The Envoys that rejected the change or had not applied it when the wait ended ([]: every one applied it). */
function notAppliedJson(change: HostChange): Record<string, unknown>[] {
  return (change.notApplied ?? []).map((n) => ({ node: n.nodeId, stream: n.streamId, client: n.client, type: n.type, reason: n.reason, ...(n.message !== undefined ? { message: n.message } : {}) }));
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
