// logcast viewer: wires the stream (js/connection.js), the bounded store
// (js/store.js), the virtualised list (js/viewport.js) and the page controls.
//
// Data path: WebSocket frame → NDJSON objects → LogStream (order, resume,
// duplicates) → here: into the store (or the waiting ring while paused) →
// the view draws once per animation frame. Nothing here grows without bound:
// the store and the waiting ring have fixed capacities.
//
// Test and debugging hook, `window.logcast` (used by Tests/e2e/test_viewer.py):
//   logcast.connections     WebSocket connections opened so far (a filter change
//                           must not add one; a reconnect does)
//   logcast.state()         {status, connections, epoch, lastSeq, following, atBottom,
//                           paused, waiting, waitingDropped, size (rows: lines and
//                           notes), lineCount, max, highWater, dropped, rate, received,
//                           filter, filterError, highlightNote (why the regex is not
//                           highlighted, or null), domRows, duplicates, wrap, timeMode,
//                           cspViolations, selectedUid, tokenPrompts (times the token
//                           dialog was opened)}
//   logcast.lines()         lines in the view model, oldest first: [{seq, source, msg, priority}]
//   logcast.entries()       every row of the model as {kind, text} (lines and notes)
//   logcast.text()          what "Download" saves
//   logcast.timeline()      the volume timeline as last drawn: {bucketSeconds, total,
//                           buckets: [{start, end (ms), total, levels: {error, warning,
//                           notice, info, debug, none}, x, y (its middle on the page)}]}
//   logcast.fieldStats()    field names seen (with fields on) and how many lines had each
//   logcast.folds()         multi-line records held: [{seq, lines, expanded}]
// They are read-only views; changing what they return changes nothing.

import { authFetch, authProblem, TokenPrompt } from "./js/auth.js";
import { stripAnsi } from "./js/ansi.js";
import { LogStream } from "./js/connection.js";
import {
  DEFAULT_BACKLOG, DEFAULT_MAX_LINES, MAX_MAX_LINES, MIN_MAX_LINES,
  emptyFilter, filterKey, highlightNote, isEmptyFilter, makeHighlighter, readView, splitTerms, viewQuery,
} from "./js/filter.js";
import { formatCount, formatTime, levelClass, levelLabel, nowStamp, sourceColour } from "./js/format.js";
import { fillRow, gapNote, localNote, renderLines, renderMessage, sourceNote } from "./js/rows.js";
import { LineStore, Ring } from "./js/store.js";
import { Timeline } from "./js/timeline.js";
import { LogView } from "./js/viewport.js";

const $ = (id) => document.getElementById(id);

const cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
});

// ---- settings: URL (shareable) and local preferences (personal) ---------

const initial = readView(location.search);
let filter = initial.filter;
const urlBacklog = initial.backlog; // kept in the URL only when given
let maxLines = clampMax(initial.max ?? DEFAULT_MAX_LINES);
let backlog = Math.min(urlBacklog ?? DEFAULT_BACKLOG, maxLines);

function clampMax(n) {
  return Math.max(MIN_MAX_LINES, Math.min(MAX_MAX_LINES, n | 0));
}

const PREFS_KEY = "logcast.prefs";
const prefs = (() => {
  const defaults = { wrap: false, timeMode: "local", timeline: true };
  try {
    return { ...defaults, ...JSON.parse(localStorage.getItem(PREFS_KEY) || "{}") };
  } catch {
    return defaults;
  }
})();

function savePrefs() {
  try {
    localStorage.setItem(PREFS_KEY, JSON.stringify(prefs));
  } catch {
    // storage disabled: preferences last for this page only
  }
}

// Field columns: from the URL (`columns=status,user`), so a link reproduces the view.
let columns = initial.columns;
let fieldsOn = columns.length > 0; // the stream asks for every line's fields (fields=*)
const fieldStats = new Map(); // field name → lines seen with it (since the view was cleared)
const MAX_FIELD_NAMES = 500;
let autoExpand = false; // "Expand all": records arriving later are expanded too

function updateURL() {
  const query = viewQuery(filter, urlBacklog, maxLines, columns);
  history.replaceState(null, "", location.pathname + query);
}

// ---- model ---------------------------------------------------------------

const store = new LineStore(maxLines);
const waiting = new Ring(maxLines); // what arrives while paused
let paused = false;
let received = 0; // lines received, for the rate
let newWhileAway = 0; // lines added while not following
let highlight = makeHighlighter(filter);
let filterError = null;
let selectedItem = null;
let sources = []; // [{name, kind, state}]

const renderContext = {
  timeMode: prefs.timeMode,
  highlight,
  droppedText: "",
  columns,
};

