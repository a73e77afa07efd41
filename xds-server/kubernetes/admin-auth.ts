// The admin API in Kubernetes mode: the cluster decides who may call it. A caller sends a Kubernetes bearer
// token (a ServiceAccount's, or any token the API server accepts); a TokenReview asks the API server who it
// is, and a SubjectAccessReview whether that user may do what the route does, as an RBAC verb on a resource of
// the scaletozero.dev group (admin/auth.ts lists them). So a ClusterRole / Role binding grants "may wake",
// "may mark scaled to zero", "may read", and a RoleBinding in an app's namespace grants it for the hosts
// of that namespace only. Answers are cached briefly (review-cache.ts).
import { createHash } from 'node:crypto';
import type { Clock } from '../clock.ts';
import type { Logger } from '../log.ts';
import { ADMIN_API_GROUP, bearerToken, unauthorized, type AdminAccess, type AdminAuth } from '../admin/auth.ts';
import { AdminError } from '../admin/errors.ts';
import type { KubeClient } from './rest.ts';
import { ReviewCache } from './review-cache.ts';

export const TOKEN_REVIEW_PATH = '/apis/authentication.k8s.io/v1/tokenreviews';
export const SUBJECT_ACCESS_REVIEW_PATH = '/apis/authorization.k8s.io/v1/subjectaccessreviews';
/** What the control plane's ServiceAccount needs for this (deploy/rbac.yaml; the deploy test checks it). */
export const ADMIN_AUTH_PERMISSIONS = ['authentication.k8s.io|tokenreviews|create', 'authorization.k8s.io|subjectaccessreviews|create'] as const;

export interface KubernetesAdminAuthTiming {
  /** How long an answer (who a token is; whether a user may do something) is reused. Default 10 s. */
  ttlMs: number;
  /** Most answers kept per cache (tokens, access decisions); the oldest go first. Default 1,000. */
  maxEntries: number;
  /** Most reviews waiting for the API server at once; more calls answer 429 at once. Default 64. */
  maxInFlight: number;
  /** Bound on one review call. Default 5 s. */
  reviewTimeoutMs: number;
}

export const DEFAULT_ADMIN_AUTH_TIMING: KubernetesAdminAuthTiming = { ttlMs: 10_000, maxEntries: 1_000, maxInFlight: 64, reviewTimeoutMs: 5_000 };

export interface KubernetesAdminAuthOptions {
  client: KubeClient;
  clock: Pick<Clock, 'now'>;
  log: Logger;
  /** TokenReview audiences; absent: the API server's own (what `kubectl create token` gives by default). */
  audiences?: string[];
  timing?: Partial<KubernetesAdminAuthTiming>;
}

export interface UserInfo {
  username: string;
  uid?: string;
  groups?: string[];
  extra?: Record<string, string[]>;
}

type Identity = { ok: true; user: UserInfo } | { ok: false; why: string };
interface Decision {
  allowed: boolean;
  reason?: string;
}

export class KubernetesAdminAuth implements AdminAuth {
  readonly kind = 'kubernetes';
  private readonly timing: KubernetesAdminAuthTiming;
  private readonly identities: ReviewCache<Identity>;
  private readonly decisions: ReviewCache<Decision>;
  private inFlight = 0;

  constructor(private readonly options: KubernetesAdminAuthOptions) {
    this.timing = { ...DEFAULT_ADMIN_AUTH_TIMING, ...options.timing };
    const cache = { ttlMs: this.timing.ttlMs, maxEntries: this.timing.maxEntries };
    this.identities = new ReviewCache(options.clock, cache);
    this.decisions = new ReviewCache(options.clock, cache);
  }

