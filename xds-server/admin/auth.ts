// Who may call the admin API. Two ways, one interface: a static bearer token (file mode: whoever has it may do
// everything), or the cluster's own authentication and RBAC (Kubernetes mode, kubernetes/admin-auth.ts: a
// Kubernetes bearer token checked with a TokenReview, each call authorised with a SubjectAccessReview).
import { timingSafeEqual } from 'node:crypto';
import { AdminError } from './errors.ts';

/** The API group and resources a Kubernetes RBAC rule names to allow admin calls (README, deploy/rbac.yaml). */
export const ADMIN_API_GROUP = 'scaletozero.dev';

/**
 * What an admin route does, as an RBAC (verb, resource) pair in ADMIN_API_GROUP:
 *  - hosts: list (GET /v1/hosts), get (GET /v1/hosts/{name}), update (POST .../scale-to-zero: mark it held and
 *    stop it), wake (POST .../wake);
 *  - status: get (the status document and its event stream, /metrics);
 *  - snapshots: get (the xDS config served: /v1/snapshot, /v1/nodes, /v1/nodes/{id}/snapshot);
 *  - config: update (POST /v1/config/reload; file mode only, Kubernetes mode answers 400 anyway).
 */
export type AdminResource = 'hosts' | 'status' | 'snapshots' | 'config';
export type AdminVerb = 'get' | 'list' | 'update' | 'wake';

export interface AdminPermission {
  verb: AdminVerb;
  resource: AdminResource;
}

/** The permission one call needs: a route's, narrowed to one object (a host) when the route names one. */
export interface AdminAccess extends AdminPermission {
  /** The object's name (a host). */
  name?: string;
  /** The namespace the object lives in (a host's Service), so a RoleBinding there can grant it. */
  namespace?: string;
}

export interface AdminAuth {
  /** For the OpenAPI document and the start-up log. */
  readonly kind: 'token' | 'kubernetes';
  /**
   * Resolves when the caller (its Authorization header, '' when absent) may make the call; otherwise throws an
   * AdminError: 401 (no or a bad credential), 403 (authenticated but not allowed `access`), 503 (the check
   * itself could not be made). `access` undefined: authenticate only (a path no route serves).
   */
  check(authorization: string, access: AdminAccess | undefined): Promise<void>;
}

export const unauthorized = (message: string): AdminError => new AdminError(401, 'unauthorized', message, undefined, { 'www-authenticate': 'Bearer' });

/** "Bearer <token>" → the token; '' for anything else. */
export function bearerToken(authorization: string): string {
  return /^Bearer +(\S+) *$/i.exec(authorization)?.[1] ?? '';
}

/** One shared secret: whoever sends it may do everything (file mode; or --admin-auth=token). */
export class StaticTokenAuth implements AdminAuth {
  readonly kind = 'token';
  private readonly expected: Buffer;

  constructor(token: string) {
    if (token === '') throw new Error('the admin token is empty');
    this.expected = Buffer.from(token);
  }

  async check(authorization: string): Promise<void> {
    const given = Buffer.from(/^Bearer (.+)$/.exec(authorization)?.[1] ?? '');
    if (given.length !== this.expected.length || !timingSafeEqual(given, this.expected)) {
      throw unauthorized('send the admin token as "Authorization: Bearer <token>"');
    }
  }
}