const viewportEl = $("viewport");
const logView = new LogView({
  viewport: viewportEl,
  sizer: $("sizer"),
  rows: $("rows"),
  store,
  fill(row, item) {
    renderContext.highlight = highlight;
    if (item.kind === "dropped") {
      renderContext.droppedText =
        `— ${formatCount(store.dropped)} older line${store.dropped === 1 ? "" : "s"} dropped ` +
        `(keeping the newest ${formatCount(store.capacity)}) —`;
    }
    fillRow(row, item, renderContext);
  },
  onFollowChange(following) {
    if (following) newWhileAway = 0;
    updateChrome();
  },
  onFrame() {
    updateChrome();
  },
});

const timeline = new Timeline({
  canvas: $("timeline"),
  tip: $("timeline-tip"),
  onPick(ms) {
    const index = store.indexAtTime(ms);
    if (index === -1) return;
    logView.scrollToUid(store.at(index).uid);
    updateChrome();
  },
  onRange(fromMs, toMs) {
    const next = readForm();
    next.since = new Date(fromMs).toISOString();
    next.until = new Date(toMs).toISOString();
    inputs.since.value = next.since;
    inputs.until.value = next.until;
    applyFilter(next);
  },
});

/** Puts an entry into the store, keeping the timeline's counts with it. */
function keep(entry) {
  if (autoExpand && entry.lines > 1) entry.expanded = true;
  const old = store.push(entry);
  timeline.add(entry);
  if (old) timeline.remove(old);
}

function add(entry) {
  if (paused) {
    waiting.push(entry);
    return;
  }
  keep(entry);
  if (!logView.following && entry.kind === "line") newWhileAway++;
  logView.invalidate();
}

function countFields(obj) {
  if (!obj.fields) return;
  for (const name of Object.keys(obj.fields)) {
    if (fieldStats.has(name)) fieldStats.set(name, fieldStats.get(name) + 1);
    else if (fieldStats.size < MAX_FIELD_NAMES) fieldStats.set(name, 1);
  }
  fieldPickerStale = true;
}
let fieldPickerStale = false;

// ---- the stream ----------------------------------------------------------

const tokenPrompt = new TokenPrompt($("token-dialog"));

const stream = new LogStream({
  filter,
  backlog,
  handlers: {
    onHello(hello) {
      mergeSources((hello.sources || []).map((name) => ({ name })));
      $("conn-info").title = `${hello.server || "logcast"} · host ${hello.host || "?"} · epoch ${hello.epoch}`;
    },
    onObject(obj) {
      if (obj.type === "line") {
        received++;
        obj.kind = "line";
        countFields(obj);
        add(obj);
      } else if (obj.type === "separator") {
        add(localNote("--", nowStamp(), "separator"));
      } else if (obj.type === "source") {
        add(sourceNote(obj, nowStamp()));
      } else if (obj.type === "gap") {
        add(gapNote(obj, nowStamp(), formatCount));
      } else if (obj.type === "incomplete") {
        add(localNote(obj.reason === "limit"
          ? "— more lines in this time range than one read sends: the oldest are shown, then live lines; narrow Since or Until to see the rest —"
          : "— the filter took too long over the history: older lines were not all checked —", nowStamp()));
      }
    },
    onReset(reason) {
      store.clear();
      waiting.clear();
      timeline.reset([]);
      fieldStats.clear();
      fieldPickerStale = true;
      if (reason === "subscribed" && paused) setPaused(false); // show what the new filter selects
      selectedItem = null;
      logView.selectedUid = null;
      showDetails();
      newWhileAway = 0;
      logView.setFollowing(true);
      logView.refresh();
    },
    onStatus() {
      updateChrome();
    },
    onFilterAccepted() {
      setFilterError(null);
    },
    onFilterError(error, hint) {
      setFilterError({ error, hint });
    },
    onAuthRequired(problem) {
      return tokenPrompt.ask(problem);
    },
  },
});

// ---- controls: filters ---------------------------------------------------

const form = $("filters");
const inputs = {
  grep: $("f-grep"),
  regex: $("f-regex"),
  exclude: $("f-exclude"),
  unit: $("f-unit"),
  priority: $("f-priority"),
  since: $("f-since"),
  until: $("f-until"),
};

function fillForm() {
  inputs.grep.value = filter.grep.join(", ");
  inputs.regex.value = filter.regex;
  inputs.exclude.value = filter.exclude.join(", ");
  inputs.unit.value = filter.unit.join(", ");
  inputs.since.value = filter.since;
  inputs.until.value = filter.until;
  const priority = inputs.priority;
  if (filter.priority && ![...priority.options].some((o) => o.value === filter.priority)) {
    priority.append(new Option(`Range ${filter.priority}`, filter.priority));
  }
  priority.value = filter.priority;
  renderSourcePicker();
  const extra = [];
  for (const key of ["identifier", "host"]) for (const value of filter[key]) extra.push(`${key}=${value}`);
  for (const key of ["context", "before-context", "after-context"]) if (filter[key]) extra.push(`${key}=${filter[key]}`);
  $("extra-filters").hidden = extra.length === 0;
  $("extra-filters").textContent = extra.length ? "Also: " + extra.join(" · ") : "";
  renderFieldChips();
}

