// Things in name order (localeCompare), the order resources are sent and hashed in. Sorting is ~10,000
// localeCompare calls at 1,000 names: several ms in a process that has not compiled them yet, which was the
// largest share of a one-host change's first runs after start. Most builds list the same names in the same
// order as a recent one (every one-host change does; clusters and endpoints share names), so the latest few
// lists' permutations are kept and reused when every name matches, index by index.
export class NameOrder {
  private readonly recent: { names: string[]; order: number[] }[] = [];

  constructor(private readonly capacity: number) {}

  sorted<T extends { readonly name: string }>(items: readonly T[]): T[] {
    return this.order(items).map((i) => items[i]!);
  }

  private order(items: readonly { readonly name: string }[]): number[] {
    for (const recent of this.recent) {
      if (recent.names.length === items.length && items.every((item, i) => item.name === recent.names[i])) return recent.order;
    }
    const order = items.map((_, i) => i).sort((a, b) => items[a]!.name.localeCompare(items[b]!.name));
    this.recent.unshift({ names: items.map((item) => item.name), order });
    if (this.recent.length > this.capacity) this.recent.pop();
    return order;
  }
}
