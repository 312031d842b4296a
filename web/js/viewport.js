// The virtualised log list: only the rows in (and just around) the visible
// part of the scroll area exist in the DOM, drawn at most once per animation
// frame however many lines arrived since the last one.
//
// Layout. A tall empty "sizer" gives the scroll area the height of every row;
// the few real rows sit in a container moved to where they belong.
// - Wrapping off: every row is exactly one row-height tall, so positions are
//   arithmetic (index × height) and nothing is measured.
// - A multi-line record expanded (app.js sets `item.expanded`, and
//   `setExpanding(true)` once any is) is as tall as its lines: positions
//   become prefix sums too, with the drawn rows measured.
// - Wrapping on: rows have different heights. A row not yet drawn gets an
//   estimate from its length and the characters that fit in the message
//   column (the font is monospace); drawn rows are measured and the estimate
//   replaced. Positions are prefix sums, rebuilt when something changed
//   (linear in the rows kept: about a millisecond for 100,000).
//
// Keeping the reader's place. While following, the list stays scrolled to the
// bottom. Otherwise each frame notes which row is at the top of the view (by
// uid, which survives old rows falling off) and how far into it the view is,
// and puts that row back at the same place after the layout changed.
//
// Following stops when the reader scrolls up (wheel, keys, scrollbar) or
// selects a line (app.js), and resumes when they scroll back to the bottom or
// jump to the latest line. `atBottom` tells whether the last frame showed the
// end of the list, so the page offers a jump only when there is somewhere to go.

import { createRow, DROPPED_MARKER } from "./rows.js";

const OVERSCAN = 8; // rows drawn beyond each edge, so fast scrolling shows no blank

export class LogView {
  /**
   * @param {object} o
   * @param {HTMLElement} o.viewport the scrolling element
   * @param {HTMLElement} o.sizer    an empty block inside it, sized to the whole list
   * @param {HTMLElement} o.rows     the container of the drawn rows
   * @param {LineStore} o.store
   * @param {function} o.fill        fill(rowElement, item): draws an item into a row
   * @param {function} o.onFollowChange  called with the new `following` value
   * @param {function} o.onFrame     called after each drawn frame
   */
  constructor({ viewport, sizer, rows, store, fill, onFollowChange, onFrame }) {
    Object.assign(this, { viewport, sizer, rows, store, fill, onFollowChange, onFrame });
    this.wrap = false;
    this.expanding = false; // some rows may be expanded records
    this.following = true;
    this.atBottom = true; // the last frame showed the end of the list
    this.selectedUid = null;
    this.pool = []; // drawn row elements, top to bottom
    this.generation = 0; // bump to redraw every row (theme of content changed)
    this.frame = 0;
    this.lastSetTop = NaN;
    this.rowHeight = 20;
    this.charsPerLine = 80;
    this.widthKey = 0;
    this.snapshot = null; // the previous frame's layout, for keeping the place
    this.offsets = null; // wrap mode: prefix sums of row heights
    this.sizerHeight = -1;
    this.transform = "";

    viewport.addEventListener("scroll", () => this.onScroll(), { passive: true });
    viewport.addEventListener("wheel", (event) => {
      if (event.deltaY < 0 && this.canScroll()) this.setFollowing(false);
    }, { passive: true });
    viewport.addEventListener("keydown", (event) => {
      if (["ArrowUp", "PageUp", "Home"].includes(event.key) && this.canScroll()) this.setFollowing(false);
    });
    new ResizeObserver(() => {
      this.measure();
      this.invalidate();
    }).observe(viewport);
    this.measure();
  }

  // ---- public ---------------------------------------------------------

  /** Asks for a redraw in the next animation frame (cheap to call often). */
  invalidate() {
    if (!this.frame) this.frame = requestAnimationFrame(() => this.render());
  }

  /** Redraws every row (the format changed: time mode, highlight, …). */
  refresh() {
    this.generation++;
    this.invalidate();
  }

  setWrap(wrap) {
    if (this.wrap === wrap) return;
    this.wrap = wrap;
    this.viewport.classList.toggle("wrap", wrap);
    this.measure();
    this.refresh();
  }

  /** Whether rows may be expanded records (taller than one row). */
  setExpanding(expanding) {
    if (this.expanding === expanding) return;
    this.expanding = expanding;
    this.refresh();
  }

  /** Variable row heights: wrapping, or expanded records. */
  get variable() {
    return this.wrap || this.expanding;
  }

  /** Puts the item with `uid` at the top of the view and stops following. */
  scrollToUid(uid) {
    const index = this.indexOfUid(uid);
    if (index === -1) return;
    this.setFollowing(false);
    this.buildLayout();
    const view = this.viewport;
    view.scrollTop = Math.min(this.offsetOf(index), Math.max(0, this.total - view.clientHeight));
    this.lastSetTop = view.scrollTop;
    this.snapshot = null;
    this.invalidate();
  }