// Field conditions (field=status>=500): chips with a button that removes one.
function renderFieldChips() {
  const box = $("field-chips");
  box.replaceChildren();
  for (const condition of filter.field) {
    const chip = document.createElement("span");
    chip.className = "chip";
    const text = document.createElement("code");
    text.textContent = condition;
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "chip-remove";
    remove.textContent = "×";
    remove.setAttribute("aria-label", `Remove the field filter ${condition}`);
    remove.addEventListener("click", () => {
      const next = readForm();
      next.field = next.field.filter((c) => c !== condition);
      applyFilter(next);
      renderFieldChips();
    });
    chip.append(text, remove);
    box.append(chip);
  }
  box.hidden = filter.field.length === 0;
}

function addFieldCondition(condition) {
  const next = readForm();
  if (next.field.includes(condition)) return;
  next.field = [...next.field, condition];
  applyFilter(next);
  renderFieldChips();
}

function readForm() {
  const next = emptyFilter();
  next.grep = splitTerms(inputs.grep.value);
  next.regex = inputs.regex.value.trim();
  next.exclude = splitTerms(inputs.exclude.value);
  next.unit = splitTerms(inputs.unit.value);
  next.priority = inputs.priority.value;
  next.since = inputs.since.value.trim();
  next.until = inputs.until.value.trim();
  next.source = [...$("source-list").querySelectorAll("input:checked")].map((box) => box.value);
  next.identifier = filter.identifier;
  next.host = filter.host;
  next.field = filter.field;
  for (const key of ["context", "before-context", "after-context"]) next[key] = filter[key];
  return next;
}

function applyFilter(next) {
  if (filterKey(next) === filterKey(filter)) return;
  filter = next;
  updateURL();
  highlight = makeHighlighter(filter);
  showHighlightNote();
  renderSourceSummary();
  stream.setFilter(filter, backlog);
  logView.refresh();
}

let typingTimer = 0;
form.addEventListener("input", (event) => {
  if (event.target.matches("input[type=search], input[type=text]")) {
    clearTimeout(typingTimer);
    typingTimer = setTimeout(() => applyFilter(readForm()), 300);
  }
});
form.addEventListener("change", (event) => {
  if (event.target.matches("select, input[type=checkbox]")) applyFilter(readForm());
});
form.addEventListener("keydown", (event) => {
  // Enter applies at once (implicit submission needs a submit button; there is none).
  if (event.key === "Enter" && event.target.matches("input[type=search], input[type=text]")) {
    event.preventDefault();
    clearTimeout(typingTimer);
    applyFilter(readForm());
  }
});
form.addEventListener("submit", (event) => {
  event.preventDefault(); // no navigation (and form-action is 'none')
  clearTimeout(typingTimer);
  applyFilter(readForm());
});

function setFilterError(value) {
  filterError = value;
  const box = $("filter-error");
  box.hidden = !value;
  box.textContent = value ? value.error + (value.hint && !value.error.includes(value.hint) ? ` — ${value.hint}` : "") : "";
  // Point at the field the message names.
  const text = value ? value.error.toLowerCase() : "";
  const fields = {
    regex: /regex/.test(text) && !/field/.test(text), priority: /priority|level/.test(text), unit: /unit/.test(text),
    exclude: /exclude/.test(text), grep: /grep/.test(text),
    since: /since/.test(text), until: /until/.test(text),
  };
  for (const [key, input] of Object.entries(inputs)) input.setAttribute("aria-invalid", String(Boolean(fields[key])));
  $("source-picker").classList.toggle("invalid", /source/.test(text));
  $("field-chips").classList.toggle("invalid", /field/.test(text));
  showHighlightNote();
}

// A regex the server accepts but the viewer cannot highlight is said so
// (not while the server refuses the filter: its error says more).
function showHighlightNote() {
  const note = $("highlight-note");
  const text = filterError ? null : highlightNote(filter);
  note.hidden = !text;
  note.textContent = text || "";
}

// ---- controls: sources ---------------------------------------------------

function mergeSources(list) {
  let changed = false;
  for (const source of list) {
    const known = sources.find((s) => s.name === source.name);
    if (known) {
      if (source.state && known.state !== source.state) { Object.assign(known, source); changed = true; }
    } else {
      sources.push({ ...source });
      changed = true;
    }
  }
  if (changed) {
    sources.sort((a, b) => a.name.localeCompare(b.name));
    renderSourcePicker();
  }
}

