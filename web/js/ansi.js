// ANSI escape sequences in log messages, turned into styled text runs.
//
// Programs that colour their output (SGR sequences like ESC[31m) end up in log
// files as raw escapes. The viewer renders SGR colours and attributes and
// strips every other escape sequence (cursor moves, OSC titles and links,
// charset switches), so a message never shows escape garbage. Other C0
// control characters are shown as their Unicode "control picture" (␇ for
// BEL) rather than silently dropped, so nothing in a line is hidden.
//
// The parser is pure: text in, {text, runs} out. It never touches the DOM.

const ESC = 0x1b;
const BEL = 0x07;

/** False for the characters that start an escape or are controls (tab aside). */
function isShown(c) {
  return !((c < 0x20 && c !== 0x09) || (c >= 0x7f && c <= 0x9f));
}

/** The xterm 256-colour palette entry `n` (16–255) as [r, g, b]. */
export function xtermRGB(n) {
  if (n >= 232) {
    const v = 8 + (n - 232) * 10;
    return [v, v, v];
  }
  const levels = [0, 95, 135, 175, 215, 255];
  const i = n - 16;
  return [levels[Math.floor(i / 36)], levels[Math.floor(i / 6) % 6], levels[i % 6]];
}

/** True when `text` has anything the plain fast path cannot show as is. */
export function needsParsing(text) {
  for (let i = 0; i < text.length; i++) if (!isShown(text.charCodeAt(i))) return true;
  return false;
}

function emptyStyle() {
  return { fg: null, bg: null, bold: false, dim: false, italic: false, underline: false, inverse: false, strike: false };
}

function isPlain(s) {
  return s.fg === null && s.bg === null && !s.bold && !s.dim && !s.italic && !s.underline && !s.inverse && !s.strike;
}

// A colour is either a palette index (0–255) or an [r, g, b] triple.
function extendedColour(params, i) {
  // 38;5;n  or  38;2;r;g;b  (also the colon forms, split by the caller)
  const mode = params[i + 1];
  if (mode === 5 && params.length > i + 2) {
    const n = params[i + 2];
    return { colour: n >= 0 && n <= 255 ? n : null, used: 2 };
  }
  if (mode === 2 && params.length > i + 4) {
    const rgb = [params[i + 2], params[i + 3], params[i + 4]].map((v) => Math.max(0, Math.min(255, v | 0)));
    return { colour: rgb, used: 4 };
  }
  return { colour: null, used: params.length - i }; // malformed: ignore the rest
}

function parseParams(raw) {
  if (raw === "") return [0];
  const out = [];
  for (const part of raw.split(";")) {
    if (part.includes(":")) {
      // ITU T.416 colon form: 38:2::r:g:b or 38:2:r:g:b or 38:5:n; 4:3 (curly underline).
      const sub = part.split(":").map((v) => (v === "" ? -1 : Number(v)));
      if ((sub[0] === 38 || sub[0] === 48) && sub[1] === 2) {
        const rgb = sub.length >= 6 ? sub.slice(3, 6) : sub.slice(2, 5);
        out.push(sub[0], 2, ...rgb.map((v) => (v < 0 ? 0 : v)));
      } else if ((sub[0] === 38 || sub[0] === 48) && sub[1] === 5) {
        out.push(sub[0], 5, sub[2]);
      } else if (sub[0] === 4) {
        out.push(sub[1] === 0 ? 24 : 4);
      } else {
        out.push(sub[0]);
      }
    } else {
      out.push(part === "" ? 0 : Number(part));
    }
  }
  return out;
}

function applySGR(style, raw) {
  const p = parseParams(raw);
  for (let i = 0; i < p.length; i++) {
    const code = p[i];
    if (code === 0) Object.assign(style, emptyStyle());
    else if (code === 1) style.bold = true;
    else if (code === 2) style.dim = true;
    else if (code === 3) style.italic = true;
    else if (code === 4 || code === 21) style.underline = true;
    else if (code === 7) style.inverse = true;
    else if (code === 9) style.strike = true;
    else if (code === 22) { style.bold = false; style.dim = false; }
    else if (code === 23) style.italic = false;
    else if (code === 24) style.underline = false;
    else if (code === 27) style.inverse = false;
    else if (code === 29) style.strike = false;
    else if (code >= 30 && code <= 37) style.fg = code - 30;
    else if (code === 39) style.fg = null;
    else if (code >= 40 && code <= 47) style.bg = code - 40;
    else if (code === 49) style.bg = null;
    else if (code >= 90 && code <= 97) style.fg = code - 90 + 8;
    else if (code >= 100 && code <= 107) style.bg = code - 100 + 8;
    else if (code === 38 || code === 48) {
      const { colour, used } = extendedColour(p, i);
      if (colour !== null) {
        if (code === 38) style.fg = colour; else style.bg = colour;
      }
      i += used;
    }
    // Anything else (blink, conceal, fonts, …) is ignored on purpose:
    // concealed text in a log is still text someone may need to read.
  }
}