  scrollToLatest() {
    this.setFollowing(true);
    this.invalidate();
  }

  setFollowing(following) {
    if (this.following === following) return;
    this.following = following;
    this.onFollowChange(following);
  }

  /** Rows currently in the DOM. */
  get domRows() {
    return this.rows.childElementCount;
  }

  /** Measures the row height and the characters per wrapped line. */
  measure() {
    const probe = createRow();
    probe.className = "row line probe";
    probe.cells[3].textContent = "0";
    this.rows.append(probe);
    const height = probe.getBoundingClientRect().height;
    if (height > 0) this.rowHeight = height;
    const ruler = document.createElement("span");
    ruler.className = "ruler";
    ruler.textContent = "0".repeat(100);
    probe.cells[3].append(ruler);
    const charWidth = ruler.getBoundingClientRect().width / 100;
    const messageWidth = probe.cells[3].getBoundingClientRect().width;
    probe.remove();
    if (charWidth > 0) this.charsPerLine = Math.max(10, Math.floor(messageWidth / charWidth));
    this.widthKey = this.viewport.clientWidth;
  }

  // ---- layout ---------------------------------------------------------

  hasMarker() {
    return this.store.dropped > 0;
  }

  itemCount() {
    return this.store.size + (this.hasMarker() ? 1 : 0);
  }

  itemAt(i) {
    if (this.hasMarker()) return i === 0 ? DROPPED_MARKER : this.store.at(i - 1);
    return this.store.at(i);
  }

  /** The item index of `uid` in the current layout, or -1. */
  indexOfUid(uid) {
    const marker = this.hasMarker() ? 1 : 0;
    if (uid === DROPPED_MARKER.uid) return marker ? 0 : -1;
    const i = this.store.indexOfUid(uid);
    return i === -1 ? -1 : i + marker;
  }

  heightOf(item) {
    if (item.hw === this.widthKey && item.h > 0) return item.h;
    const expanded = item.kind === "line" && item.expanded && item.lines > 1;
    if (!this.wrap) return this.rowHeight * (expanded ? item.lines : 1);
    if (expanded) {
      let rows = 0;
      for (const line of (item.msg || "").split("\n")) rows += Math.max(1, Math.ceil(line.length / this.charsPerLine));
      return this.rowHeight * rows;
    }
    const length = item.kind === "line" ? (item.msg || "").length : (item.text || "").length;
    return this.rowHeight * Math.max(1, Math.ceil(length / this.charsPerLine));
  }

  buildLayout() {
    const n = this.itemCount();
    if (!this.variable) {
      this.offsets = null;
      this.total = n * this.rowHeight;
      return;
    }
    const offsets = new Float64Array(n + 1);
    for (let i = 0; i < n; i++) offsets[i + 1] = offsets[i] + this.heightOf(this.itemAt(i));
    this.offsets = offsets;
    this.total = offsets[n];
  }

  offsetOf(i) {
    return this.offsets ? this.offsets[Math.min(i, this.offsets.length - 1)] : i * this.rowHeight;
  }

  /** The index of the item covering vertical position `y` (clamped). */
  indexAt(y) {
    const n = this.itemCount();
    if (n === 0) return 0;
    if (!this.offsets) return Math.max(0, Math.min(n - 1, Math.floor(y / this.rowHeight)));
    return searchOffsets(this.offsets, y);
  }

  /** What the previous frame's layout needs for finding the row at the top. */
  takeSnapshot() {
    const marker = this.hasMarker() ? 1 : 0;
    this.snapshot = {
      count: this.itemCount(),
      marker,
      firstUid: this.store.firstUid,
      offsets: this.offsets,
      rowHeight: this.rowHeight,
    };
  }

  /** The row at the top of the view and how far into it, in the previous layout. */
  anchorAt(top) {
    const s = this.snapshot;
    if (!s || s.count === 0) return null;
    const i = s.offsets
      ? searchOffsets(s.offsets, top)
      : Math.max(0, Math.min(s.count - 1, Math.floor(top / s.rowHeight)));
    const offset = s.offsets ? s.offsets[i] : i * s.rowHeight;
    const uid = s.marker && i === 0 ? DROPPED_MARKER.uid : s.firstUid + i - s.marker;
    return { uid, delta: top - offset };
  }

  // ---- drawing --------------------------------------------------------

  canScroll() {
    return this.viewport.scrollHeight > this.viewport.clientHeight + 1;
  }