function renderSourcePicker() {
  const list = $("source-list");
  const names = new Set([...sources.map((s) => s.name), ...filter.source]);
  list.replaceChildren();
  for (const name of [...names].sort()) {
    const info = sources.find((s) => s.name === name);
    const label = document.createElement("label");
    label.className = "source-option";
    const box = document.createElement("input");
    box.type = "checkbox";
    box.value = name;
    box.checked = filter.source.includes(name);
    const swatch = document.createElement("span");
    swatch.className = "swatch src-" + sourceColour(name);
    swatch.setAttribute("aria-hidden", "true");
    const text = document.createElement("span");
    text.textContent = name;
    label.append(box, swatch, text);
    if (info && info.state) {
      const state = document.createElement("span");
      state.className = "source-state state-" + info.state;
      state.textContent = info.state;
      label.append(state);
    }
    list.append(label);
  }
  if (names.size === 0) {
    const none = document.createElement("p");
    none.className = "muted";
    none.textContent = "No sources yet.";
    list.append(none);
  }
  renderSourceSummary();
  // The source column is as wide as the longest name (within reason).
  const longest = Math.max(4, ...[...names].map((n) => n.length));
  viewportEl.style.setProperty("--src-w", Math.min(18, longest) + 1 + "ch");
  logView.measure();
  logView.invalidate();
}

function renderSourceSummary() {
  $("source-summary").textContent = filter.source.length ? filter.source.join(", ") : "all";
}

async function loadSources() {
  try {
    const response = await authFetch("/api/v1/sources");
    if (response.status === 401) {
      const problem = authProblem(response, await response.json().catch(() => ({})));
      if (problem.stale || await tokenPrompt.ask(problem)) loadSources();
      return;
    }
    if (!response.ok) return;
    const list = await response.json();
    if (Array.isArray(list)) mergeSources(list.map((s) => ({ name: s.name, kind: s.kind, state: s.state })));
  } catch {
    // the stream's status line tells about an unreachable server
  }
}

document.addEventListener("click", (event) => {
  const picker = $("source-picker");
  if (picker.open && !picker.contains(event.target)) picker.open = false;
});

// ---- controls: actions ---------------------------------------------------

function setPaused(value) {
  if (paused === value) return;
  paused = value;
  if (!paused) {
    if (waiting.dropped > 0) {
      store.push(localNote(
        `— ${formatCount(waiting.dropped)} lines dropped while paused (at most ${formatCount(waiting.capacity)} wait) —`,
        nowStamp(),
      ));
    }
    for (const entry of waiting.toArray()) keep(entry);
    waiting.clear();
    logView.invalidate();
  }
  updateChrome();
}

function setWrap(value) {
  prefs.wrap = value;
  savePrefs();
  logView.setWrap(value);
  $("wrap").setAttribute("aria-pressed", String(value));
}

function setTimeMode(mode) {
  prefs.timeMode = mode;
  savePrefs();
  renderContext.timeMode = mode;
  timeline.setUTC(mode === "utc");
  viewportEl.classList.toggle("no-time", mode === "off");
  $("time-mode").value = mode;
  logView.measure();
  logView.refresh();
}

function jumpToLatest() {
  newWhileAway = 0;
  logView.scrollToLatest();
  updateChrome();
}

function clearView() {
  store.clear();
  waiting.clear();
  timeline.reset([]);
  selectItem(null);
  newWhileAway = 0;
  logView.setFollowing(true);
  logView.refresh();
  updateChrome();
}

function lineText(item) {
  if (item.kind === "line") {
    return `${item.ts} ${item.source} ${levelLabel(item.priority) || "-"} ${stripAnsi(item.msg || "")}`;
  }
  return `${item.ts || ""} ${item.source || "-"} - ${item.text}`.trim();
}

/** The text of every row the view holds, as "Download" saves it. */
function shownText() {
  const rows = store.toArray().map(lineText);
  return rows.length ? rows.join("\n") + "\n" : "";
}