// Cost. Every input is parsed in time linear in its length: the scan only
// moves forward, and each character is looked at a bounded number of times.
// (It used to be quadratic: an unterminated OSC searched the rest of the line
// for its terminator and then dropped just its two-byte introducer, so a line
// of 32,000 "ESC ]" searched 32,000 times to the end — seconds per line, in
// every open viewer.) What each kind of sequence costs and becomes:
// - CSI (ESC [ params intermediates final): read once. With more than
//   MAX_CSI_PARAMS parameter bytes it is garbage: skipped to its final byte
//   and dropped without being applied, so no one builds a 20,000-entry
//   parameter list. Without a final byte (the line ends, or another control
//   comes first) what was read is dropped and parsing goes on after it.
// - Strings (OSC ESC ], DCS ESC P, SOS ESC X, PM ESC ^, APC ESC _) run to
//   BEL or ESC \ and are dropped whole. An unterminated one (the line was cut,
//   or the program never ended it) drops only its introducer and the rest of
//   the line is parsed as ordinary text, so nothing else in the line is
//   hidden. A failed search for a terminator is remembered: a terminator
//   found nowhere after position p is not looked for again after p, which
//   makes a line of 32,000 unterminated introducers one search, not 32,000.
// - ESC intermediates final (ESC ( B and friends) and ESC final: dropped;
//   without a valid final byte only what was read is dropped.

/** CSI parameter bytes beyond which a sequence is garbage (real SGRs use < 50). */
export const MAX_CSI_PARAMS = 64;

/**
 * Parses `text` into the visible characters and their style runs.
 *
 * Returns `{text, runs}` where `runs` is a list of `{start, end, style}` over
 * `text` (the message with every escape sequence removed), each with a
 * non-plain style; characters outside every run are unstyled.
 */
export function parseAnsi(text) {
  const pieces = []; // joined once at the end: no repeated string building
  let length = 0; // of the visible text so far
  const runs = [];
  const style = emptyStyle();
  let runStart = 0;

  const emit = (piece) => {
    pieces.push(piece);
    length += piece.length;
  };
  const closeRun = () => {
    if (length > runStart && !isPlain(style)) runs.push({ start: runStart, end: length, style: { ...style } });
    runStart = length;
  };

  const n = text.length;
  let noTerminatorFrom = n; // no BEL or ESC \ starts at or after this index
  let i = 0;
  while (i < n) {
    // Copy the longest stretch of ordinary characters in one go.
    let j = i;
    while (j < n && isShown(text.charCodeAt(j))) j++;
    if (j > i) { emit(text.slice(i, j)); i = j; if (i >= n) break; }

    const c = text.charCodeAt(i);
    if (c === ESC) {
      const next = text.charCodeAt(i + 1); // NaN past the end: matches no case below
      if (next === 0x5b) { // '[' — CSI: parameters, intermediates, one final byte
        let k = i + 2;
        let sgrParams = true; // only digits, ';' and ':' (no private markers like '?')
        while (k < n) {
          const d = text.charCodeAt(k);
          if (d < 0x30 || d > 0x3f) break;
          if (d > 0x3b) sgrParams = false; // < = > ?
          k++;
        }
        const paramsEnd = k;
        while (k < n && text.charCodeAt(k) >= 0x20 && text.charCodeAt(k) <= 0x2f) k++;
        const final = text.charCodeAt(k);
        if (k < n && final >= 0x40 && final <= 0x7e) {
          if (final === 0x6d && sgrParams && paramsEnd - (i + 2) <= MAX_CSI_PARAMS) { // 'm' — SGR
            closeRun();
            applySGR(style, text.slice(i + 2, paramsEnd));
          }
          i = k + 1;
        } else {
          i = k; // unterminated: drop what was read as the sequence
        }
      } else if (next === 0x5d || next === 0x50 || next === 0x58 || next === 0x5e || next === 0x5f) {
        // OSC ] / DCS P / SOS X / PM ^ / APC _ : a string ended by BEL or ESC \
        let end = -1;
        if (i + 2 < noTerminatorFrom) {
          for (let k = i + 2; k < n; k++) {
            const d = text.charCodeAt(k);
            if (d === BEL) { end = k + 1; break; }
            if (d === ESC && text.charCodeAt(k + 1) === 0x5c) { end = k + 2; break; }
          }
          if (end === -1) noTerminatorFrom = i + 2;
        }
        i = end === -1 ? i + 2 : end; // unterminated: drop only the introducer
      } else if (next >= 0x20 && next <= 0x2f) { // ESC ( B and friends
        let k = i + 2;
        while (k < n && text.charCodeAt(k) >= 0x20 && text.charCodeAt(k) <= 0x2f) k++;
        const final = text.charCodeAt(k);
        i = k < n && final >= 0x30 && final <= 0x7e ? k + 1 : k;
      } else if (next >= 0x30 && next <= 0x7e) { // ESC 7, ESC c, ESC M …
        i += 2;
      } else {
        i += 1; // a lone ESC
      }
    } else if (c >= 0x80 && c <= 0x9f) {
      i += 1; // C1 controls: invisible, drop
    } else {
      // Other C0 controls and DEL: show their control picture (U+2400 block).
      emit(String.fromCharCode(c === 0x7f ? 0x2421 : 0x2400 + c));
      i += 1;
    }
  }
  closeRun();
  return { text: pieces.join(""), runs };
}

/** Removes every escape sequence; what "Download" and "Copy" write. */
export function stripAnsi(text) {
  return needsParsing(text) ? parseAnsi(text).text : text;
}
