// The volume timeline: lines per time bucket for what the viewer holds,
// stacked by level, drawn to a <canvas> above the list.
//
// Cost. Every line the store takes or drops updates one per-second count
// (`add`, `remove`: a Map lookup), so arriving lines cost O(1) each. A draw
// folds the per-second counts into buckets: O(seconds held), never more
// than the lines held, whatever the rate; draws happen at most once per
// animation frame, and while lines stream in at most every 250 ms.
//
// Buckets are aligned to multiples of their width (1 s, 2 s, 5 s, … 1 d),
// the smallest width that fits the span held into the canvas at about 6 px
// a bucket. Levels stack like the list colours them: errors (emerg to err)
// at the bottom, then warnings, notices, info, debug, and lines without a
// level on top.
//
// Interaction: hovering (or moving a keyboard focus with ←/→) shows a
// bucket's counts; a click or Enter picks its first line (`onPick(ms)`);
// dragging across buckets asks for that time range (`onRange(fromMs, toMs)`).

const WIDTHS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800];
const BUCKET_PX = 6;
const LIVE_PERIOD_MS = 250;

/** The level groups, bottom to top, with the CSS colour each is drawn in. */
export const GROUPS = [
  { name: "error", colour: "--lvl-err", test: (p) => p !== null && p <= 3 },
  { name: "warning", colour: "--lvl-warn", test: (p) => p === 4 },
  { name: "notice", colour: "--lvl-notice", test: (p) => p === 5 },
  { name: "info", colour: "--tl-info", test: (p) => p === 6 },
  { name: "debug", colour: "--lvl-debug", test: (p) => p === 7 },
  { name: "none", colour: "--tl-none", test: () => true },
];

/** The group index of a priority (0–7, or undefined/null for none). */
export function groupOf(priority) {
  const p = priority === undefined || priority === null ? null : priority;
  if (p === null) return 5;
  if (p <= 3) return 0;
  return p - 3; // 4 → 1 (warning), 5 → 2, 6 → 3, 7 → 4
}

/** The bucket width (seconds) for a span of seconds over `slots` buckets. */
export function bucketWidth(spanSeconds, slots) {
  for (const width of WIDTHS) if (spanSeconds / width <= slots) return width;
  return WIDTHS[WIDTHS.length - 1];
}

function pad(n) {
  return String(n).padStart(2, "0");
}