function download() {
  const blob = new Blob([shownText()], { type: "text/plain;charset=utf-8" });
  const link = document.createElement("a");
  const stamp = new Date().toISOString().slice(0, 19).replace(/[:T]/g, "-");
  const name = filter.source.length === 1 ? filter.source[0] : "logcast";
  link.href = URL.createObjectURL(blob);
  link.download = `${name}-${stamp}.log`;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

// ---- folding multi-line records -------------------------------------------

function setExpanded(item, expanded) {
  if (!item || item.kind !== "line" || !(item.lines > 1) || Boolean(item.expanded) === expanded) return;
  item.expanded = expanded;
  item.h = 0; // measured folded: measure again
  if (expanded) logView.setExpanding(true);
  logView.refresh();
}

function expandAll(expanded) {
  autoExpand = expanded;
  for (const item of store.toArray()) {
    if (item.lines > 1) {
      item.expanded = expanded;
      item.h = 0;
    }
  }
  for (const item of waiting.toArray()) if (item.lines > 1) item.expanded = expanded;
  logView.setExpanding(expanded);
  logView.refresh();
}

// ---- field columns ---------------------------------------------------------

function setFieldsOn(on) {
  if (fieldsOn === on) return;
  fieldsOn = on;
  if (!on && columns.length) setColumns([]);
  $("fields-toggle").setAttribute("aria-pressed", String(on));
  $("field-picker").hidden = !on;
  stream.setFields(on ? "*" : ""); // a fresh stream, now with (or without) fields
  renderFieldPicker();
}

function setColumns(next) {
  columns = next;
  renderContext.columns = columns;
  viewportEl.classList.toggle("with-fields", columns.length > 0);
  viewportEl.style.setProperty("--fields-w", `calc(${columns.length} * (var(--fv-w) + 1ch))`);
  updateURL();
  logView.measure();
  logView.refresh();
  renderFieldPicker();
}

function renderFieldPicker() {
  fieldPickerStale = false;
  const list = $("field-list");
  const names = [...new Set([...columns, ...fieldStats.keys()])];
  names.sort((a, b) => (fieldStats.get(b) || 0) - (fieldStats.get(a) || 0) || a.localeCompare(b));
  list.replaceChildren();
  for (const name of names) {
    const label = document.createElement("label");
    label.className = "source-option";
    const box = document.createElement("input");
    box.type = "checkbox";
    box.value = name;
    box.checked = columns.includes(name);
    const text = document.createElement("span");
    text.textContent = name;
    const count = document.createElement("span");
    count.className = "source-state";
    count.textContent = formatCount(fieldStats.get(name) || 0);
    label.append(box, text, count);
    list.append(label);
  }
  if (names.length === 0) {
    const none = document.createElement("p");
    none.className = "muted";
    none.textContent = fieldsOn ? "No fields seen yet: JSON, logfmt and journal lines have them." : "Fields are off.";
    list.append(none);
  }
  $("field-summary").textContent = columns.length ? columns.join(", ") : `${formatCount(fieldStats.size)} seen`;
}

$("field-list").addEventListener("change", (event) => {
  const box = event.target;
  if (!(box instanceof HTMLInputElement)) return;
  const next = columns.filter((c) => c !== box.value);
  if (box.checked) next.push(box.value);
  setColumns(next);
});
$("field-picker").addEventListener("toggle", () => { if ($("field-picker").open) renderFieldPicker(); });
setInterval(() => { if (fieldPickerStale && $("field-picker").open) renderFieldPicker(); }, 1000);

// ---- context around one line ------------------------------------------------

const AROUND = 5;

async function showContext() {
  const item = selectedItem;
  const panel = $("context-panel");
  if (!item || item.kind !== "line" || typeof item.seq !== "number") return;
  panel.hidden = false;
  const list = $("context-lines");
  const title = $("context-title");
  title.textContent = `Loading the lines around seq ${formatCount(item.seq)}…`;
  list.replaceChildren();
  let objects = [];
  try {
    const response = await authFetch(`/api/v1/lines?around=${item.seq}&context=${AROUND}`);
    const body = await response.text();
    if (!response.ok) {
      let problem = body;
      try { const parsed = JSON.parse(body); problem = parsed.error + (parsed.hint ? ` (${parsed.hint})` : ""); } catch { /* not JSON */ }
      title.textContent = `No context: ${problem}`;
      return;
    }
    objects = body.split("\n").filter(Boolean).map((line) => JSON.parse(line));
  } catch (error) {
    title.textContent = `No context: ${error.message}`;
    return;
  }
  if (selectedItem !== item) return; // another line was chosen meanwhile
  const lines = objects.filter((o) => o.type === "line");
  title.textContent = `${lines.length} line${lines.length === 1 ? "" : "s"} of ${item.path ? basenameOf(item.path) : item.source} around seq ${formatCount(item.seq)}`;
  for (const obj of objects) {
    const li = document.createElement("li");
    if (obj.type !== "line") {
      li.className = "context-note";
      li.textContent = obj.type === "separator" ? "--" : `— ${obj.event || obj.type} —`;
      list.append(li);
      continue;
    }
    li.className = "context-line " + levelClass(obj.priority) + (obj.seq === item.seq ? " anchor" : "");
    if (obj.seq === item.seq) li.setAttribute("aria-current", "true");
    const time = document.createElement("span");
    time.className = "c-time";
    time.textContent = formatTime(obj.ts, prefs.timeMode === "utc" ? "utc" : "local");
    const msg = document.createElement("span");
    msg.className = "c-msg";
    if (obj.lines > 1) renderLines(msg, obj.msg || "", highlight);
    else renderMessage(msg, obj.msg || "", highlight);
    li.append(time, msg);
    list.append(li);
  }
  // The panel took room from the list: keep the line it is about in view.
  requestAnimationFrame(() => logView.reveal(item.uid));
}

function basenameOf(path) {
  return path.slice(path.lastIndexOf("/") + 1);
}

function hideContext() {
  $("context-panel").hidden = true;
  $("context-lines").replaceChildren();
}

// ---- the timeline ----------------------------------------------------------

function setTimelineShown(shown) {
  prefs.timeline = shown;
  savePrefs();
  $("timeline-wrap").hidden = !shown;
  $("timeline-toggle").setAttribute("aria-pressed", String(shown));
  timeline.setHidden(!shown);
}

$("pause").addEventListener("click", () => setPaused(!paused));
$("expand-all").addEventListener("click", () => expandAll(true));
$("collapse-all").addEventListener("click", () => expandAll(false));
$("fields-toggle").addEventListener("click", () => setFieldsOn(!fieldsOn));
$("timeline-toggle").addEventListener("click", () => setTimelineShown(!prefs.timeline));
$("context-button").addEventListener("click", showContext);
$("context-close").addEventListener("click", hideContext);
$("wrap").addEventListener("click", () => setWrap(!prefs.wrap));
$("time-mode").addEventListener("change", (event) => setTimeMode(event.target.value));
$("clear").addEventListener("click", clearView);
$("download").addEventListener("click", download);
$("latest").addEventListener("click", jumpToLatest);
$("retry").addEventListener("click", () => stream.retryNow());
$("help-button").addEventListener("click", () => $("help").showModal());
$("help-close").addEventListener("click", () => $("help").close());
$("token-cancel").addEventListener("click", () => $("token-dialog").close());

const maxSelect = $("max-lines");
if (![...maxSelect.options].some((o) => Number(o.value) === maxLines)) {
  maxSelect.append(new Option(formatCount(maxLines), String(maxLines)));
}
maxSelect.value = String(maxLines);
maxSelect.addEventListener("change", () => {
  maxLines = clampMax(Number(maxSelect.value));
  store.resize(maxLines);
  waiting.resize(maxLines);
  timeline.reset(store.toArray());
  updateURL();
  logView.refresh();
  updateChrome();
});

// ---- selecting and copying a line ---------------------------------------

function selectItem(item) {
  const previous = selectedItem;
  selectedItem = item && item.kind !== "dropped" ? item : null;
  logView.selectedUid = selectedItem ? selectedItem.uid : null;
  if (selectedItem !== previous) hideContext();
  if (selectedItem) logView.setFollowing(false); // keep it in view as lines arrive
  else if (previous && logView.atBottom) logView.setFollowing(true); // nothing below: follow again
  showDetails();
  // The details panel takes room from the list: keep the selected line visible.
  if (selectedItem) logView.reveal(selectedItem.uid);
  logView.invalidate();
}

function showDetails() {
  const panel = $("details");
  const item = selectedItem;
  panel.hidden = !item;
  if (!item) return;
  $("context-button").disabled = !(item.kind === "line" && typeof item.seq === "number");
  const meta = [];
  if (item.kind === "line") {
    meta.push(typeof item.seq === "number" ? `seq ${item.seq}` : "from the journal (before the stream)", item.ts.replace("T", " ").replace("Z", " UTC"), item.source);
    if (levelLabel(item.priority)) meta.push(levelLabel(item.priority));
    if (item.host) meta.push(`host ${item.host}`);
    if (item.path) meta.push(item.path);
    if (item.unit) meta.push(`unit ${item.unit}`);
    if (item.identifier) meta.push(item.identifier + (item.pid ? `[${item.pid}]` : ""));
    if (item.lines > 1) {
      renderLines($("details-msg"), item.msg || "", highlight);
    } else {
      renderMessage($("details-msg"), item.msg || "", highlight);
    }
  } else {
    meta.push(item.source || "logcast");
    $("details-msg").textContent = item.text;
  }
  $("details-meta").textContent = meta.join(" · ");
  showDetailFields(item);
}

// The selected line's fields, each with buttons that keep or drop lines with
// its value: the keyboard's way to what a click on a column value does.
function showDetailFields(item) {
  const table = $("details-fields");
  const body = table.tBodies[0];
  body.replaceChildren();
  const fields = item.kind === "line" && item.fields ? Object.entries(item.fields) : [];
  $("details-fields-box").hidden = fields.length === 0;
  $("details-fields-summary").textContent = `Fields (${fields.length}): = keeps lines with a value, ≠ drops them`;
  for (const [name, value] of fields) {
    const tr = document.createElement("tr");
    const th = document.createElement("th");
    th.scope = "row";
    th.textContent = name;
    const td = document.createElement("td");
    td.textContent = value;
    const actions = document.createElement("td");
    actions.className = "field-actions";
    for (const [label, op, hint] of [["=", "=", "keep lines where"], ["≠", "!=", "drop lines where"]]) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = label;
      button.setAttribute("aria-label", `${hint} ${name} is ${value}`);
      button.title = `field=${name}${op}${value}`;
      button.addEventListener("click", () => addFieldCondition(`${name}${op}${value}`));
      actions.append(button);
    }
    tr.append(th, td, actions);
    body.append(tr);
  }
}

