// The viewer's filter: read from and written to the page URL, sent to the
// server as query parameters (on connect) or as a `subscribe` message (on a
// change), and turned into highlighters for the matches in the page.
//
// Keys and meanings are docs/PROTOCOL.md's. Repeatable keys are arrays; in the
// page they are typed comma-separated, split and trimmed here, and written to
// URLs as repeated keys (`grep=a&grep=b`) so the server sees exactly the
// terms the page shows.

import { compileRegex } from "./regex.js";

// `field` conditions (status>=500) are repeatable but never split at commas:
// a value may hold one.
export const REPEATABLE = ["source", "grep", "exclude", "unit", "identifier", "host", "field"];
const UNSPLIT = new Set(["field"]);
// `since` and `until` are passed to the server as typed (RFC 3339, a date,
// or relative like -10m, -2h, -1d, as journalctl -S takes them); the server
// checks them and its error is shown.
// The context keys (lines around each match, as grep -C/-B/-A) come from
// the URL and are kept as they are; the page has no field for them.
export const SINGLE = ["regex", "priority", "since", "until", "context", "before-context", "after-context"];
export const FILTER_KEYS = [...REPEATABLE, ...SINGLE];

export const DEFAULT_BACKLOG = 1000;
export const DEFAULT_MAX_LINES = 10000;
export const MIN_MAX_LINES = 100;
export const MAX_MAX_LINES = 500000;

export function emptyFilter() {
  return {
    source: [], grep: [], exclude: [], unit: [], identifier: [], host: [], field: [], regex: "", priority: "", since: "", until: "",
    context: "", "before-context": "", "after-context": "",
  };
}

/** Splits a comma-separated input into trimmed, non-empty terms. */
export function splitTerms(text) {
  return String(text).split(",").map((t) => t.trim()).filter((t) => t !== "");
}

function intParam(params, key) {
  const raw = params.get(key);
  if (raw === null || raw.trim() === "") return null;
  const n = Number(raw);
  return Number.isFinite(n) && n >= 0 ? Math.floor(n) : null;
}

/**
 * Reads the view from a query string: `{filter, backlog, max}`; `backlog`
 * and `max` are null when absent.
 */
export function readView(search) {
  const params = new URLSearchParams(search);
  const filter = emptyFilter();
  for (const key of REPEATABLE) {
    const terms = UNSPLIT.has(key) ? params.getAll(key).filter((t) => t !== "") : params.getAll(key).flatMap(splitTerms);
    filter[key] = [...new Set(terms)];
  }
  for (const key of SINGLE) filter[key] = (params.get(key) || "").trim();
  const columns = splitTerms(params.get("columns") || "");
  return { filter, backlog: intParam(params, "backlog"), max: intParam(params, "max"), columns: [...new Set(columns)] };
}

/** Query parameters for the server (no viewer-only keys such as `max`). */
export function filterParams(filter) {
  const params = new URLSearchParams();
  for (const key of REPEATABLE) for (const term of filter[key]) params.append(key, term);
  for (const key of SINGLE) if (filter[key]) params.set(key, filter[key]);
  return params;
}

/** The page URL's query for this view; defaults are left out so URLs stay short. */
export function viewQuery(filter, backlog, max, columns = []) {
  const params = filterParams(filter);
  if (columns.length) params.set("columns", columns.join(","));
  if (backlog !== null && backlog !== undefined) params.set("backlog", String(backlog));
  if (max !== null && max !== undefined && max !== DEFAULT_MAX_LINES) params.set("max", String(max));
  const text = params.toString();
  return text ? "?" + text : "";
}

/** The `filter` object of a `subscribe` message (empty keys left out). */
export function filterMessage(filter) {
  const out = {};
  for (const key of REPEATABLE) if (filter[key].length) out[key] = [...filter[key]];
  for (const key of SINGLE) if (filter[key]) out[key] = filter[key];
  return out;
}

/** A canonical string: two filters with the same key select the same lines. */
export function filterKey(filter) {
  return JSON.stringify(filterMessage(filter));
}

export function isEmptyFilter(filter) {
  return filterKey(filter) === "{}";
}

// ---- highlighting -------------------------------------------------------
//
// Every highlight is bounded in time, whatever the user types:
// - Text terms (grep) are literal: escaped before they become a RegExp, so
//   they cannot backtrack (a search costs at most the term's length per
//   character of the line).
// - The regex is not given to JavaScript's RegExp, which backtracks with no
//   match limit (the server guards its own PCRE2 with one). A guard on the
//   pattern's syntax, as there used to be, cannot catch them all: it missed
//   ((a+))+$ and (a|aa)+$, and plain .*.*x has no nested quantifier at all
//   yet takes seconds on a long line. The regex runs on the linear-time
//   matcher of regex.js instead, under a step budget per line. A pattern that matcher cannot run (back-references,
//   lookaround, …) is not highlighted, and `highlightNote` says why.

function hasUpper(text) {
  return /\p{Lu}/u.test(text);
}

/** Smart-case for a regex: escapes such as \S, \W, \p{Lu} do not count as upper case. */
function regexHasUpper(pattern) {
  return hasUpper(pattern.replace(/\\[pP]\{[^}]*\}/g, "").replace(/\\./gs, ""));
}

function escapeRegExp(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** The regex filter compiled for highlighting: `{regex}`, `{unsupported}`, `{invalid}` or null. */
function highlightRegex(filter) {
  if (!filter.regex) return null;
  return compileRegex(filter.regex, { ignoreCase: !regexHasUpper(filter.regex) });
}

/**
 * Why the filter's regex is not highlighted (for the page to say), or null
 * when it is (or there is none).
 */
export function highlightNote(filter) {
  const compiled = highlightRegex(filter);
  if (!compiled || compiled.regex) return null;
  if (compiled.unsupported) {
    return `Regex matches are not highlighted: the viewer does not support ${compiled.unsupported} (the server still filters with it).`;
  }
  return `Regex matches are not highlighted: ${compiled.invalid}.`;
}

/**
 * Builds the highlighter for a filter: a function from visible text to
 * merged, sorted `[start, end]` ranges, or null when nothing is highlighted.
 */
export function makeHighlighter(filter) {
  const literals = filter.grep.map((term) => new RegExp(escapeRegExp(term), hasUpper(term) ? "gu" : "giu"));
  const compiled = highlightRegex(filter);
  const regex = compiled && compiled.regex ? compiled.regex : null;
  if (literals.length === 0 && !regex) return null;

  return function highlight(text) {
    const ranges = [];
    for (const re of literals) {
      re.lastIndex = 0;
      let m;
      let count = 0;
      while ((m = re.exec(text)) !== null && count++ < 500) {
        ranges.push([m.index, m.index + m[0].length]);
      }
    }
    if (regex) ranges.push(...regex.ranges(text));
    if (ranges.length === 0) return null;
    ranges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    const merged = [ranges[0]];
    for (const r of ranges.slice(1)) {
      const last = merged[merged.length - 1];
      if (r[0] <= last[1]) last[1] = Math.max(last[1], r[1]);
      else merged.push(r);
    }
    return merged;
  };
}
