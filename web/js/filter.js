// The viewer's filter: read from and written to the page URL, sent to the
// server as query parameters (on connect) or as a `subscribe` message (on a
// change), and turned into JavaScript regular expressions for highlighting.
//
// Keys and meanings are PROTOCOL.md's. Repeatable keys are arrays; in the
// page they are typed comma-separated, split and trimmed here, and written to
// URLs as repeated keys (`grep=a&grep=b`) so the server sees exactly the
// terms the page shows.

export const REPEATABLE = ["source", "grep", "exclude", "unit", "identifier", "host"];
export const SINGLE = ["regex", "priority"];
export const FILTER_KEYS = [...REPEATABLE, ...SINGLE];

export const DEFAULT_BACKLOG = 1000;
export const DEFAULT_MAX_LINES = 10000;
export const MIN_MAX_LINES = 100;
export const MAX_MAX_LINES = 500000;

export function emptyFilter() {
  return { source: [], grep: [], exclude: [], unit: [], identifier: [], host: [], regex: "", priority: "" };
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
    const terms = params.getAll(key).flatMap(splitTerms);
    filter[key] = [...new Set(terms)];
  }
  for (const key of SINGLE) filter[key] = (params.get(key) || "").trim();
  return { filter, backlog: intParam(params, "backlog"), max: intParam(params, "max") };
}

/** Query parameters for the server (no viewer-only keys such as `max`). */
export function filterParams(filter) {
  const params = new URLSearchParams();
  for (const key of REPEATABLE) for (const term of filter[key]) params.append(key, term);
  for (const key of SINGLE) if (filter[key]) params.set(key, filter[key]);
  return params;
}

/** The page URL's query for this view; defaults are left out so URLs stay short. */
export function viewQuery(filter, backlog, max) {
  const params = filterParams(filter);
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

// Patterns with a quantified group that itself contains a quantifier, like
// (a+)+ or (\w*)*, can backtrack for ever in JavaScript's engine (the server
// guards its own PCRE2 with a match limit). Highlighting is a nicety, so
// such patterns are simply not highlighted.
function looksCatastrophic(pattern) {
  return /\((?:[^()\\]|\\.)*[+*}](?:[^()\\]|\\.)*\)\s*[+*{]/.test(pattern);
}

/**
 * Translates a PCRE2 pattern into a JavaScript RegExp source and flags, or
 * returns null when JavaScript cannot express it faithfully.
 */
export function pcreToJS(pattern) {
  let source = pattern;
  let flags = "";
  const inline = /^\(\?([imsx]+)\)/.exec(source);
  if (inline) {
    if (inline[1].includes("x")) return null;
    for (const f of inline[1]) if (!flags.includes(f)) flags += f;
    source = source.slice(inline[0].length);
  }
  source = source
    .replace(/\(\?P</g, "(?<")
    .replace(/\\A/g, "^")
    .replace(/\\[zZ]/g, "$");
  try {
    new RegExp(source, flags + "u");
    return { source, flags: flags + "u" };
  } catch {
    return null;
  }
}

/**
 * Builds the highlighter for a filter: a function from visible text to
 * merged, sorted `[start, end]` ranges, or null when nothing is highlighted.
 */
export function makeHighlighter(filter) {
  const regexps = [];
  for (const term of filter.grep) {
    regexps.push(new RegExp(escapeRegExp(term), hasUpper(term) ? "gu" : "giu"));
  }
  if (filter.regex && !looksCatastrophic(filter.regex)) {
    const js = pcreToJS(filter.regex);
    if (js) {
      let flags = js.flags;
      if (!regexHasUpper(filter.regex) && !flags.includes("i")) flags += "i";
      try {
        regexps.push(new RegExp(js.source, flags + "g"));
      } catch {
        // not highlightable; the server still filters with it
      }
    }
  }
  if (regexps.length === 0) return null;

  let disabled = false;
  return function highlight(text) {
    if (disabled) return null;
    const started = performance.now();
    const ranges = [];
    for (const re of regexps) {
      re.lastIndex = 0;
      let m;
      let count = 0;
      while ((m = re.exec(text)) !== null && count++ < 500) {
        if (m[0].length === 0) { re.lastIndex++; continue; }
        ranges.push([m.index, m.index + m[0].length]);
      }
    }
    // A pattern that is slow on real lines switches itself off.
    if (performance.now() - started > 50) disabled = true;
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
