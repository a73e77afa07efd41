// The VM-global registry of held requests. Module globals are per VM (per Envoy worker) and shared
// by every plugin context in it, so a newer plugin context (a new ECDS push) releases requests held
// under any older one. HTTP context ids are unique within a VM (never reused), so an id is a key.
//
// Work that touches the host (resume, local reply) is queued here and executed by the shell a bounded
// number at a time: Envoy runs those as after-call actions, and a few hundred in one callback that
// each call back into the VM overflow V8's stack and fail the VM (vm.ts: MAX_ACTIONS_PER_CALLBACK).
import { FilterConfig } from "../config/filter-config";

export const enum HoldState {
  /** Waiting for its host: only a config change or the hold timeout moves it on. */
  Held = 0,
  /** Host no longer listed: queued to be continued. */
  Releasing = 1,
  /** Held too long: queued for the timeout reply. */
  TimingOut = 2,
  /** Its host's wake failed: queued for the wake-failed reply. */
  Failing = 3,
}

/** One host's share of this worker's held requests, plus the parameters of the newest config. */
export class HostHold {
  name: string;
  holdTimeoutMs: i64 = 0;
  maxHeld: i32 = 0;
  retryAfterSeconds: i32 = 0;
  /** Listed by the config applied now. */
  listed: bool = false;
  /** The applied config reports this host's last wake failed: its requests are answered at once. */
  failed: bool = false;
  failureReason: string = "";
  failureRetryAfterSeconds: i32 = 0;
  /** Released requests get the held-time response header (from the config that held them). */
  heldHeader: bool = false;
  /** Requests held now for this host on this worker, including those queued for release/timeout. */
  count: i32 = 0;
  /** Ids still in state Held, in hold order (Set iterates in insertion order). */
  waiting: Set<u32> = new Set<u32>();
  /** Earliest monotonic ms at which the shell should look at this host's wake lease again. */
  wakeCheckAtMs: i64 = 0;

  constructor(name: string) {
    this.name = name;
  }
}

export class HeldRequest {
  state: HoldState = HoldState.Held;
  /** Set when queued as Failing. */
  failureReason: string = "";
  failureRetryAfterSeconds: i32 = 0;
  constructor(
    public contextId: u32,
    public host: HostHold,
    public heldAtMs: i64,
    public isGrpc: bool,
  ) {}
}

export class HeldRegistry {
  private byId: Map<u32, HeldRequest> = new Map<u32, HeldRequest>();
  private byName: Map<string, HostHold> = new Map<string, HostHold>();
  /** Every host with state here (listed now, or still holding requests). */
  hosts: HostHold[] = [];
  /** HostHold of each host of the applied config, by its index in config.hosts. */
  listedHosts: HostHold[] = [];
  /** Requests held now on this worker, all hosts. */
  total: i32 = 0;
  /** No Held request can time out before this (monotonic ms); 0 forces a scan. */
  earliestDeadlineMs: i64 = 0;
  private queue: u32[] = [];
  private head: i32 = 0;

  isHeld(contextId: u32): bool {
    return this.byId.has(contextId);
  }

  listedHost(index: i32): HostHold | null {
    if (index < 0 || index >= this.listedHosts.length) return null;
    return unchecked(this.listedHosts[index]);
  }

  /**
   * Makes `config` the applied one: updates each listed host's parameters and queues every request
   * of a host it no longer lists, whichever config it was held under. Returns how many were queued.
   */
  applyConfig(config: FilterConfig): i32 {
    const listed = new Array<HostHold>(config.hosts.length);
    for (let i = 0; i < config.hosts.length; i++) {
      const h = unchecked(config.hosts[i]);
      let hold: HostHold;
      if (this.byName.has(h.name)) {
        hold = this.byName.get(h.name);
      } else {
        hold = new HostHold(h.name);
        this.byName.set(h.name, hold);
        this.hosts.push(hold);
      }
      hold.holdTimeoutMs = h.holdTimeoutMs;
      hold.maxHeld = h.maxHeld;
      hold.retryAfterSeconds = h.retryAfterSeconds;
      hold.failed = h.failed;
      hold.failureReason = h.failureReason;
      hold.failureRetryAfterSeconds = h.failureRetryAfterSeconds;
      hold.heldHeader = h.heldHeader;
      hold.listed = true;
      unchecked((listed[i] = hold));
    }
    let queued = 0;
    const kept = new Array<HostHold>(0);
    for (let i = 0; i < this.hosts.length; i++) {
      const hold = unchecked(this.hosts[i]);
      if (config.indexOfHost(hold.name) < 0) {
        hold.listed = false;
        hold.failed = false;
        queued += this.releaseHost(hold);
        if (hold.count == 0) {
          this.byName.delete(hold.name);
          continue;
        }
      } else if (hold.failed) {
        // Still listed, but its wake failed: answered now (paced like releases), not at holdTimeoutMs.
        queued += this.queueHost(hold, HoldState.Failing);
      }
      kept.push(hold);
    }
    this.hosts = kept;
    this.listedHosts = listed;
    // Timeouts may have changed: look again at the next check.
    this.earliestDeadlineMs = 0;
    return queued;
  }

