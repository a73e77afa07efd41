// A reload diffed against the config in force: hosts whose settings did not change keep their very objects,
// so everything built from them (model, xDS resources, their hashes and encodings) is reused, and a
// one-host change costs one host's work after the file is read.
import { serialisedOnce } from '../../model/intern.ts';
import type { GatewayConfig, HostConfig } from './config.ts';

export interface ReloadDiff {
  /** The next config, with the previous config's objects for unchanged hosts. */
  config: GatewayConfig;
  added: string[];
  changed: string[];
  removed: string[];
}

export function keepUnchangedHosts(previous: GatewayConfig, next: GatewayConfig): ReloadDiff {
  const before = new Map(previous.hosts.map((h) => [h.name, h]));
  const added: string[] = [];
  const changed: string[] = [];
  const hosts: HostConfig[] = next.hosts.map((host) => {
    const old = before.get(host.name);
    if (old === undefined) added.push(host.name);
    // The incremental reader hands back the very object of an entry whose text did not change.
    else if (old === host) return old;
    // Both were built by the same normalisation, so equal settings serialise alike (a reordered map in the
    // file may count as a change: that only rebuilds the host).
    else if (serialisedOnce(old) === JSON.stringify(host)) return old;
    else changed.push(host.name);
    return host;
  });
  const kept = new Set(next.hosts.map((h) => h.name));
  const removed = previous.hosts.filter((h) => !kept.has(h.name)).map((h) => h.name);
  return { config: { ...next, hosts }, added, changed, removed };
}
