// One row of the log list: time, source, level and message columns.
//
// Log text only ever reaches the page through text nodes (textContent,
// createTextNode): a message is never parsed as HTML. ANSI colours become
// spans with classes (the 16 base colours, themed in style.css) or CSSOM
// colours (256-colour and true-colour), which the page's CSP allows.

import { needsParsing, parseAnsi, xtermRGB } from "./ansi.js";
import { basename, formatTime, levelClass, levelLabel, sourceColour } from "./format.js";

/** The placeholder row standing for lines that fell off the top. */
export const DROPPED_MARKER = Object.freeze({ kind: "dropped", uid: 0 });

function cell(className) {
  const span = document.createElement("span");
  span.className = className;
  return span;
}

/**
 * A row element with its cells (time, source, level, message, and the
 * field columns, shown only when some are chosen), to be filled and
 * refilled by `fillRow`.
 */
export function createRow() {
  const row = document.createElement("div");
  row.className = "row";
  const cells = [cell("c-time"), cell("c-src"), cell("c-lvl"), cell("c-msg"), cell("c-fields")];
  row.append(cells[0], cells[1], cells[2], cells[4], cells[3]);
  row.cells = cells;
  return row;
}

/** The field columns of a line: one span per chosen field, its value or empty. */
function fillFields(target, item, columns) {
  if (!columns || columns.length === 0) {
    if (target.firstChild) target.replaceChildren();
    return;
  }
  const fields = item.fields || {};
  const spans = [];
  for (const name of columns) {
    const span = document.createElement("span");
    span.className = "fv";
    const value = fields[name];
    if (value !== undefined) {
      span.textContent = value;
      span.dataset.field = name;
      span.title = `${name}=${value} — click to keep lines with this value, shift-click to drop them`;
    }
    spans.push(span);
  }
  target.replaceChildren(...spans);
}

function cssColour(colour) {
  const rgb = Array.isArray(colour) ? colour : xtermRGB(colour);
  return `rgb(${rgb[0]}, ${rgb[1]}, ${rgb[2]})`;
}

/** A span carrying one ANSI style (see ansi.js for the style object). */
function styledSpan(style) {
  const span = document.createElement("span");
  const classes = [];
  let fg = style.fg;
  let bg = style.bg;
  if (style.inverse) {
    [fg, bg] = [bg, fg];
    classes.push("ansi-inv");
  }
  if (typeof fg === "number" && fg < 16) classes.push("fg-" + fg);
  if (typeof bg === "number" && bg < 16) classes.push("bg-" + bg);
  if (style.bold) classes.push("ansi-b");
  if (style.dim) classes.push("ansi-d");
  if (style.italic) classes.push("ansi-i");
  if (style.underline) classes.push("ansi-u");
  if (style.strike) classes.push("ansi-s");
  span.className = classes.join(" ");
  // Extended colours through CSSOM (allowed by the CSP, unlike style attributes).
  if (fg !== null && (Array.isArray(fg) || fg >= 16)) span.style.color = cssColour(fg);
  if (bg !== null && (Array.isArray(bg) || bg >= 16)) span.style.backgroundColor = cssColour(bg);
  return span;
}

/**
 * Puts a message into `target`: ANSI styles as spans, highlight ranges as
 * <mark>, everything else as plain text nodes.
 */
export function renderMessage(target, msg, highlight) {
  const ansi = needsParsing(msg);
  if (!ansi && !highlight) {
    target.textContent = msg;
    return;
  }
  const { text, runs } = ansi ? parseAnsi(msg) : { text: msg, runs: [] };
  const marks = highlight ? highlight(text) : null;
  if (runs.length === 0 && !marks) {
    target.textContent = text;
    return;
  }

  // Cut the text at every run and mark boundary; each piece has one style and
  // is either marked or not.
  const cuts = new Set([0, text.length]);
  for (const r of runs) { cuts.add(r.start); cuts.add(r.end); }
  if (marks) for (const [a, b] of marks) { cuts.add(a); cuts.add(b); }
  const points = [...cuts].sort((a, b) => a - b);

  const fragment = document.createDocumentFragment();
  let run = 0;
  let mark = 0;
  for (let p = 0; p + 1 < points.length; p++) {
    const a = points[p];
    const b = points[p + 1];
    if (a === b) continue;
    while (run < runs.length && runs[run].end <= a) run++;
    while (marks && mark < marks.length && marks[mark][1] <= a) mark++;
    let node = document.createTextNode(text.slice(a, b));
    if (run < runs.length && runs[run].start <= a) {
      const span = styledSpan(runs[run].style);
      span.append(node);
      node = span;
    }
    if (marks && mark < marks.length && marks[mark][0] <= a) {
      const m = document.createElement("mark");
      m.append(node);
      node = m;
    }
    fragment.append(node);
  }
  target.replaceChildren(fragment);
}