  hold(contextId: u32, host: HostHold, nowMs: i64, isGrpc: bool): void {
    if (this.byId.has(contextId)) return;
    this.byId.set(contextId, new HeldRequest(contextId, host, nowMs, isGrpc));
    host.waiting.add(contextId);
    host.count++;
    this.total++;
    const deadline = nowMs + host.holdTimeoutMs;
    if (deadline < this.earliestDeadlineMs) this.earliestDeadlineMs = deadline;
  }

  /** Drops a request whose stream is gone (on_done / on_delete); null when it was not held. */
  forget(contextId: u32): HeldRequest | null {
    if (!this.byId.has(contextId)) return null;
    const req = this.byId.get(contextId);
    this.byId.delete(contextId);
    req.host.waiting.delete(contextId);
    req.host.count--;
    this.total--;
    return req;
  }

  /** Queues every waiting request of `host` for release; returns how many. */
  releaseHost(host: HostHold): i32 {
    return this.queueHost(host, HoldState.Releasing);
  }

  /** Queues every waiting request of `host` for the action `state` names; returns how many. */
  private queueHost(host: HostHold, state: HoldState): i32 {
    if (host.waiting.size == 0) return 0;
    const ids = host.waiting.values();
    host.waiting.clear();
    for (let i = 0; i < ids.length; i++) {
      const id = unchecked(ids[i]);
      if (!this.byId.has(id)) continue;
      const req = this.byId.get(id);
      req.state = state;
      if (state == HoldState.Failing) {
        // Answered with the reason of the config that failed it, even if a newer one lands first.
        req.failureReason = host.failureReason;
        req.failureRetryAfterSeconds = host.failureRetryAfterSeconds;
      }
      this.queue.push(id);
    }
    return ids.length;
  }

  /** Queues every request held longer than its host's holdTimeoutMs; returns how many. */
  queueTimeouts(nowMs: i64): i32 {
    let queued = 0;
    let earliest = i64.MAX_VALUE;
    for (let h = 0; h < this.hosts.length; h++) {
      const host = unchecked(this.hosts[h]);
      if (host.waiting.size == 0) continue;
      const ids = host.waiting.values();
      for (let i = 0; i < ids.length; i++) {
        const id = unchecked(ids[i]);
        if (!this.byId.has(id)) {
          host.waiting.delete(id);
          continue;
        }
        const req = this.byId.get(id);
        const deadline = req.heldAtMs + host.holdTimeoutMs;
        if (deadline > nowMs) {
          // Hold order is time order and the timeout is per host, so the rest are later still.
          if (deadline < earliest) earliest = deadline;
          break;
        }
        host.waiting.delete(id);
        req.state = HoldState.TimingOut;
        this.queue.push(id);
        queued++;
      }
    }
    this.earliestDeadlineMs = earliest;
    return queued;
  }

  pendingWork(): i32 {
    return this.queue.length - this.head;
  }

  /**
   * Takes the next queued request out of the registry (so a re-entrant on_done cannot count it twice)
   * and returns it with its state saying what to do; null when the queue is empty.
   */
  nextWork(): HeldRequest | null {
    while (this.head < this.queue.length) {
      const id = unchecked(this.queue[this.head]);
      this.head++;
      if (!this.byId.has(id)) continue;
      const req = this.byId.get(id);
      if (req.state == HoldState.Held) continue;
      this.byId.delete(id);
      req.host.count--;
      this.total--;
      return req;
    }
    this.queue.length = 0;
    this.head = 0;
    return null;
  }
}
