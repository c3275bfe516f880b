// The outbound queue's idle messages in the order they next need work: a binary min-heap on the
// wake time, so finding what is due costs O(log n) per message instead of a scan of the whole
// queue each time a delivery ends (with 10 000 messages queued, a scan per delivery is 10^8 steps
// for a flush). Rescheduling does not search the heap: it pushes again, and a stale node (its
// `seq` no longer the id's) is skipped when it comes to the top.

interface Node {
  at: number;
  id: string;
  seq: number;
}

/** Earlier wake first; among equal ones, the one scheduled first (the queue's order of arrival). */
function earlier(a: Node, b: Node): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

export class WakeOrder {
  private readonly heap: Node[] = [];
  private readonly current = new Map<string, number>();
  private seq = 0;

  /** Schedules `id` at `at` (ms), replacing any earlier schedule of it. */
  set(id: string, at: number): void {
    const seq = ++this.seq;
    this.current.set(id, seq);
    this.push({ at, id, seq });
  }

  /** Forgets `id` (it is being worked on, or is gone). */
  delete(id: string): void {
    this.current.delete(id);
  }

  /** The earliest scheduled id and its time, without removing it. */
  peek(): { id: string; at: number } | undefined {
    this.dropStale();
    const top = this.heap[0];
    return top ? { id: top.id, at: top.at } : undefined;
  }

  /** Removes and returns the earliest id if it is due at `now`. */
  popDue(now: number): string | undefined {
    this.dropStale();
    const top = this.heap[0];
    if (!top || top.at > now) return undefined;
    this.pop();
    this.current.delete(top.id);
    return top.id;
  }

  /** Scheduled ids (not counting stale nodes). */
  get size(): number {
    return this.current.size;
  }

  clear(): void {
    this.heap.length = 0;
    this.current.clear();
  }

  private dropStale(): void {
    while (this.heap.length > 0 && this.current.get(this.heap[0].id) !== this.heap[0].seq) this.pop();
    // Stale nodes deeper down are dropped as they surface; rebuild if they come to outnumber the live ones.
    if (this.heap.length > 64 && this.heap.length > 2 * this.current.size) {
      const live = this.heap.filter((n) => this.current.get(n.id) === n.seq);
      this.heap.length = 0;
      for (const n of live) this.push(n);
    }
  }

  private push(node: Node): void {
    const h = this.heap;
    h.push(node);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!earlier(node, h[parent])) break;
      h[i] = h[parent];
      i = parent;
    }
    h[i] = node;
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop();
    if (h.length === 0 || !last) return;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= h.length) break;
      const r = l + 1;
      const child = r < h.length && earlier(h[r], h[l]) ? r : l;
      if (!earlier(h[child], last)) break;
      h[i] = h[child];
      i = child;
    }
    h[i] = last;
  }
}
