// deploy/grafana/scale-to-zero.json queries only metrics that exist: every metric name in every query is
// exported by the running control plane (/metrics) or by the real Envoy (/stats/prometheus), both scraped
// here. The dashboard also covers each operator metric of issue 11.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { REPO_ROOT } from '../../envoy-bootstrap/envoy.ts';
import { http1Request } from '../support/http-client.ts';
import { startStack, type Stack } from '../support/stack.ts';

const DASHBOARD = path.join(REPO_ROOT, 'deploy', 'grafana', 'scale-to-zero.json');

const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'inf', 'nan']);

/** The metric names a PromQL expression selects (not functions, aggregations, labels or keywords). */
export function metricNames(expr: string): string[] {
  let e = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  e = e.replace(/\{[^}]*\}/g, '{}').replace(/\[[^\]]*\]/g, '[]');
  e = e.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names: string[] = [];
  for (const m of e.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const rest = e.slice(m.index + m[0].length).trimStart();
    if (rest.startsWith('(') || KEYWORDS.has(m[0].toLowerCase())) continue;
    names.push(m[0]);
  }
  return names;
}

/** Every series name a Prometheus text exposition offers: sample names, and each declared family with its histogram/summary suffixes. */
export function exportedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)/.exec(line);
    if (type) {
      const [, name, kind] = type as unknown as [string, string, string];
      names.add(name);
      if (kind === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(name + s);
      if (kind === 'summary') for (const s of ['_sum', '_count']) names.add(name + s);
      continue;
    }
    const sample = /^([A-Za-z_:][A-Za-z0-9_:]*)[{ ]/.exec(line);
    if (sample) names.add(sample[1]!);
  }
  return names;
}

interface Panel {
  title?: string;
  targets?: { expr?: string }[];
  panels?: Panel[];
}

async function dashboardQueries(): Promise<{ where: string; expr: string }[]> {
  const dashboard = JSON.parse(await readFile(DASHBOARD, 'utf8')) as { panels: Panel[]; templating: { list: { name: string; query?: unknown }[] } };
  const out: { where: string; expr: string }[] = [];
  const walk = (panels: Panel[]): void => {
    for (const p of panels) {
      for (const t of p.targets ?? []) if (t.expr) out.push({ where: `panel "${p.title}"`, expr: t.expr });
      walk(p.panels ?? []);
    }
  };
  walk(dashboard.panels);
  for (const v of dashboard.templating.list) {
    const q = typeof v.query === 'string' ? v.query : (v.query as { query?: string } | undefined)?.query;
    const metric = q ? /^label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*,/.exec(q)?.[1] : undefined;
    if (metric) out.push({ where: `variable $${v.name}`, expr: metric });
  }
  return out;
}

describe('Grafana dashboard (deploy/grafana/scale-to-zero.json) against what is exported', function () {
  this.timeout(60_000);
  let stack: Stack;
  let exported: Set<string>;

  before(async () => {
    stack = await startStack({ config: (u) => ({ hosts: [{ name: 'web', domains: ['web.test'], endpoints: [{ address: '127.0.0.1', port: u.httpPort }] }] }) });
    // One request through, so Envoy's per-cluster series of our hosts exist.
    expect((await http1Request({ port: stack.port, host: 'web.test' })).status).to.equal(200);
    const controlPlane = await (await stack.adminFetch('/metrics')).text();
    const envoy = await (await fetch(`${stack.envoy.adminUrl}/stats/prometheus`)).text();
    exported = new Set([...exportedNames(controlPlane), ...exportedNames(envoy)]);
  });
  after(async () => {
    await stack?.close();
  });

  it('finds metric names in PromQL and flags one nobody exports (the check can fail)', () => {
    expect(metricNames('histogram_quantile(0.95, sum by (host, le) (rate(stz_x_bucket{host=~"$host"}[$__rate_interval])))')).to.deep.equal(['stz_x_bucket']);
    expect(metricNames('sum(rate(a_total[5m])) / sum without (le) (b_count) > bool 0')).to.deep.equal(['a_total', 'b_count']);
    expect(exported.has('stz_wakes_total')).to.equal(true);
    expect(exported.has('stz_wakes')).to.equal(false);
    expect(exported.has('stz_not_a_metric_total')).to.equal(false);
  });

  it('queries only metrics the control plane or Envoy exports', async () => {
    const queries = await dashboardQueries();
    expect(queries.length).to.be.greaterThan(15);
    const missing: string[] = [];
    for (const q of queries) for (const name of metricNames(q.expr)) if (!exported.has(name)) missing.push(`${q.where}: ${name}`);
    expect(missing, 'metrics in the dashboard that nothing exports').to.deep.equal([]);
  });

  it("graphs every operator metric of the control plane, and Envoy's filter metrics", async () => {
    const used = new Set((await dashboardQueries()).flatMap((q) => metricNames(q.expr)).map((n) => n.replace(/_(bucket|sum|count)$/, '')));
    for (const family of [
      'stz_cold_start_duration_seconds',
      'stz_cold_start_phase_duration_seconds',
      'stz_wakes_total',
      'stz_wake_failures_total',
      'stz_requests_held',
      'stz_scale_downs_total',
      'stz_xds_push_ack_duration_seconds',
      'stz_xds_nacks_total',
      'stz_xds_connected_clients',
      'scale_to_zero_held',
      'scale_to_zero_hold_time_ms',
    ]) {
      expect(used.has(family), family).to.equal(true);
    }
  });
});