async function copySelected() {
  if (!selectedItem) return;
  const text = selectedItem.kind === "line" ? stripAnsi(selectedItem.msg || "") : selectedItem.text;
  const done = $("copy-done");
  try {
    await navigator.clipboard.writeText(text);
    done.textContent = "Copied";
  } catch {
    // No clipboard access (plain http on another host): select the text instead.
    const range = document.createRange();
    range.selectNodeContents($("details-msg"));
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    done.textContent = "Selected — press Ctrl+C";
  }
  done.hidden = false;
  clearTimeout(copySelected.timer);
  copySelected.timer = setTimeout(() => { done.hidden = true; }, 2000);
}

// A shift-click on a field value is an exclusion, not the end of a text selection.
$("rows").addEventListener("mousedown", (event) => {
  if (event.shiftKey && event.target.closest(".fv[data-field]")) event.preventDefault();
});
$("rows").addEventListener("click", (event) => {
  const value = event.target.closest(".fv[data-field]");
  if (value) {
    addFieldCondition(`${value.dataset.field}${event.shiftKey ? "!=" : "="}${value.textContent}`);
    return;
  }
  if (!getSelection().isCollapsed) return; // the reader is selecting text
  const row = event.target.closest(".row");
  const uid = logView.uidOfRow(row);
  if (uid === null) return;
  const index = store.indexOfUid(uid);
  const item = index === -1 ? null : store.at(index);
  // A fold control folds or expands its record; a field value filters on it.
  if (event.target.closest(".more-lines")) {
    setExpanded(item, !item.expanded);
    return;
  }
  selectItem(item && selectedItem && item.uid === selectedItem.uid ? null : item);
});
$("copy").addEventListener("click", copySelected);
$("details-close").addEventListener("click", () => selectItem(null));

