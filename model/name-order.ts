// Things in name order, the order resources are sent and hashed in: UTF-16 code-unit order (compareNames), the
// same on every machine. localeCompare, used before, follows the process's locale (LANG): under cs_CZ "ch-a"
// sorts after "h-b", so two replicas could send the same resources in different orders and the filter config
// different bytes; its collation data also kept ~2 MiB of ICU resident. Sorting is ~10,000 comparisons at
// 1,000 names: several ms in a process that has not compiled them yet, which was the largest share of a
// one-host change's first runs after start. Most builds list the same names in the same order as a recent one
// (every one-host change does; clusters and endpoints share names), so the latest few lists' permutations are
// kept and reused when every name matches, index by index.

/** Name order: by UTF-16 code units, as `<` compares strings (and as type versions hash them). */
export function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
export class NameOrder {
  private readonly recent: { names: readonly string[]; order: number[] }[] = [];

  constructor(private readonly capacity: number) {}

  sorted<T extends { readonly name: string }>(items: readonly T[]): T[] {
    return this.order(items.map((item) => item.name)).map((i) => items[i]!);
  }

  /** The names themselves in name order (the same order sorted() gives things of these names). */
  sortedNames(names: readonly string[]): string[] {
    return this.order(names).map((i) => names[i]!);
  }

  /** `names` is kept as given (to be matched by later lists): the caller does not change it afterwards. */
  private order(names: readonly string[]): number[] {
    for (const recent of this.recent) {
      if (recent.names.length === names.length && names.every((name, i) => name === recent.names[i])) return recent.order;
    }
    const order = names.map((_, i) => i).sort((a, b) => compareNames(names[a]!, names[b]!));
    this.recent.unshift({ names, order });
    if (this.recent.length > this.capacity) this.recent.pop();
    return order;
  }
}
