// The admin API's Kubernetes check (TokenReview + SubjectAccessReview) against a fake API: what each answer
// becomes (401, 403 naming the permission, allowed), what is asked, and the bounds of its cache.
import { expect } from 'chai';
import { AdminError } from '../../../xds-server/admin/errors.ts';
import { KubernetesAdminAuth, SUBJECT_ACCESS_REVIEW_PATH, TOKEN_REVIEW_PATH } from '../../../xds-server/kubernetes/admin-auth.ts';
import type { KubeClient, KubeObject } from '../../../xds-server/kubernetes/rest.ts';
import { ReviewCache } from '../../../xds-server/kubernetes/review-cache.ts';
import { silentLogger } from '../../../xds-server/log.ts';
import { FakeClock } from '../../support/fake-clock.ts';

interface Asked {
  path: string;
  spec: Record<string, unknown>;
}

/** An API server that knows some tokens and some grants ("user|verb|resource|namespace"). */
class FakeApi implements KubeClient {
  asked: Asked[] = [];
  failing = false;
  /** Resolve requests only when released (to hold reviews in flight). */
  gate: Promise<void> | undefined;
  constructor(
    readonly tokens: Record<string, string>,
    readonly grants: Set<string>,
  ) {}
  get(): Promise<KubeObject> {
    throw new Error('not used');
  }
  list(): never {
    throw new Error('not used');
  }
  watch(): never {
    throw new Error('not used');
  }
  async request(method: string, path: string, body: unknown): Promise<KubeObject> {
    const spec = (body as { spec: Record<string, unknown> }).spec;
    this.asked.push({ path, spec });
    if (this.gate) await this.gate;
    if (this.failing) throw new Error('connect ECONNREFUSED');
    if (path === TOKEN_REVIEW_PATH) {
      const user = this.tokens[spec.token as string];
      return { metadata: { name: '' }, status: user ? { authenticated: true, user: { username: user, uid: `${user}-uid`, groups: ['system:authenticated'] } } : { authenticated: false, error: 'invalid bearer token' } };
    }
    if (path === SUBJECT_ACCESS_REVIEW_PATH) {
      const a = spec.resourceAttributes as { verb: string; resource: string; namespace?: string };
      const allowed = this.grants.has(`${spec.user}|${a.verb}|${a.resource}|${a.namespace ?? ''}`) || this.grants.has(`${spec.user}|${a.verb}|${a.resource}|*`);
      return { metadata: { name: '' }, status: { allowed, ...(allowed ? {} : { reason: 'no RBAC policy matched' }) } };
    }
    throw new Error(`unexpected ${method} ${path}`);
  }
}

async function refusal(p: Promise<void>): Promise<AdminError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof AdminError) return err;
    throw err;
  }
  throw new Error('expected a refusal');
}