function moveSelection(step) {
  if (!selectedItem) return false;
  const index = store.indexOfUid(selectedItem.uid);
  if (index === -1) return false;
  const next = index + step;
  if (next < 0 || next >= store.size) return true;
  selectItem(store.at(next)); // and scrolls it into view
  return true;
}

// ---- keyboard ------------------------------------------------------------

document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if (document.querySelector("dialog[open]")) return; // dialogs handle their own keys
  const target = event.target;
  const typing = target instanceof Element && target.matches("input, select, textarea");
  if (event.key === "Escape") {
    if (typing) target.blur();
    else if (selectedItem) selectItem(null);
    else if ($("source-picker").open) $("source-picker").open = false;
    return;
  }
  if (typing) return;
  switch (event.key) {
    case "/":
      event.preventDefault();
      inputs.grep.focus();
      inputs.grep.select();
      break;
    case " ":
      if (target instanceof Element && target.matches("button, summary, a, label")) return;
      event.preventDefault();
      setPaused(!paused);
      break;
    case "End":
      event.preventDefault();
      jumpToLatest();
      break;
    case "?":
      event.preventDefault();
      $("help").showModal();
      break;
    case "w":
      setWrap(!prefs.wrap);
      break;
    case "c":
      copySelected();
      break;
    case "ArrowDown":
    case "ArrowUp":
      if (moveSelection(event.key === "ArrowDown" ? 1 : -1)) event.preventDefault();
      break;
    case "x":
      if (selectedItem) setExpanded(selectedItem, !selectedItem.expanded);
      break;
    case "]":
      expandAll(true);
      break;
    case "[":
      expandAll(false);
      break;
    case "k":
      showContext();
      break;
    case "t":
      setTimelineShown(!prefs.timeline);
      break;
    case "f":
      setFieldsOn(!fieldsOn);
      break;
    default:
      break;
  }
});

// ---- status line, counters, rate ----------------------------------------

const rateSamples = []; // [time, received] every tick, the last two seconds
let rate = 0;

function describeStatus(status) {
  switch (status.state) {
    case "live": return ["live", "Live"];
    case "connecting": return ["connecting", status.resuming ? "Resuming…" : "Connecting…"];
    case "waiting": {
      const seconds = Math.max(0, Math.ceil((status.retryAt - performance.now()) / 1000));
      return ["waiting", `Reconnecting in ${seconds} s`];
    }
    case "stopped": return ["stopped", `Disconnected: ${status.error || "stopped"}`];
    default: return ["connecting", "Starting…"];
  }
}

