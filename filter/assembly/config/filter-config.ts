// The plugin configuration of docs/filter-contract.md, typed and compiled (domains and clusters into a
// HostTable).
import { HostTable } from "../buffer/host-table";

export class HostConfig {
  name: string = "";
  domains: string[] = [];
  /** Envoy upstream cluster names (contract: optional, [] when absent). */
  clusters: string[] = [];
  holdTimeoutMs: i64 = 0;
  maxHeld: i32 = 0;
  retryAfterSeconds: i32 = 0;
  /** The control plane reports the host's last wake failed: answer its requests at once. */
  failed: bool = false;
  failureReason: string = "";
  failureRetryAfterSeconds: i32 = 0;
  /** Released requests carry x-scale-to-zero-held-ms (contract: optional, false when absent). */
  heldHeader: bool = false;
}

export class WakeConfig {
  cluster: string = "";
  authority: string = "";
  pathPrefix: string = "";
  leaseMs: i64 = 0;
  timeoutMs: i64 = 0;
}

export class FilterConfig {
  generation: i64 = 0;
  hosts: HostConfig[] = [];
  wake: WakeConfig | null = null;
  table: HostTable = new HostTable();
  /** The JSON text it was parsed from (published to shared data for other VMs). */
  json: string = "";
  private byName: Map<string, i32> = new Map<string, i32>();

  /** False when the name is already present. */
  addHost(host: HostConfig): bool {
    if (this.byName.has(host.name)) return false;
    this.byName.set(host.name, this.hosts.length);
    this.hosts.push(host);
    return true;
  }

  indexOfHost(name: string): i32 {
    return this.byName.has(name) ? this.byName.get(name) : -1;
  }
}
