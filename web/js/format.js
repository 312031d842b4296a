// How fields of a line are shown: timestamps, level names, source colours.

export const LEVELS = ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"];
const LEVEL_LABELS = ["EMERG", "ALERT", "CRIT", "ERROR", "WARN", "NOTICE", "INFO", "DEBUG"];

/** The short upper-case label of a syslog priority (0–7), or "" when unknown. */
export function levelLabel(priority) {
  return priority >= 0 && priority <= 7 ? LEVEL_LABELS[priority] : "";
}

/** The CSS class colouring a row by its priority. */
export function levelClass(priority) {
  if (priority === undefined || priority === null) return "lvl-none";
  if (priority <= 3) return "lvl-err";
  if (priority === 4) return "lvl-warn";
  if (priority === 5) return "lvl-notice";
  if (priority === 6) return "lvl-info";
  return "lvl-debug";
}

export const SOURCE_COLOURS = 8;

/** A stable colour slot (0–7) for a source name: the same name, the same colour. */
export function sourceColour(name) {
  let h = 2166136261;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  return (h >>> 0) % SOURCE_COLOURS;
}

function pad(n, width = 2) {
  return String(n).padStart(width, "0");
}

/**
 * Formats an RFC 3339 UTC timestamp (`2026-11-25T09:05:29.123456Z`) as a
 * clock time with milliseconds, in UTC (`09:05:29.123`) or local time.
 * The full stamp is kept for the line's tooltip and downloads.
 */
export function formatTime(ts, mode) {
  if (!ts) return "";
  if (mode === "utc") return ts.slice(11, 23);
  const ms = Date.parse(ts);
  if (Number.isNaN(ms)) return ts.slice(11, 23);
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/** The current time as an RFC 3339 UTC stamp (for events that carry none). */
export function nowStamp() {
  return new Date().toISOString().replace(/Z$/, "000Z");
}

const numberFormat = new Intl.NumberFormat("en-US");

export function formatCount(n) {
  return numberFormat.format(n);
}

export function basename(path) {
  if (!path) return "";
  const i = path.lastIndexOf("/");
  return i === -1 ? path : path.slice(i + 1);
}