// Everything around the list (status, counters, the empty state, the jump
// button) is drawn from the model as it is at the call, by this one function.
// It runs at the end of every drawn frame of the list (LogView's onFrame), so
// the rows and what is said about them are always painted together; it also
// runs on status changes and every 250 ms for the rate and the countdown.
// It is cheap: setText only touches the DOM when a text changes. (It used to
// skip frame calls within 200 ms of the previous one, so a burst of lines
// could be drawn while the count still said "0 lines" and "Waiting for
// lines…" sat on top of them until the next timer tick.)
function updateChrome() {
  const status = stream.status;
  const [state, text] = describeStatus(status);
  const statusEl = $("status");
  statusEl.dataset.state = state;
  setText($("status-text"), text);
  statusEl.title = status.reason || status.hint || "";
  $("retry").hidden = !(state === "waiting" || state === "stopped");

  setText($("rate"), `${formatCount(Math.round(rate))} lines/s`);

  const pauseButton = $("pause");
  pauseButton.setAttribute("aria-pressed", String(paused));
  setText(pauseButton.querySelector(".label"), paused ? "Resume" : "Pause");
  const pausedInfo = $("paused-info");
  pausedInfo.hidden = !paused;
  if (paused) {
    let text = `Paused · ${formatCount(waiting.size)} waiting`;
    if (waiting.dropped) text += ` (${formatCount(waiting.dropped)} dropped)`;
    setText(pausedInfo, text);
  }

  // Lines only: notes (rotations, gaps) are rows but not lines.
  setText($("count"), `${formatCount(store.lines)} line${store.lines === 1 ? "" : "s"}`);
  setText($("dropped-info"), store.dropped ? `${formatCount(store.dropped)} older dropped` : "");
  setText($("conn-info"), stream.lastSeq !== null ? `last seq ${formatCount(stream.lastSeq)}` : "");

  // The jump button is for when the latest line is out of sight: not while
  // following, and not when the view already shows the bottom (following
  // stops when a line is selected, but with nothing below there is nowhere
  // to jump to; lines arriving later push the bottom away and bring it back).
  const latest = $("latest");
  latest.hidden = logView.following || logView.atBottom;
  setText($("latest-count"), newWhileAway ? `(${formatCount(newWhileAway)} new)` : "");

  const empty = $("empty");
  empty.hidden = store.size > 0; // any row (a line or a note) hides it
  if (!empty.hidden) {
    let message;
    if (paused && waiting.size) message = "Paused — new lines are waiting.";
    else if (status.state === "stopped") message = `Not connected: ${status.error || "stopped"}` + (status.hint ? ` — ${status.hint}.` : ".");
    else message = isEmptyFilter(filter) ? "Waiting for lines…" : "No lines match this filter yet.";
    setText(empty, message);
  }
}

function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

setInterval(() => {
  const now = performance.now();
  rateSamples.push([now, received]);
  while (rateSamples.length > 1 && now - rateSamples[0][0] > 2000) rateSamples.shift();
  const [t0, r0] = rateSamples[0];
  rate = now > t0 ? ((received - r0) * 1000) / (now - t0) : 0;
  updateChrome();
}, 250);

// ---- the test hook -------------------------------------------------------

window.logcast = Object.freeze({
  get connections() { return stream.connections; },
  state() {
    return {
      status: stream.status.state,
      connections: stream.connections,
      epoch: stream.epoch,
      lastSeq: stream.lastSeq,
      following: logView.following,
      atBottom: logView.atBottom,
      paused,
      waiting: waiting.size,
      waitingDropped: waiting.dropped,
      size: store.size,
      lineCount: store.lines,
      max: store.capacity,
      highWater: store.highWater,
      dropped: store.dropped,
      rate,
      received,
      filter: JSON.parse(filterKey(filter)),
      filterError: filterError ? filterError.error : null,
      highlightNote: $("highlight-note").hidden ? null : $("highlight-note").textContent,
      domRows: logView.domRows,
      duplicates: stream.duplicates,
      wrap: prefs.wrap,
      timeMode: prefs.timeMode,
      cspViolations: [...cspViolations],
      selectedUid: logView.selectedUid,
      tokenPrompts: tokenPrompt.shown,
      fieldsOn,
      columns: [...columns],
      timelineShown: prefs.timeline,
      autoExpand,
      firstVisibleUid: logView.firstVisibleUid(),
    };
  },
  timeline: () => timeline.snapshot(),
  fieldStats: () => Object.fromEntries(fieldStats),
  folds() {
    return store.toArray().filter((e) => e.kind === "line" && e.lines > 1)
      .map((e) => ({ seq: e.seq, lines: e.lines, expanded: Boolean(e.expanded) }));
  },
  lines() {
    return store.toArray().filter((e) => e.kind === "line")
      .map((e) => ({ seq: e.seq, ts: e.ts, source: e.source, msg: e.msg, priority: e.priority, uid: e.uid, fields: e.fields }));
  },
  entries() {
    return store.toArray().map((e) => ({ kind: e.kind, text: e.kind === "line" ? e.msg : e.text }));
  },
  text: shownText,
});

// ---- start ---------------------------------------------------------------

fillForm();
showHighlightNote();
setWrap(prefs.wrap);
stream.fields = fieldsOn ? "*" : "";
$("fields-toggle").setAttribute("aria-pressed", String(fieldsOn));
$("field-picker").hidden = !fieldsOn;
if (columns.length) setColumns(columns);
renderFieldPicker();
setTimelineShown(prefs.timeline !== false);
setTimeMode(["local", "utc", "off"].includes(prefs.timeMode) ? prefs.timeMode : "local");
updateURL();
updateChrome();
loadSources();
stream.start();
// Web fonts are not used, but system fonts may still settle after the first layout.
document.fonts?.ready.then(() => { logView.measure(); logView.refresh(); });
