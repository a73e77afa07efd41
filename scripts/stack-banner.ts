// What `npm start` prints once everything is up: where each piece listens and one command per host that
// works against the config actually running (its listener, its domains, each host's protocol and state),
// not a fixed demo line.
export interface BannerHost {
  name: string;
  domains: string[];
  protocol: 'http1' | 'http2' | 'grpc';
  /** As the admin API reports it now. */
  state: 'ready' | 'scaled_to_zero';
  scaler: string;
}

export interface BannerFacts {
  configPath: string;
  stateDir: string;
  /** The gateway listener as bound (the config's address, Envoy's actual port). */
  listener: { address: string; port: number };
  adminUrl: string;
  envoyAdminUrl: string;
  hosts: BannerHost[];
}

/** An address a local client can dial: a wildcard bind is reached on loopback; IPv6 in brackets. */
export function dialAddress(address: string): string {
  if (address === '0.0.0.0') return '127.0.0.1';
  if (address === '::') return '[::1]';
  return address.includes(':') ? `[${address}]` : address;
}

/** A request host a domain pattern matches: `*.example.com` → `www.example.com`, `app.*` → `app.local`. */
function concreteDomain(domain: string): string {
  return domain.replace(/^\*\./, 'www.').replace(/\.\*$/, '.local');
}

export function stackBanner(f: BannerFacts): string[] {
  const gateway = `${dialAddress(f.listener.address)}:${f.listener.port}`;
  const lines = [
    `gateway http://${gateway} (config ${f.configPath}); control plane admin ${f.adminUrl}; Envoy admin ${f.envoyAdminUrl}; state in ${f.stateDir}`,
    `status page (live: held requests, wakes, cold starts, Envoys): open ${f.adminUrl}/status   metrics: ${f.adminUrl}/metrics`,
  ];
  if (f.hosts.length === 0) {
    lines.push(`no hosts are configured: add some to ${f.configPath} and reload (curl -X POST ${f.adminUrl}/v1/config/reload)`);
    return lines;
  }
  lines.push('try:');
  for (const h of f.hosts) {
    const domain = concreteDomain(h.domains[0] ?? h.name);
    const command =
      h.protocol === 'grpc'
        ? `grpcurl -plaintext -authority ${domain} ${gateway} grpc.health.v1.Health/Check`
        : `curl ${h.protocol === 'http2' ? '--http2-prior-knowledge ' : ''}-H 'Host: ${domain}' http://${gateway}/`;
    const note =
      h.state === 'ready'
        ? 'ready'
        : h.scaler === 'manual'
          ? `scaled to zero, manual: held until curl -X POST ${f.adminUrl}/v1/hosts/${h.name}/wake`
          : 'scaled to zero: the first request wakes it';
    lines.push(`  ${command}   # ${h.name}: ${note}`);
  }
  return lines;
}