describe('admin API in Kubernetes mode: TokenReview + SubjectAccessReview', () => {
  let api: FakeApi;
  let clock: FakeClock;
  let auth: KubernetesAdminAuth;
  const wakeDemo = { verb: 'wake', resource: 'hosts', name: 'demo-hello-80', namespace: 'demo' } as const;

  beforeEach(() => {
    api = new FakeApi({ 'tok-ops': 'system:serviceaccount:ops:waker', 'tok-none': 'system:serviceaccount:ops:nobody' }, new Set(['system:serviceaccount:ops:waker|wake|hosts|demo', 'system:serviceaccount:ops:waker|list|hosts|*']));
    clock = new FakeClock();
    auth = new KubernetesAdminAuth({ client: api, clock, log: silentLogger, timing: { ttlMs: 10_000, maxEntries: 3, maxInFlight: 4 } });
  });

  it('no Authorization header, or not a Bearer one: 401 without asking the API server', async () => {
    for (const header of ['', 'Basic dXNlcjpwdw==', 'Bearer ']) {
      const e = await refusal(auth.check(header, wakeDemo));
      expect(e.status, header).to.equal(401);
      expect(e.headers['www-authenticate']).to.equal('Bearer');
    }
    expect(api.asked).to.deep.equal([]);
  });

  it('a token the API server does not accept: 401 with its reason', async () => {
    const e = await refusal(auth.check('Bearer forged', wakeDemo));
    expect(e.status).to.equal(401);
    expect(e.message).to.include('invalid bearer token');
    expect(api.asked.map((a) => a.path)).to.deep.equal([TOKEN_REVIEW_PATH]);
    expect(api.asked[0]!.spec).to.deep.equal({ token: 'forged' });
  });

  it('an authenticated user without the verb: 403 whose body names the permission it needs', async () => {
    const e = await refusal(auth.check('Bearer tok-none', wakeDemo));
    expect(e.status).to.equal(403);
    expect(e.code).to.equal('forbidden');
    expect(e.extra).to.deep.equal({ required: { group: 'scaletozero.dev', resource: 'hosts', verb: 'wake', namespace: 'demo', name: 'demo-hello-80' } });
    expect(e.message).to.include('system:serviceaccount:ops:nobody may not wake hosts.scaletozero.dev "demo-hello-80" in namespace "demo"');
    const sar = api.asked.find((a) => a.path === SUBJECT_ACCESS_REVIEW_PATH)!;
    expect(sar.spec).to.deep.equal({
      user: 'system:serviceaccount:ops:nobody',
      uid: 'system:serviceaccount:ops:nobody-uid',
      groups: ['system:authenticated'],
      resourceAttributes: { group: 'scaletozero.dev', resource: 'hosts', verb: 'wake', namespace: 'demo', name: 'demo-hello-80' },
    });
  });

  it('with the verb: allowed; another namespace or another verb: 403', async () => {
    await auth.check('Bearer tok-ops', wakeDemo);
    await auth.check('Bearer tok-ops', { verb: 'list', resource: 'hosts' });
    expect((await refusal(auth.check('Bearer tok-ops', { ...wakeDemo, namespace: 'shop' }))).status).to.equal(403);
    expect((await refusal(auth.check('Bearer tok-ops', { ...wakeDemo, verb: 'update' }))).status).to.equal(403);
  });

  it('authenticate only (a path no route serves): a valid token passes without an access review', async () => {
    await auth.check('Bearer tok-none', undefined);
    expect(api.asked.map((a) => a.path)).to.deep.equal([TOKEN_REVIEW_PATH]);
  });

  it('answers are reused for the TTL, then asked again', async () => {
    await auth.check('Bearer tok-ops', wakeDemo);
    await auth.check('Bearer tok-ops', wakeDemo);
    await refusal(auth.check('Bearer forged', wakeDemo));
    await refusal(auth.check('Bearer forged', wakeDemo));
    expect(api.asked.length).to.equal(3);
    await clock.advance(10_001);
    await auth.check('Bearer tok-ops', wakeDemo);
    expect(api.asked.length).to.equal(5);
  });

  it('the API server unreachable: 503 with Retry-After, and the failure is not cached', async () => {
    api.failing = true;
    const e = await refusal(auth.check('Bearer tok-ops', wakeDemo));
    expect(e.status).to.equal(503);
    expect(e.code).to.equal('auth_unavailable');
    expect(e.headers['retry-after']).to.equal('1');
    api.failing = false;
    await auth.check('Bearer tok-ops', wakeDemo);
  });

  it('reviews in flight are bounded (429 beyond), and concurrent identical questions share one review', async () => {
    let release!: () => void;
    api.gate = new Promise((r) => (release = r));
    const same = [auth.check('Bearer tok-ops', undefined), auth.check('Bearer tok-ops', undefined)];
    const distinct = ['a', 'b', 'c'].map((t) => auth.check(`Bearer ${t}`, undefined).catch((e: AdminError) => e));
    const over = await refusal(auth.check('Bearer d', undefined));
    expect(over.status).to.equal(429);
    expect(api.asked.length).to.equal(4);
    release();
    await Promise.all(same);
    expect((await Promise.all(distinct)).map((e) => (e as AdminError).status)).to.deep.equal([401, 401, 401]);
  });
});

describe('ReviewCache', () => {
  it('holds at most maxEntries answers, dropping the oldest', async () => {
    const clock = new FakeClock();
    const cache = new ReviewCache<number>(clock, { ttlMs: 1_000, maxEntries: 2 });
    let calls = 0;
    const ask = (k: string): Promise<number> => cache.get(k, async () => ++calls);
    await ask('a');
    await ask('b');
    await ask('c');
    expect(cache.size).to.equal(2);
    expect(await ask('b')).to.equal(2);
    expect(await ask('a')).to.equal(4);
    expect(calls).to.equal(4);
  });
});