/**
 * Puts a multi-line record into `target`, its lines as lines: a newline
 * between records' lines is not a control character to show.
 */
export function renderLines(target, msg, highlight) {
  const fragment = document.createDocumentFragment();
  msg.split("\n").forEach((line, index) => {
    if (index > 0) fragment.append("\n");
    const span = document.createElement("span");
    renderMessage(span, line, highlight);
    fragment.append(span);
  });
  target.replaceChildren(fragment);
}

/**
 * Fills `row` with `item`.
 * @param {object} context  {timeMode: "local"|"utc"|"off", highlight: fn|null, droppedText: string}
 */
export function fillRow(row, item, context) {
  const [time, source, level, message, fieldCells] = row.cells;
  fillFields(fieldCells, item.kind === "line" ? item : {}, context.columns);
  if (item.kind === "line") {
    // A multi-line record (a stack trace) is folded to its first line and
    // how many more it has, or expanded to all of them (item.expanded).
    const msg = item.msg || "";
    const newline = item.lines > 1 ? msg.indexOf("\n") : -1;
    const expanded = newline >= 0 && item.expanded === true;
    // A context line (around a match of a context filter) is dimmed.
    row.className = "row line " + levelClass(item.priority) + (item.context ? " context" : "") + (expanded ? " expanded" : "");
    time.textContent = context.timeMode === "off" ? "" : formatTime(item.ts, context.timeMode);
    source.textContent = item.source || "";
    source.className = "c-src src-" + sourceColour(item.source || "");
    level.textContent = levelLabel(item.priority);
    if (expanded) {
      renderLines(message, msg, context.highlight);
    } else {
      renderMessage(message, newline >= 0 ? msg.slice(0, newline) : msg, context.highlight);
    }
    if (newline >= 0) {
      const fold = document.createElement("span");
      fold.className = "more-lines";
      fold.title = expanded ? "Fold the record to its first line (X)" : "Show every line of the record (X)";
      fold.textContent = expanded ? "  ▴ fold" : ` +${item.lines - 1} lines`;
      message.append(fold);
    }
    return;
  }
  if (item.kind === "dropped") {
    row.className = "row note tone-dropped";
    time.textContent = "";
    source.textContent = "";
    source.className = "c-src";
    level.textContent = "";
    message.textContent = context.droppedText;
    return;
  }
  // Notes carry the time they were received for downloads, but the column
  // shows only server times, so it never looks out of order.
  row.className = "row note tone-" + item.tone;
  time.textContent = "";
  source.textContent = item.source || "";
  source.className = "c-src src-" + sourceColour(item.source || "");
  level.textContent = "";
  message.textContent = item.text;
}

// ---- notes: the rows that are not log lines ----------------------------

const EVENT_WORDS = {
  rotated: "rotated",
  truncated: "truncated",
  missing: "is missing",
  reopened: "reopened",
  created: "created",
};

/** A row for a `source` event: `— app.log rotated —`. */
export function sourceNote(obj, ts) {
  const name = obj.path ? basename(obj.path) : obj.source;
  const word = EVENT_WORDS[obj.event] || obj.event;
  return { kind: "note", tone: "event", ts, source: obj.source, text: `— ${name} ${word} —` };
}

/** A row for a `gap`: how many lines were skipped and why. */
export function gapNote(obj, ts, format) {
  let text;
  const missed = typeof obj.missed === "number" ? obj.missed : null;
  const lines = (n) => `${format(n)} line${n === 1 ? "" : "s"}`;
  if (obj.reason === "restart") {
    text = "— server restarted: lines written while it was down may be missing —";
  } else if (obj.reason === "slow-consumer") {
    text = `— ${missed === null ? "some lines" : lines(missed)} skipped: slow connection —`;
  } else if (obj.reason === "downtime") {
    const bytes = typeof obj.skipped_bytes === "number" ? `${format(obj.skipped_bytes)} bytes` : "some lines";
    text = `— ${bytes} of ${obj.source ?? "a source"} skipped: written while the server was down, more than it catches up on —`;
  } else if (obj.reason === "evicted") {
    text = `— ${missed === null ? "some lines" : lines(missed)} skipped: no longer in the server's history —`;
  } else {
    text = `— ${missed === null ? "some lines" : lines(missed)} skipped (${obj.reason}) —`;
  }
  return { kind: "note", tone: "gap", ts, text };
}

/** A row the viewer itself adds (lines dropped while paused, and the like). */
export function localNote(text, ts, tone = "local") {
  return { kind: "note", tone, ts, text };
}
