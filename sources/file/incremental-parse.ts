// Reading the config file again on a reload, at the cost of what changed: the text is split into its host
// entries (host-entries.ts); an entry whose text is the same as in the last file read keeps its parsed,
// validated and defaulted host (the very object, so everything built from it is reused too), and only the
// other entries are parsed, one by one. The result is the one parseGatewayConfigText gives for the whole
// text (test/unit/file-incremental-parse.test.ts compares them over many generated edits).
//
// The whole file is read instead whenever the shortcut cannot be sure: the split is refused (see
// host-entries.ts), the frame around the entries (listener, defaults) changed, or anything is wrong (an entry
// that does not parse or validate, duplicate names or domains, too many hosts): errors then come from the
// whole-file reader, with its lines and paths.
import type { Result } from '../../snapshots/errors.ts';
import type { GatewayConfig, HostConfig, ListenerConfig } from './config.ts';
import { splitHostEntries, type HostEntries } from './host-entries.ts';
import { MAX_HOSTS, hostProblems, loadConfigText, normaliseHost, validateGatewayConfig, validateHostShape, type RawDefaults, type RawHost } from './parse.ts';

/** Counts of the work done, for tests and the benchmark's notes. */
export interface ParseWork {
  /** Whole-file reads. */
  full: number;
  /** Reads that reused the last one's entries. */
  incremental: number;
  /** Entries parsed on their own by incremental reads. */
  entriesParsed: number;
  /** Whole reads of a mostly new text, split into entries only afterwards (remember()). */
  splitLater: number;
}

/** Up to this many changed entries are always parsed one by one (more: when they are under a quarter of the file). */
export const MAX_ENTRIES_ONE_BY_ONE = 16;

interface Remembered {
  frame: string;
  listener: ListenerConfig;
  defaults: RawDefaults;
  hosts: Map<string, HostConfig>;
}

export class IncrementalConfigParser {
  private last: Remembered | undefined;
  /** The last split, whatever became of the read: the next split skips the entries it already read. */
  private lastSplit: HostEntries | undefined;
  /** A whole read whose split into entries is left for remember(). */
  private deferred: { text: string; value: GatewayConfig; defaults: RawDefaults } | undefined;
  /** The length of the last text read. */
  private lastLength: number | undefined;
  readonly work: ParseWork = { full: 0, incremental: 0, entriesParsed: 0, splitLater: 0 };

  parse(text: string): Result<GatewayConfig> {
    this.remember();
    // A text whose length moved by more than a quarter is mostly new (a first load of many hosts): the shortcut
    // would refuse it after splitting it, so it is read whole at once and split afterwards (remember()).
    const mostlyNew = this.lastLength !== undefined && Math.abs(text.length - this.lastLength) * 4 > Math.max(text.length, this.lastLength);
    this.lastLength = text.length;
    if (mostlyNew) return this.parseWhole(text, 'later');
    const split = splitHostEntries(text, this.lastSplit);
    this.lastSplit = split;
    if (split !== undefined && this.last !== undefined && split.frame === this.last.frame) {
      const value = this.fromEntries(this.last, split.entries, split.layout);
      if (value !== undefined) return { ok: true, value };
    }
    return this.parseWhole(text, split);
  }

  /**
   * Splits the last whole read into its entries and remembers them, if that was left for later: the owner calls
   * this once the config is pushed (a first load of 5,000 hosts waited ~15 ms more for its first byte to Envoy
   * otherwise), and the next parse() calls it first in any case.
   */
  remember(): void {
    const deferred = this.deferred;
    if (deferred === undefined) return;
    this.deferred = undefined;
    const split = splitHostEntries(deferred.text);
    this.lastSplit = split;
    this.rememberEntries(split, deferred.value, deferred.defaults);
  }

  /** Forget the last read (the next one reads the whole file). */
  reset(): void {
    this.last = undefined;
    this.lastSplit = undefined;
    this.deferred = undefined;
    this.lastLength = undefined;
  }

  private parseWhole(text: string, split: ReturnType<typeof splitHostEntries> | 'later'): Result<GatewayConfig> {
    this.work.full += 1;
    this.last = undefined;
    const data = loadConfigText(text);
    if (!data.ok) return data;
    const result = validateGatewayConfig(data.value);
    const defaults = (data.value as { defaults?: RawDefaults }).defaults ?? {};
    if (!result.ok) return result;
    if (split === 'later') {
      this.work.splitLater += 1;
      this.deferred = { text, value: result.value, defaults };
    }
    else this.rememberEntries(split, result.value, defaults);
    return result;
  }

  private rememberEntries(split: HostEntries | undefined, value: GatewayConfig, defaults: RawDefaults): void {
    // Entries are remembered only when the split found exactly the file's hosts: the split's boundaries
    // include every real one, so equal counts mean equal entries.
    if (split === undefined || split.entries.length !== value.hosts.length) return;
    const hosts = new Map<string, HostConfig>();
    split.entries.forEach((entry, i) => hosts.set(entry, value.hosts[i]!));
    this.last = { frame: split.frame, listener: value.listener, defaults, hosts };
  }

  /** The config from the entries, or undefined where only the whole-file reader can answer. */
  private fromEntries(last: Remembered, entries: string[], layout: 'flow' | 'block'): GatewayConfig | undefined {
    if (entries.length > MAX_HOSTS) return undefined;
    // Entries parsed one by one cost more each than in one whole-file read (~3x): beyond a few, read it whole.
    let unknown = 0;
    for (const entry of entries) if (!last.hosts.has(entry)) unknown += 1;
    if (unknown > MAX_ENTRIES_ONE_BY_ONE && unknown * 4 > entries.length) return undefined;
    const hosts: HostConfig[] = [];
    const next = new Map<string, HostConfig>();
    let parsed = 0;
    for (const entry of entries) {
      let host = last.hosts.get(entry) ?? next.get(entry);
      if (host === undefined) {
        parsed += 1;
        host = this.parseEntry(entry, layout, last.defaults, hosts.length);
        if (host === undefined) return undefined;
      }
      next.set(entry, host);
      hosts.push(host);
    }
    if (crossHostProblems(hosts)) return undefined;
    this.work.incremental += 1;
    this.work.entriesParsed += parsed;
    this.last = { ...last, hosts: next };
    return { listener: last.listener, hosts };
  }

  private parseEntry(entry: string, layout: 'flow' | 'block', defaults: RawDefaults, index: number): HostConfig | undefined {
    const data = loadConfigText(entry);
    if (!data.ok) return undefined;
    // A block entry (`- name: ...`) reads as a one-item list; a flow entry as the host itself.
    const raw: unknown = layout === 'block' ? (Array.isArray(data.value) && data.value.length === 1 ? data.value[0] : undefined) : data.value;
    if (raw === undefined || !validateHostShape(raw)) return undefined;
    if (hostProblems(raw as RawHost, index).length > 0) return undefined;
    return normaliseHost(raw as RawHost, defaults);
  }
}

/** Duplicate names or domains: the whole-file reader says which. */
function crossHostProblems(hosts: readonly HostConfig[]): boolean {
  const names = new Set<string>();
  const domains = new Set<string>();
  for (const h of hosts) {
    if (names.has(h.name)) return true;
    names.add(h.name);
    for (const d of h.domains) {
      if (domains.has(d)) return true;
      domains.add(d);
    }
  }
  return false;
}