function clock(ms, utc) {
  const d = new Date(ms);
  return utc
    ? `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`
    : `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export class Timeline {
  /**
   * @param {object} o
   * @param {HTMLCanvasElement} o.canvas
   * @param {HTMLElement} o.tip      where a bucket's counts are shown
   * @param {function} o.onPick      onPick(ms): the reader picked a bucket starting at ms
   * @param {function} o.onRange     onRange(fromMs, toMs): the reader dragged across a range
   */
  constructor({ canvas, tip, onPick, onRange }) {
    Object.assign(this, { canvas, tip, onPick, onRange });
    this.seconds = new Map(); // second → Int32Array(6) of counts by group
    this.total = 0;
    this.utc = false;
    this.layout = null; // the last draw: {width, start, count, buckets, x0, step}
    this.frame = 0;
    this.lastDraw = 0;
    this.timer = 0;
    this.hover = -1; // bucket under the pointer or the keyboard focus
    this.drag = null; // {from, to} bucket indexes while dragging
    this.hidden = false;

    canvas.addEventListener("pointermove", (event) => this.pointerMove(event));
    canvas.addEventListener("pointerleave", () => { if (!this.drag) this.setHover(-1); });
    canvas.addEventListener("pointerdown", (event) => this.pointerDown(event));
    canvas.addEventListener("pointerup", (event) => this.pointerUp(event));
    canvas.addEventListener("keydown", (event) => this.keyDown(event));
    canvas.addEventListener("blur", () => this.setHover(-1));
    new ResizeObserver(() => this.invalidate(true)).observe(canvas);
  }

  // ---- counting -------------------------------------------------------

  /** Counts a line the store took (`item.t`: its time in ms, set here once). */
  add(item) {
    if (item.kind !== "line") return;
    if (item.t === undefined) item.t = Date.parse(item.ts);
    if (!Number.isFinite(item.t)) return;
    const second = Math.floor(item.t / 1000);
    let counts = this.seconds.get(second);
    if (!counts) {
      counts = new Int32Array(GROUPS.length);
      this.seconds.set(second, counts);
    }
    counts[groupOf(item.priority)]++;
    this.total++;
    this.invalidate();
  }

  /** Uncounts a line the store dropped. */
  remove(item) {
    if (item.kind !== "line" || !Number.isFinite(item.t)) return;
    const second = Math.floor(item.t / 1000);
    const counts = this.seconds.get(second);
    if (!counts) return;
    counts[groupOf(item.priority)]--;
    this.total--;
    if (counts.every((c) => c === 0)) this.seconds.delete(second);
    this.invalidate();
  }

  /** Counts again from scratch (the store was cleared or resized). */
  reset(items) {
    this.seconds.clear();
    this.total = 0;
    for (const item of items) this.add(item);
    this.invalidate(true);
  }

  setUTC(utc) {
    this.utc = utc;
    this.invalidate(true);
  }

  // ---- buckets --------------------------------------------------------

  /** The buckets for a canvas `width` px wide: {width (s), start (s), buckets: [{start, counts, total}]}. */
  bucketize(widthPx) {
    if (this.seconds.size === 0) return { width: 1, start: 0, buckets: [] };
    let min = Infinity;
    let max = -Infinity;
    for (const second of this.seconds.keys()) {
      if (second < min) min = second;
      if (second > max) max = second;
    }
    const slots = Math.max(10, Math.floor(widthPx / BUCKET_PX));
    const width = bucketWidth(max - min + 1, slots);
    const start = Math.floor(min / width) * width;
    const count = Math.floor(max / width) - Math.floor(min / width) + 1;
    const buckets = [];
    for (let i = 0; i < count; i++) buckets.push({ start: start + i * width, counts: new Array(GROUPS.length).fill(0), total: 0 });
    for (const [second, counts] of this.seconds) {
      const bucket = buckets[Math.floor(second / width) - Math.floor(min / width)];
      for (let g = 0; g < counts.length; g++) bucket.counts[g] += counts[g];
    }
    for (const bucket of buckets) bucket.total = bucket.counts.reduce((a, b) => a + b, 0);
    return { width, start, buckets };
  }

  // ---- drawing --------------------------------------------------------

  /** Asks for a draw: in the next frame when `now`, else within LIVE_PERIOD_MS. */
  invalidate(now = false) {
    if (this.hidden || this.frame) return;
    const wait = now ? 0 : Math.max(0, this.lastDraw + LIVE_PERIOD_MS - performance.now());
    if (wait === 0) {
      clearTimeout(this.timer);
      this.timer = 0;
      this.frame = requestAnimationFrame(() => this.draw());
    } else if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = 0;
        this.invalidate(true);
      }, wait);
    }
  }

  setHidden(hidden) {
    this.hidden = hidden;
    if (!hidden) this.invalidate(true);
  }

  draw() {
    this.frame = 0;
    this.lastDraw = performance.now();
    const canvas = this.canvas;
    const cssWidth = canvas.clientWidth;
    const cssHeight = canvas.clientHeight;
    if (cssWidth === 0 || cssHeight === 0) return;
    const ratio = window.devicePixelRatio || 1;
    if (canvas.width !== Math.round(cssWidth * ratio) || canvas.height !== Math.round(cssHeight * ratio)) {
      canvas.width = Math.round(cssWidth * ratio);
      canvas.height = Math.round(cssHeight * ratio);
    }
    const context = canvas.getContext("2d");
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
    context.clearRect(0, 0, cssWidth, cssHeight);

    const { width, start, buckets } = this.bucketize(cssWidth);
    const step = buckets.length ? cssWidth / buckets.length : cssWidth;
    this.layout = { width, start, buckets, step };
    const style = getComputedStyle(canvas);
    const colours = GROUPS.map((g) => style.getPropertyValue(g.colour).trim() || "#888");
    const peak = Math.max(1, ...buckets.map((b) => b.total));
    const top = 2;
    const usable = cssHeight - top - 1;
    if (this.drag) {
      const [a, b] = [Math.min(this.drag.from, this.drag.to), Math.max(this.drag.from, this.drag.to)];
      context.fillStyle = style.getPropertyValue("--selected").trim() || "rgba(128,128,128,.2)";
      context.fillRect(a * step, 0, (b - a + 1) * step, cssHeight);
    }
    buckets.forEach((bucket, i) => {
      let y = cssHeight - 1;
      const x = i * step;
      const w = Math.max(1, step - (step > 3 ? 1 : 0));
      for (let g = 0; g < GROUPS.length; g++) {
        const n = bucket.counts[g];
        if (!n) continue;
        const h = Math.max(1, (n / peak) * usable);
        context.fillStyle = colours[g];
        context.fillRect(x, y - h, w, h);
        y -= h;
      }
    });
    if (this.hover >= 0 && this.hover < buckets.length) {
      context.strokeStyle = style.getPropertyValue("--accent").trim() || "#0969da";
      context.lineWidth = 1;
      context.strokeRect(this.hover * step + 0.5, 0.5, Math.max(1, step - 1), cssHeight - 1);
    }
    canvas.setAttribute("aria-label", this.summary());
    this.showTip();
  }

  /** The text alternative: the span held and where the errors are. */
  summary() {
    const layout = this.layout;
    if (!layout || layout.buckets.length === 0) return "Volume timeline: no lines yet";
    const { buckets, width } = layout;
    const first = buckets[0].start * 1000;
    const last = (buckets[buckets.length - 1].start + width) * 1000;
    const busiest = buckets.reduce((a, b) => (b.total > a.total ? b : a));
    const errors = buckets.reduce((sum, b) => sum + b.counts[0], 0);
    const worst = buckets.reduce((a, b) => (b.counts[0] > a.counts[0] ? b : a));
    let text = `Volume timeline: ${this.total} lines from ${clock(first, this.utc)} to ${clock(last, this.utc)}, `
      + `${buckets.length} buckets of ${width} s; busiest at ${clock(busiest.start * 1000, this.utc)} with ${busiest.total} lines`;
    text += errors ? `; ${errors} errors, most at ${clock(worst.start * 1000, this.utc)} (${worst.counts[0]})` : "; no errors";
    return text + ". Use the left and right arrow keys to read buckets, Enter to jump to one.";
  }

  /** What a bucket holds, in words. */
  describe(index) {
    const layout = this.layout;
    const bucket = layout && layout.buckets[index];
    if (!bucket) return "";
    const from = clock(bucket.start * 1000, this.utc);
    const to = clock((bucket.start + layout.width) * 1000, this.utc);
    const parts = GROUPS.map((g, i) => (bucket.counts[i] ? `${bucket.counts[i]} ${g.name}` : "")).filter(Boolean);
    return `${from}–${to}: ${bucket.total} line${bucket.total === 1 ? "" : "s"}` + (parts.length ? ` (${parts.join(", ")})` : "");
  }

  showTip() {
    const tip = this.tip;
    const layout = this.layout;
    if (this.drag && layout) {
      const [a, b] = [Math.min(this.drag.from, this.drag.to), Math.max(this.drag.from, this.drag.to)];
      tip.textContent = `${clock(layout.buckets[a].start * 1000, this.utc)}–${clock((layout.buckets[b].start + layout.width) * 1000, this.utc)}: release to show this range`;
    } else if (this.hover >= 0 && layout && this.hover < layout.buckets.length) {
      tip.textContent = this.describe(this.hover);
    } else {
      tip.hidden = true;
      return;
    }
    tip.hidden = false;
    const x = ((this.drag ? this.drag.to : this.hover) + 0.5) * layout.step;
    tip.style.left = Math.max(0, Math.min(this.canvas.clientWidth - tip.offsetWidth, x - tip.offsetWidth / 2)) + "px";
  }

  setHover(index) {
    if (this.hover === index) return;
    this.hover = index;
    this.invalidate(true);
  }

  indexAt(event) {
    const layout = this.layout;
    if (!layout || layout.buckets.length === 0) return -1;
    const x = event.clientX - this.canvas.getBoundingClientRect().left;
    return Math.max(0, Math.min(layout.buckets.length - 1, Math.floor(x / layout.step)));
  }

  pointerMove(event) {
    const index = this.indexAt(event);
    if (this.drag) {
      if (index !== this.drag.to) {
        this.drag.to = index;
        this.drag.moved = true;
        this.invalidate(true);
      }
      return;
    }
    this.setHover(index);
  }

  pointerDown(event) {
    const index = this.indexAt(event);
    if (index < 0 || event.button !== 0) return;
    this.canvas.setPointerCapture?.(event.pointerId);
    this.drag = { from: index, to: index, moved: false };
    this.invalidate(true);
  }

  pointerUp(event) {
    const drag = this.drag;
    this.drag = null;
    if (!drag) return;
    const layout = this.layout;
    const index = this.indexAt(event);
    if (index >= 0) drag.to = index;
    if (drag.moved && drag.to !== drag.from && layout) {
      const [a, b] = [Math.min(drag.from, drag.to), Math.max(drag.from, drag.to)];
      this.onRange(layout.buckets[a].start * 1000, (layout.buckets[b].start + layout.width) * 1000 - 1);
    } else if (layout && layout.buckets[drag.from]) {
      this.onPick(layout.buckets[drag.from].start * 1000);
    }
    this.invalidate(true);
  }

  keyDown(event) {
    const layout = this.layout;
    if (!layout || layout.buckets.length === 0) return;
    const last = layout.buckets.length - 1;
    let index = this.hover < 0 ? last : this.hover;
    switch (event.key) {
      case "ArrowLeft": index = Math.max(0, index - 1); break;
      case "ArrowRight": index = Math.min(last, index + 1); break;
      case "Home": index = 0; break;
      case "End": index = last; break;
      case "Enter":
        this.onPick(layout.buckets[index].start * 1000);
        event.preventDefault();
        event.stopPropagation();
        return;
      default: return;
    }
    event.preventDefault();
    event.stopPropagation();
    this.setHover(index);
  }

  /** For the test hook: the buckets last drawn, with their place on the page. */
  snapshot() {
    const layout = this.layout || this.bucketize(this.canvas.clientWidth);
    const box = this.canvas.getBoundingClientRect();
    const step = layout.step || 0;
    return {
      bucketSeconds: layout.width,
      total: this.total,
      buckets: layout.buckets.map((b, i) => ({
        start: b.start * 1000,
        end: (b.start + layout.width) * 1000,
        total: b.total,
        levels: Object.fromEntries(GROUPS.map((g, k) => [g.name, b.counts[k]])),
        x: box.left + (i + 0.5) * step,
        y: box.top + box.height / 2,
      })),
    };
  }
}
