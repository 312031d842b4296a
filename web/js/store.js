// Bounded storage for what the viewer shows and what it holds while paused.
//
// Both are rings of fixed capacity: pushing into a full ring drops its oldest
// entry and counts it, so memory stays flat however fast lines arrive.

/** A fixed-capacity FIFO ring. Pushing when full drops the oldest item. */
export class Ring {
  constructor(capacity) {
    this.capacity = Math.max(1, capacity | 0);
    this.buffer = new Array(this.capacity);
    this.head = 0;
    this.size = 0;
    this.dropped = 0; // items pushed out by newer ones since the last clear
  }

  /** Adds `item`; returns the item dropped to make room, or undefined. */
  push(item) {
    if (this.size < this.capacity) {
      this.buffer[(this.head + this.size) % this.capacity] = item;
      this.size++;
      return undefined;
    }
    const old = this.buffer[this.head];
    this.buffer[this.head] = item;
    this.head = (this.head + 1) % this.capacity;
    this.dropped++;
    return old;
  }

  /** The item `i` places from the oldest (0 is the oldest). */
  at(i) {
    return this.buffer[(this.head + i) % this.capacity];
  }

  clear() {
    this.buffer = new Array(this.capacity);
    this.head = 0;
    this.size = 0;
    this.dropped = 0;
  }

  toArray() {
    const out = new Array(this.size);
    for (let i = 0; i < this.size; i++) out[i] = this.at(i);
    return out;
  }

  /** Changes the capacity, keeping the newest items that fit. */
  resize(capacity) {
    const items = this.toArray();
    const keep = items.slice(Math.max(0, items.length - capacity));
    const dropped = this.dropped + items.length - keep.length;
    this.capacity = Math.max(1, capacity | 0);
    this.clear();
    for (const item of keep) this.push(item);
    this.dropped = dropped;
  }
}

/**
 * The rows the viewer shows, oldest first, at most `capacity` of them.
 *
 * Every row gets a `uid` one higher than the previous row's; rows only ever
 * leave from the oldest end, so the rows held always have consecutive uids
 * and a row's index is `uid - first uid`. The view uses that to keep the
 * reader's place while old rows fall off.
 */
export class LineStore {
  constructor(capacity) {
    this.ring = new Ring(capacity);
    this.nextUid = 1;
    this.highWater = 0; // the largest size ever held (never above capacity)
    this.version = 0; // bumps on every change, so the view knows to redraw
    this.lines = 0; // rows of kind "line" held (the rest are notes: rotations, gaps, …)
  }

  get size() { return this.ring.size; }
  get capacity() { return this.ring.capacity; }
  get dropped() { return this.ring.dropped; }

  /** Adds a row; returns the oldest row when it was dropped to make room. */
  push(entry) {
    entry.uid = this.nextUid++;
    const old = this.ring.push(entry);
    if (entry.kind === "line") this.lines++;
    if (old && old.kind === "line") this.lines--;
    if (this.ring.size > this.highWater) this.highWater = this.ring.size;
    this.version++;
    return old;
  }

  /** The index of the first row at or after time `ms` (rows are mostly in time order), or -1. */
  indexAtTime(ms) {
    const time = (item) => (item.t !== undefined ? item.t : Date.parse(item.ts));
    let lo = 0;
    let hi = this.ring.size;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const t = time(this.ring.at(mid));
      if (Number.isFinite(t) && t < ms) lo = mid + 1;
      else hi = mid;
    }
    // The first line at or after `ms` (skip notes, which are stamped when received).
    for (let i = lo; i < this.ring.size; i++) if (this.ring.at(i).kind === "line") return i;
    return -1;
  }

  at(i) { return this.ring.at(i); }

  get firstUid() {
    return this.ring.size ? this.ring.at(0).uid : this.nextUid;
  }

  /** The index of the row with `uid`, or -1 when it is no longer held. */
  indexOfUid(uid) {
    const i = uid - this.firstUid;
    return i >= 0 && i < this.ring.size ? i : -1;
  }

  clear() {
    this.ring.clear();
    this.lines = 0;
    this.version++;
  }

  resize(capacity) {
    this.ring.resize(capacity);
    this.lines = this.ring.toArray().filter((e) => e.kind === "line").length;
    this.version++;
  }

  toArray() { return this.ring.toArray(); }
}
