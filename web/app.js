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
// They are read-only views; changing what they return changes nothing.

import { authFetch, authProblem, TokenPrompt } from "./js/auth.js";
import { stripAnsi } from "./js/ansi.js";
import { LogStream } from "./js/connection.js";
import {
  DEFAULT_BACKLOG, DEFAULT_MAX_LINES, MAX_MAX_LINES, MIN_MAX_LINES,
  emptyFilter, filterKey, highlightNote, isEmptyFilter, makeHighlighter, readView, splitTerms, viewQuery,
} from "./js/filter.js";
import { formatCount, levelLabel, nowStamp, sourceColour } from "./js/format.js";
import { fillRow, gapNote, localNote, renderMessage, sourceNote } from "./js/rows.js";
import { LineStore, Ring } from "./js/store.js";
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
  const defaults = { wrap: false, timeMode: "local" };
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

function updateURL() {
  const query = viewQuery(filter, urlBacklog, maxLines);
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

function add(entry) {
  if (paused) {
    waiting.push(entry);
    return;
  }
  store.push(entry);
  if (!logView.following && entry.kind === "line") newWhileAway++;
  logView.invalidate();
}

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
    regex: /regex/.test(text), priority: /priority|level/.test(text), unit: /unit/.test(text),
    exclude: /exclude/.test(text), grep: /grep/.test(text),
    since: /since/.test(text), until: /until/.test(text),
  };
  for (const [key, input] of Object.entries(inputs)) input.setAttribute("aria-invalid", String(Boolean(fields[key])));
  $("source-picker").classList.toggle("invalid", /source/.test(text));
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
    for (const entry of waiting.toArray()) store.push(entry);
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

$("pause").addEventListener("click", () => setPaused(!paused));
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
  updateURL();
  logView.refresh();
  updateChrome();
});

// ---- selecting and copying a line ---------------------------------------

function selectItem(item) {
  const previous = selectedItem;
  selectedItem = item && item.kind !== "dropped" ? item : null;
  logView.selectedUid = selectedItem ? selectedItem.uid : null;
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
  const meta = [];
  if (item.kind === "line") {
    meta.push(typeof item.seq === "number" ? `seq ${item.seq}` : "from the journal (before the stream)", item.ts.replace("T", " ").replace("Z", " UTC"), item.source);
    if (levelLabel(item.priority)) meta.push(levelLabel(item.priority));
    if (item.host) meta.push(`host ${item.host}`);
    if (item.path) meta.push(item.path);
    if (item.unit) meta.push(`unit ${item.unit}`);
    if (item.identifier) meta.push(item.identifier + (item.pid ? `[${item.pid}]` : ""));
    if (item.lines > 1) {
      // A multi-line record: its lines as lines (a newline is not a control to show).
      const target = $("details-msg");
      target.textContent = "";
      (item.msg || "").split("\n").forEach((line, index) => {
        if (index > 0) target.append("\n");
        const span = document.createElement("span");
        renderMessage(span, line, highlight);
        target.append(span);
      });
    } else {
      renderMessage($("details-msg"), item.msg || "", highlight);
    }
  } else {
    meta.push(item.source || "logcast");
    $("details-msg").textContent = item.text;
  }
  $("details-meta").textContent = meta.join(" · ");
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

$("rows").addEventListener("click", (event) => {
  if (!getSelection().isCollapsed) return; // the reader is selecting text
  const row = event.target.closest(".row");
  const uid = logView.uidOfRow(row);
  if (uid === null) return;
  const index = store.indexOfUid(uid);
  const item = index === -1 ? null : store.at(index);
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
    };
  },
  lines() {
    return store.toArray().filter((e) => e.kind === "line")
      .map((e) => ({ seq: e.seq, source: e.source, msg: e.msg, priority: e.priority }));
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
setTimeMode(["local", "utc", "off"].includes(prefs.timeMode) ? prefs.timeMode : "local");
updateURL();
updateChrome();
loadSources();
stream.start();
// Web fonts are not used, but system fonts may still settle after the first layout.
document.fonts?.ready.then(() => { logView.measure(); logView.refresh(); });