  onScroll() {
    const top = this.viewport.scrollTop;
    if (Math.abs(top - this.lastSetTop) > 1) {
      // The reader moved (not us): follow only if they are at the bottom.
      const bottom = this.viewport.scrollHeight - this.viewport.clientHeight;
      this.setFollowing(top >= bottom - Math.max(2, this.rowHeight / 2));
      this.lastSetTop = NaN;
    }
    this.invalidate();
  }

  render() {
    this.frame = 0;
    const viewport = this.viewport;
    if (viewport.clientWidth !== this.widthKey) this.measure();
    const clientHeight = viewport.clientHeight;

    const anchor = this.following ? null : this.anchorAt(viewport.scrollTop);
    this.buildLayout();
    const total = this.total;
    if (total !== this.sizerHeight) {
      this.sizer.style.height = total + "px";
      this.sizerHeight = total;
    }

    const maxTop = Math.max(0, total - clientHeight);
    let top;
    if (this.following) {
      top = maxTop;
    } else if (anchor) {
      const index = this.indexOfUid(anchor.uid);
      top = index === -1 ? 0 : this.offsetOf(index) + anchor.delta;
    } else {
      top = viewport.scrollTop;
    }
    top = Math.max(0, Math.min(maxTop, top));
    if (Math.abs(viewport.scrollTop - top) >= 1) {
      viewport.scrollTop = top;
      this.lastSetTop = viewport.scrollTop;
    }
    this.atBottom = top >= maxTop - 1;

    // Draw the visible rows, reusing row elements.
    const n = this.itemCount();
    let first = 0;
    let count = 0;
    if (n > 0) {
      first = Math.max(0, this.indexAt(top) - OVERSCAN);
      const last = Math.min(n - 1, this.indexAt(top + clientHeight) + OVERSCAN);
      count = last - first + 1;
    }
    const transform = `translateY(${this.offsetOf(first)}px)`;
    if (transform !== this.transform) {
      this.rows.style.transform = transform;
      this.transform = transform;
    }
    while (this.pool.length < count) {
      const row = createRow();
      this.pool.push(row);
      this.rows.append(row);
    }
    while (this.pool.length > count) this.pool.pop().remove();

    for (let k = 0; k < count; k++) {
      const row = this.pool[k];
      const item = this.itemAt(first + k);
      if (row.uid !== item.uid || row.generation !== this.generation || item === DROPPED_MARKER) {
        this.fill(row, item);
        row.uid = item.uid;
        row.generation = this.generation;
        row.selected = false;
      }
      const selected = item.uid === this.selectedUid;
      if (row.selected !== selected) {
        row.classList.toggle("selected", selected);
        if (selected) row.setAttribute("aria-current", "true");
        else row.removeAttribute("aria-current");
        row.selected = selected;
      }
    }

    // Variable heights: measure what was drawn; if estimates were off, lay out again.
    if (this.variable && count > 0) {
      let changed = false;
      for (let k = 0; k < count; k++) {
        const item = this.itemAt(first + k);
        if (item === DROPPED_MARKER) continue;
        const height = this.pool[k].offsetHeight;
        if (item.hw !== this.widthKey || item.h !== height) {
          if (this.heightOf(item) !== height) changed = true;
          item.h = height;
          item.hw = this.widthKey;
        }
      }
      this.takeSnapshot();
      if (changed) this.invalidate();
    } else {
      this.takeSnapshot();
    }
    this.firstDrawn = first;
    this.onFrame();
  }

  /** The uid of the item at the top of the view, or null when there is none. */
  firstVisibleUid() {
    if (this.itemCount() === 0) return null;
    this.buildLayout();
    const item = this.itemAt(this.indexAt(this.viewport.scrollTop + 1));
    return item ? item.uid : null;
  }

  /** The uid of the item drawn in a row element (for clicks), or null. */
  uidOfRow(row) {
    return row && typeof row.uid === "number" ? row.uid : null;
  }

  /** Scrolls just enough to show the item with `uid`. */
  reveal(uid) {
    const index = this.indexOfUid(uid);
    if (index === -1) return;
    this.buildLayout();
    const top = this.offsetOf(index);
    const bottom = this.offsetOf(index + 1);
    const view = this.viewport;
    if (top < view.scrollTop) view.scrollTop = top;
    else if (bottom > view.scrollTop + view.clientHeight) view.scrollTop = bottom - view.clientHeight;
    this.lastSetTop = view.scrollTop; // our move, not the reader's: following stays as it is
    this.invalidate();
  }
}

/** The largest i with offsets[i] <= y, within [0, offsets.length - 2]. */
function searchOffsets(offsets, y) {
  let lo = 0;
  let hi = offsets.length - 2;
  if (hi < 0) return 0;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (offsets[mid] <= y) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}