  async check(authorization: string, access: AdminAccess | undefined): Promise<void> {
    const token = bearerToken(authorization);
    if (token === '') throw unauthorized('send a Kubernetes bearer token as "Authorization: Bearer <token>" (e.g. from `kubectl create token <serviceaccount>`)');
    const key = createHash('sha256').update(token).digest('base64');
    const identity = await this.identities.get(key, () => this.review(() => this.tokenReview(token)));
    if (!identity.ok) throw unauthorized(`the Kubernetes API did not accept the token: ${identity.why}`);
    if (access === undefined) return;
    const { user } = identity;
    const question = JSON.stringify([user.username, user.uid ?? '', user.groups ?? [], user.extra ?? {}, access.verb, access.resource, access.namespace ?? '', access.name ?? '']);
    const decision = await this.decisions.get(question, () => this.review(() => this.accessReview(user, access)));
    if (!decision.allowed) {
      const what = `${access.verb} ${access.resource}.${ADMIN_API_GROUP}${access.name !== undefined ? ` "${access.name}"` : ''}${access.namespace !== undefined ? ` in namespace "${access.namespace}"` : ''}`;
      throw new AdminError(403, 'forbidden', `${user.username} may not ${what}: grant the verb "${access.verb}" on resource "${access.resource}" of API group "${ADMIN_API_GROUP}" with a (Cluster)Role${decision.reason ? ` (the API server says: ${decision.reason})` : ''}`, undefined, {}, {
        required: { group: ADMIN_API_GROUP, resource: access.resource, verb: access.verb, ...(access.namespace !== undefined ? { namespace: access.namespace } : {}), ...(access.name !== undefined ? { name: access.name } : {}) },
      });
    }
  }

  /** Bounds the reviews waiting for the API server; a failed call is a 503 (and is not cached). */
  private async review<V>(call: () => Promise<V>): Promise<V> {
    if (this.inFlight >= this.timing.maxInFlight) {
      throw new AdminError(429, 'rate_limited', 'too many admin calls are being checked with the Kubernetes API at once; retry later', undefined, { 'retry-after': '1' });
    }
    this.inFlight++;
    try {
      return await call();
    } catch (err) {
      this.options.log.error('admin API: the Kubernetes API could not review a call', { error: (err as Error).message });
      throw new AdminError(503, 'auth_unavailable', `the Kubernetes API could not check this call: ${(err as Error).message}`, undefined, { 'retry-after': '1' });
    } finally {
      this.inFlight--;
    }
  }

  private async tokenReview(token: string): Promise<Identity> {
    const answer = await this.options.client.request(
      'POST',
      TOKEN_REVIEW_PATH,
      { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, ...(this.options.audiences ? { audiences: this.options.audiences } : {}) } },
      'application/json',
      { timeoutMs: this.timing.reviewTimeoutMs },
    );
    const status = (answer.status ?? {}) as { authenticated?: boolean; user?: UserInfo; error?: string };
    if (status.authenticated !== true || !status.user?.username) return { ok: false, why: status.error || 'not authenticated' };
    const { username, uid, groups, extra } = status.user;
    return { ok: true, user: { username, ...(uid ? { uid } : {}), ...(groups ? { groups } : {}), ...(extra ? { extra } : {}) } };
  }

  private async accessReview(user: UserInfo, access: AdminAccess): Promise<Decision> {
    const answer = await this.options.client.request(
      'POST',
      SUBJECT_ACCESS_REVIEW_PATH,
      {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SubjectAccessReview',
        spec: {
          user: user.username,
          ...(user.uid ? { uid: user.uid } : {}),
          ...(user.groups ? { groups: user.groups } : {}),
          ...(user.extra ? { extra: user.extra } : {}),
          resourceAttributes: {
            group: ADMIN_API_GROUP,
            resource: access.resource,
            verb: access.verb,
            ...(access.namespace !== undefined ? { namespace: access.namespace } : {}),
            ...(access.name !== undefined ? { name: access.name } : {}),
          },
        },
      },
      'application/json',
      { timeoutMs: this.timing.reviewTimeoutMs },
    );
    const status = (answer.status ?? {}) as { allowed?: boolean; reason?: string; evaluationError?: string };
    const reason = status.reason || status.evaluationError;
    return { allowed: status.allowed === true, ...(reason ? { reason } : {}) };
  }
}
