// The regular expressions the viewer highlights with: a matcher of its own
// whose time is linear in the text, instead of JavaScript's RegExp.
//
// Why not RegExp. JavaScript's engine backtracks and has no match limit, and
// its cost is not only exponential for nested quantifiers such as (a+)+$,
// ((a+))+$ or (a|aa)+$: a plain .*x takes seconds on a 64 KiB line, and
// a*a*a*x never ends on a line of a thousand a's. No check of the pattern's
// syntax can tell all of those apart from useful patterns (the server needs
// none: its PCRE2 runs under a match limit), and a RegExp call cannot be
// interrupted. So the regex filter is highlighted by this module:
//
// - A parser for the PCRE2 syntax people filter logs with (literals, escapes,
//   classes with ranges, \p{…} and POSIX names, groups of every capturing
//   kind, alternation, greedy and lazy quantifiers, anchors, word boundaries,
//   leading and scoped (?i) (?s) (?m) flags) turns the pattern into a small
//   program. What cannot be run in linear time (back-references, lookaround,
//   atomic groups, possessive quantifiers, recursion, conditionals, verbs) is
//   refused with a reason the page shows; the server still filters with it.
// - The program runs as a Pike VM: every thread of the match advances one
//   character at a time, a program position is held by at most one thread per
//   character, and earlier threads win, which gives the same leftmost-first
//   matches as a backtracking engine. One search is O(text × program); the
//   program is at most MAX_PROGRAM steps long (counted repeats are expanded).
// - Every call has a budget of VM steps (STEP_BUDGET) shared by all its
//   searches; a line that uses it up keeps the highlights found so far. So a
//   line costs at most the budget whatever the pattern — bounded, not just
//   "usually fast" — and ordinary patterns on ordinary lines never reach it.
//
// Semantics follow the server's PCRE2 (UTF and UCP on, smart-case): \d \w \s
// \b are Unicode-aware, `.` is anything but \n, `$` also matches before a
// final \n. Case-insensitive matching compares simple case folds. Where a
// repeated group can match the empty string, as in (a|b*?)+, engines differ
// in when the repetition stops; this one may mark a little less than PCRE2.

/** Longest program (in VM steps) a pattern may compile to. */
export const MAX_PROGRAM = 5000;
/** Largest count in a {n,m} repeat. */
export const MAX_REPEAT = 1000;
/** VM steps one call of `ranges` may take. */
export const STEP_BUDGET = 100_000;
/** Matches one call of `ranges` reports at most. */
export const MAX_MATCHES = 500;

class Unsupported extends Error {}
class Invalid extends Error {}

// ---- characters ---------------------------------------------------------

const NEWLINE = 0x0a;

function charOf(cp) {
  return String.fromCodePoint(cp);
}

/** The simple case fold of `cp`: the lower case of its upper case, one character to one. */
function fold(cp) {
  const s = charOf(cp);
  const upper = s.toUpperCase();
  const lower = (upper.length === s.length ? upper : s).toLowerCase();
  return lower.length === s.length ? lower.codePointAt(0) : cp;
}

function caseVariants(cp) {
  const s = charOf(cp);
  const out = [cp, fold(cp)];
  for (const t of [s.toLowerCase(), s.toUpperCase()]) if (t.length === s.length) out.push(t.codePointAt(0));
  return out;
}

const UNICODE = {
  word: /[\p{L}\p{N}_]/u,
  digit: /\p{Nd}/u,
  space: /[\s\x85]/u,
};

/** A predicate on code points that remembers its answers for ASCII. */
function cached(test) {
  const ascii = new Uint8Array(128); // 0: not asked yet, 1: no, 2: yes
  return (cp) => {
    if (cp < 128) {
      let known = ascii[cp];
      if (known === 0) ascii[cp] = known = test(cp) ? 2 : 1;
      return known === 2;
    }
    return test(cp);
  };
}

function unicodeTest(re) {
  return (cp) => re.test(charOf(cp));
}

const isWord = cached(unicodeTest(UNICODE.word));
const isDigit = cached(unicodeTest(UNICODE.digit));
const isSpace = cached(unicodeTest(UNICODE.space));
const HSPACE = new Set([0x09, 0x20, 0xa0, 0x1680, 0x180e, 0x202f, 0x205f, 0x3000]);
const isHSpace = (cp) => HSPACE.has(cp) || (cp >= 0x2000 && cp <= 0x200a);
const isVSpace = (cp) => (cp >= 0x0a && cp <= 0x0d) || cp === 0x85 || cp === 0x2028 || cp === 0x2029;

// Classes by escape letter (in and out of brackets); upper case is the complement.
const CLASS_ESCAPES = { d: isDigit, w: isWord, s: isSpace, h: isHSpace, v: isVSpace };

const POSIX = {
  alpha: "\\p{L}", digit: "\\p{Nd}", alnum: "\\p{L}\\p{Nd}", upper: "\\p{Lu}", lower: "\\p{Ll}",
  space: "\\s", blank: " \\t", word: "\\p{L}\\p{N}_", xdigit: "0-9A-Fa-f", cntrl: "\\x00-\\x1f\\x7f",
  punct: "!-\\/:-@\\[-`{-~", print: "\\x20-\\x7e", graph: "\\x21-\\x7e",
};

/** \p{name} as a predicate, or null when JavaScript has no such property. */
function propertyTest(name) {
  for (const source of [`\\p{${name}}`, `\\p{Script=${name}}`]) {
    try {
      return unicodeTest(new RegExp(source, "u"));
    } catch {
      // try the next spelling
    }
  }
  return null;
}

// ---- syntax tree ----------------------------------------------------------
//
// Nodes: {t: "char", test} one character; {t: "assert", kind}; {t: "cat", items};
// {t: "alt", items}; {t: "repeat", item, min, max (Infinity), greedy}.

const EMPTY = { t: "cat", items: [] };

class Parser {
  constructor(pattern, ignoreCase) {
    this.chars = Array.from(pattern); // code points, so astral characters are one
    this.pos = 0;
    this.flags = { i: ignoreCase, s: false, m: false };
  }

  peek(offset = 0) {
    return this.chars[this.pos + offset];
  }

  eat(text) {
    const parts = Array.from(text);
    for (let k = 0; k < parts.length; k++) if (this.peek(k) !== parts[k]) return false;
    this.pos += parts.length;
    return true;
  }

  parse() {
    const node = this.alternation();
    if (this.pos < this.chars.length) throw new Invalid("unmatched )");
    return node;
  }

  alternation() {
    const items = [this.sequence()];
    while (this.eat("|")) items.push(this.sequence());
    return items.length === 1 ? items[0] : { t: "alt", items };
  }

  // A flag setting such as (?i) lasts to the end of its group, across "|"
  // (groupBody puts the outer flags back).
  sequence() {
    const items = [];
    while (this.pos < this.chars.length && this.peek() !== "|" && this.peek() !== ")") {
      const atom = this.atom();
      if (atom === null) continue; // a comment or a flag setting
      items.push(this.quantified(atom));
    }
    return items.length === 1 ? items[0] : { t: "cat", items };
  }

  quantified(atom) {
    const q = this.quantifier();
    if (!q) return atom;
    let greedy = true;
    if (this.eat("?")) greedy = false;
    else if (this.peek() === "+") throw new Unsupported("possessive quantifiers");
    if (this.quantifier()) throw new Invalid("a quantifier follows a quantifier");
    return { t: "repeat", item: atom, min: q.min, max: q.max, greedy };
  }

  quantifier() {
    const c = this.peek();
    if (c === "*") { this.pos++; return { min: 0, max: Infinity }; }
    if (c === "+") { this.pos++; return { min: 1, max: Infinity }; }
    if (c === "?") { this.pos++; return { min: 0, max: 1 }; }
    if (c !== "{") return null;
    // {n}, {n,}, {n,m}; anything else is a literal "{", as in PCRE2.
    const rest = this.chars.slice(this.pos, this.pos + 24).join("");
    const m = /^\{(\d+)(,(\d*))?\}/.exec(rest);
    if (!m) return null;
    const min = Number(m[1]);
    const max = m[2] === undefined ? min : m[3] === "" ? Infinity : Number(m[3]);
    if (min > MAX_REPEAT || (max !== Infinity && max > MAX_REPEAT)) throw new Unsupported("repeat counts over " + MAX_REPEAT);
    if (max < min) throw new Invalid("numbers out of order in {} quantifier");
    this.pos += Array.from(m[0]).length;
    return { min, max };
  }

  atom() {
    const c = this.chars[this.pos++];
    switch (c) {
      case "(": return this.group();
      case "[": return this.charClass();
      case ".": {
        const dotAll = this.flags.s;
        return { t: "char", test: dotAll ? () => true : (cp) => cp !== NEWLINE };
      }
      case "^": return { t: "assert", kind: this.flags.m ? "line-start" : "start" };
      case "$": return { t: "assert", kind: this.flags.m ? "line-end" : "end-or-final-newline" };
      case "\\": return this.escape();
      case "*": case "+": case "?":
        throw new Invalid("quantifier does not follow a repeatable item");
      default: return this.literal(c.codePointAt(0));
    }
  }

  literal(cp) {
    if (!this.flags.i) return { t: "char", test: (x) => x === cp };
    const key = fold(cp);
    const variants = new Set(caseVariants(cp));
    return { t: "char", test: cached((x) => variants.has(x) || fold(x) === key) };
  }

  group() {
    if (this.eat("*")) throw new Unsupported("backtracking verbs");
    if (this.peek() !== "?") return this.groupBody();
    this.pos++;
    if (this.eat(":") || this.eat("|")) return this.groupBody(); // (?| branch reset: captures do not matter here
    if (this.eat("#")) {
      while (this.pos < this.chars.length && this.peek() !== ")") this.pos++;
      if (!this.eat(")")) throw new Invalid("missing ) after (?# comment");
      return null;
    }
    if (this.eat("P<") || (this.peek() === "<" && /[A-Za-z_]/.test(this.peek(1) || "") && this.eat("<"))) {
      return this.namedGroup(">");
    }
    if (this.eat("'")) return this.namedGroup("'");
    if (this.eat("=") || this.eat("!") || this.eat("<=") || this.eat("<!") || this.eat("*")) {
      throw new Unsupported("lookaround");
    }
    if (this.eat(">")) throw new Unsupported("atomic groups");
    if (this.peek() === "(") throw new Unsupported("conditional groups");
    if (this.eat("P=")) throw new Unsupported("back-references");
    if (/^(?:[R0-9+&]|-\d|P>)/.test(this.chars.slice(this.pos, this.pos + 2).join(""))) {
      throw new Unsupported("recursion");
    }
    // Flags: (?i) (?-i) (?i-s) for the rest of the group, (?i:…) for a group.
    // n (no auto-capture) and J (duplicate names) change nothing here.
    const m = /^([a-zA-Z]*)(?:-([a-zA-Z]*))?([:)])/.exec(this.chars.slice(this.pos, this.pos + 16).join(""));
    if (!m) throw new Invalid("unrecognized character after (?");
    this.pos += m[0].length;
    const next = { ...this.flags };
    for (const [letters, on] of [[m[1], true], [m[2] || "", false]]) {
      for (const f of letters) {
        if (f === "i" || f === "s" || f === "m") next[f] = on;
        else if (f !== "n" && f !== "J") throw new Unsupported(`the (?${f}) option`);
      }
    }
    if (m[3] === ")") {
      this.flags = next;
      return null;
    }
    const outer = this.flags;
    this.flags = next;
    const node = this.groupBody();
    this.flags = outer;
    return node;
  }

  namedGroup(close) {
    while (this.pos < this.chars.length && /\w/.test(this.peek())) this.pos++;
    if (!this.eat(close)) throw new Invalid("syntax error in subpattern name");
    return this.groupBody();
  }

  groupBody() {
    const outer = this.flags;
    const node = this.alternation();
    this.flags = outer;
    if (!this.eat(")")) throw new Invalid("missing closing parenthesis");
    return node;
  }

  escape() {
    const c = this.chars[this.pos++];
    if (c === undefined) throw new Invalid("\\ at end of pattern");
    switch (c) {
      case "A": return { t: "assert", kind: "start" };
      case "z": return { t: "assert", kind: "end" };
      case "Z": return { t: "assert", kind: "end-or-final-newline" };
      case "b": return { t: "assert", kind: "word" };
      case "B": return { t: "assert", kind: "not-word" };
      case "N": return { t: "char", test: (cp) => cp !== NEWLINE };
      case "Q": {
        const items = [];
        while (this.pos < this.chars.length && !(this.peek() === "\\" && this.peek(1) === "E")) {
          items.push(this.literal(this.chars[this.pos++].codePointAt(0)));
        }
        this.eat("\\E");
        return items.length === 1 ? items[0] : { t: "cat", items };
      }
      case "E": return null; // an \E without \Q is ignored
      default: {
        const test = this.classEscape(c);
        if (test) return { t: "char", test };
        return this.literal(this.escapedChar(c));
      }
    }
  }

  /** \d \W \p{L} …: a predicate, or null when `c` does not name a class. */
  classEscape(c) {
    const lower = c.toLowerCase();
    if (Object.hasOwn(CLASS_ESCAPES, lower)) {
      const test = CLASS_ESCAPES[lower];
      return c === lower ? test : (cp) => !test(cp);
    }
    if (c === "p" || c === "P") {
      let name;
      if (this.eat("{")) {
        const end = this.chars.indexOf("}", this.pos);
        if (end === -1) throw new Invalid("malformed \\p{");
        name = this.chars.slice(this.pos, end).join("");
        this.pos = end + 1;
      } else {
        name = this.chars[this.pos++] || "";
      }
      let negated = c === "P";
      if (name.startsWith("^")) { negated = !negated; name = name.slice(1); }
      const test = name === "Any" ? () => true : name === "L&" ? propertyTest("LC") : propertyTest(name);
      if (!test) throw new Unsupported(`the property \\p{${name}}`);
      const t = cached(test);
      return negated ? (cp) => !t(cp) : t;
    }
    return null;
  }

  /** The character an escape such as \n, \x41 or \. stands for. */
  escapedChar(c) {
    const simple = { t: 0x09, n: 0x0a, r: 0x0d, f: 0x0c, e: 0x1b, a: 0x07 };
    if (c in simple) return simple[c];
    if (c === "0") {
      if (/[0-7]/.test(this.peek() || "")) throw new Unsupported("octal escapes");
      return 0;
    }
    if (c === "x") {
      if (this.eat("{")) {
        const end = this.chars.indexOf("}", this.pos);
        const hex = end === -1 ? "" : this.chars.slice(this.pos, end).join("");
        if (!/^[0-9a-fA-F]{1,6}$/.test(hex) || parseInt(hex, 16) > 0x10ffff) throw new Invalid("malformed \\x{");
        this.pos = end + 1;
        return parseInt(hex, 16);
      }
      let hex = "";
      while (hex.length < 2 && /[0-9a-fA-F]/.test(this.peek() || "")) hex += this.chars[this.pos++];
      return hex ? parseInt(hex, 16) : 0;
    }
    if (c === "c") {
      const x = this.chars[this.pos++];
      if (!x || x.codePointAt(0) > 0x7e) throw new Invalid("\\c must be followed by a printable ASCII character");
      return x.toUpperCase().codePointAt(0) ^ 0x40;
    }
    if (/[1-9gk]/.test(c)) throw new Unsupported("back-references");
    if (/[A-Za-z0-9]/.test(c)) throw new Unsupported(`the escape \\${c}`);
    return c.codePointAt(0); // \. \* \\ \/ …: the character itself
  }

  charClass() {
    let negated = false;
    if (this.eat("^")) negated = true;
    const tests = [];
    const ranges = [];
    let first = true;
    for (;;) {
      const c = this.chars[this.pos];
      if (c === undefined) throw new Invalid("missing terminating ] for character class");
      if (c === "]" && !first) { this.pos++; break; }
      first = false;
      if (c === "[" && this.peek(1) === ":") {
        const end = this.chars.indexOf("]", this.pos + 2);
        const name = end === -1 ? "" : this.chars.slice(this.pos + 2, end).join("");
        if (/^\^?[a-z]+:$/.test(name)) {
          const posix = POSIX[name.slice(0, -1)];
          if (!posix) throw new Unsupported(`the class [:${name}]`);
          tests.push(cached(unicodeTest(new RegExp(`[${posix}]`, "u"))));
          this.pos = end + 1;
          continue;
        }
      }
      const low = this.classChar(tests);
      if (low === null) continue; // it was a class escape such as \d
      if (this.peek() === "-" && this.peek(1) !== "]" && this.peek(1) !== undefined) {
        this.pos++;
        const high = this.classChar(tests);
        if (high === null) throw new Unsupported("a range that ends in a class");
        if (high < low) throw new Invalid("range out of order in character class");
        ranges.push([low, high]);
      } else {
        ranges.push([low, low]);
      }
    }
    const ignoreCase = this.flags.i;
    const inRanges = (cp) => ranges.some(([a, b]) => cp >= a && cp <= b);
    const member = (cp) =>
      (ignoreCase ? caseVariants(cp).some(inRanges) : inRanges(cp)) || tests.some((t) => t(cp));
    const test = cached(member);
    return { t: "char", test: negated ? (cp) => !test(cp) : test };
  }

  /** One character in a class (a code point), or null after adding a class escape to `tests`. */
  classChar(tests) {
    const c = this.chars[this.pos++];
    if (c !== "\\") return c.codePointAt(0);
    const e = this.chars[this.pos++];
    if (e === undefined) throw new Invalid("\\ at end of pattern");
    if (e === "b") return 0x08;
    if (e === "N" || e === "Q" || e === "E" || e === "R" || e === "X") throw new Unsupported(`\\${e} in a class`);
    const test = this.classEscape(e);
    if (test) {
      tests.push(test);
      return null;
    }
    return this.escapedChar(e);
  }
}

// ---- program ------------------------------------------------------------

const CHAR = 0;
const SPLIT = 1; // try a, then b
const JMP = 2;
const ASSERT = 3;
const MATCH = 4;

class Compiler {
  constructor() {
    this.op = [];
    this.a = [];
    this.b = [];
    this.test = [];
  }

  emit(op, a = 0, b = 0, test = null) {
    if (this.op.length >= MAX_PROGRAM) throw new Unsupported("a pattern this large");
    this.op.push(op);
    this.a.push(a);
    this.b.push(b);
    this.test.push(test);
    return this.op.length - 1;
  }

  node(n) {
    switch (n.t) {
      case "char": this.emit(CHAR, 0, 0, n.test); break;
      case "assert": this.emit(ASSERT, n.kind); break;
      case "cat": for (const item of n.items) this.node(item); break;
      case "alt": {
        const jumps = [];
        for (let k = 0; k < n.items.length; k++) {
          if (k < n.items.length - 1) {
            const split = this.emit(SPLIT);
            this.a[split] = split + 1;
            this.node(n.items[k]);
            jumps.push(this.emit(JMP));
            this.b[split] = this.op.length;
          } else {
            this.node(n.items[k]);
          }
        }
        for (const j of jumps) this.a[j] = this.op.length;
        break;
      }
      case "repeat": this.repeat(n); break;
      default: throw new Error("unknown node " + n.t);
    }
  }

  /** A split whose preferred branch is the next step (greedy) or `target` (lazy). */
  split(greedy, target) {
    const pc = this.emit(SPLIT);
    if (greedy) { this.a[pc] = pc + 1; this.b[pc] = target; } else { this.a[pc] = target; this.b[pc] = pc + 1; }
    return pc;
  }

  repeat({ item, min, max, greedy }) {
    for (let k = 0; k < min; k++) this.node(item);
    if (max === Infinity) {
      // L: split(body, out); body; jmp L
      const loop = this.split(greedy, -1);
      this.node(item);
      this.emit(JMP, loop);
      this.patchOut(loop, greedy, this.op.length);
      return;
    }
    // (item (item (…)?)?)?: each optional copy can stop the rest.
    const exits = [];
    for (let k = min; k < max; k++) {
      exits.push(this.split(greedy, -1));
      this.node(item);
    }
    for (const pc of exits) this.patchOut(pc, greedy, this.op.length);
  }

  patchOut(pc, greedy, out) {
    if (greedy) this.b[pc] = out; else this.a[pc] = out;
  }
}

// ---- running ------------------------------------------------------------

function codePointBefore(text, p) {
  if (p <= 0) return -1;
  const low = text.charCodeAt(p - 1);
  if (low >= 0xdc00 && low <= 0xdfff && p >= 2) {
    const high = text.charCodeAt(p - 2);
    if (high >= 0xd800 && high <= 0xdbff) return text.codePointAt(p - 2);
  }
  return low;
}

class Program {
  constructor(c) {
    this.op = Int8Array.from(c.op);
    this.a = c.a.slice();
    this.b = Int32Array.from(c.b);
    this.test = c.test;
    const size = this.op.length;
    this.lists = [0, 1].map(() => ({ pc: new Int32Array(size), start: new Int32Array(size), length: 0 }));
    this.seen = new Int32Array(size); // the generation that last added each pc
    this.generation = 0;
    this.stack = new Int32Array(2 * size + 2); // each step pushes at most two
    this.fuel = 0;
  }

  /** A new thread list (one per text position): no pc is in it yet. */
  bump() {
    if (++this.generation > 0x3fffffff) {
      this.seen.fill(0);
      this.generation = 1;
    }
  }

  holds(kind, text, p, prev, cur) {
    const n = text.length;
    switch (kind) {
      case "start": return p === 0;
      case "end": return p === n;
      case "end-or-final-newline": return p === n || (p === n - 1 && cur === NEWLINE);
      case "line-start": return p === 0 || prev === NEWLINE;
      case "line-end": return p === n || cur === NEWLINE;
      case "word": return (prev !== -1 && isWord(prev)) !== (cur !== -1 && isWord(cur));
      case "not-word": return (prev !== -1 && isWord(prev)) === (cur !== -1 && isWord(cur));
      default: return false;
    }
  }

  /** Adds the thread at `pc` and everything it reaches without reading, in priority order. */
  add(list, pc0, start, text, p, prev, cur) {
    const { op, a, b, seen, stack } = this;
    const generation = this.generation;
    let top = 0;
    stack[top++] = pc0;
    while (top > 0) {
      const pc = stack[--top];
      if (seen[pc] === generation) continue;
      seen[pc] = generation;
      this.fuel--;
      switch (op[pc]) {
        case JMP: stack[top++] = a[pc]; break;
        case SPLIT: stack[top++] = b[pc]; stack[top++] = a[pc]; break; // a first
        case ASSERT: if (this.holds(a[pc], text, p, prev, cur)) stack[top++] = pc + 1; break;
        default: // CHAR, MATCH: a thread that waits for the next character (or has matched)
          list.pc[list.length] = pc;
          list.start[list.length] = start;
          list.length++;
      }
    }
  }

  /**
   * The leftmost-first match starting at or after `from`: [start, end], null
   * when there is none, or undefined when the budget ran out.
   */
  search(text, from) {
    const n = text.length;
    let [current, next] = this.lists;
    current.length = 0;
    this.bump();
    let match = null;
    let p = from;
    let prev = codePointBefore(text, p);
    for (;;) {
      const cur = p < n ? text.codePointAt(p) : -1;
      if (match === null) this.add(current, 0, p, text, p, prev, cur); // the newest thread comes last
      if (current.length === 0 && (match !== null || p >= n)) break; // else: on to the next start
      if (this.fuel <= 0) return undefined;
      const width = cur > 0xffff ? 2 : 1;
      const np = p + width;
      const ncur = np < n ? text.codePointAt(np) : -1;
      this.bump();
      next.length = 0;
      for (let k = 0; k < current.length; k++) {
        const pc = current.pc[k];
        if (this.op[pc] === MATCH) {
          match = [current.start[k], p];
          break; // threads after this one have lower priority
        }
        this.fuel--;
        if (cur !== -1 && this.test[pc](cur)) this.add(next, pc + 1, current.start[k], text, np, cur, ncur);
      }
      if (p >= n) break;
      [current, next] = [next, current];
      p = np;
      prev = cur;
    }
    return match;
  }
}

/**
 * Compiles a PCRE2 pattern for highlighting.
 *
 * Returns `{regex}`, where `regex.ranges(text)` gives the `[start, end]` of
 * the non-empty matches in `text` (UTF-16 offsets, in order), or
 * `{unsupported: reason}` when the pattern uses what this matcher cannot run
 * in linear time, or `{invalid: reason}` when it is not a valid pattern.
 */
export function compileRegex(pattern, { ignoreCase = false } = {}) {
  let tree;
  const parser = new Parser(pattern, ignoreCase);
  try {
    // Leading option letters PCRE2 reads at the very start, like (*UTF).
    if (/^\(\*[A-Z_]+(=\d+)?\)/.test(pattern)) throw new Unsupported("backtracking verbs");
    tree = parser.parse();
    const compiler = new Compiler();
    compiler.node(tree);
    compiler.emit(MATCH);
    const program = new Program(compiler);
    return { regex: new Regex(program) };
  } catch (error) {
    if (error instanceof Unsupported) return { unsupported: error.message };
    if (error instanceof Invalid) return { invalid: error.message };
    throw error;
  }
}

class Regex {
  constructor(program) {
    this.program = program;
  }

  /** The non-empty matches in `text`, at most `MAX_MATCHES`, within `STEP_BUDGET` VM steps. */
  ranges(text, budget = STEP_BUDGET) {
    const program = this.program;
    program.fuel = budget;
    const out = [];
    let from = 0;
    while (from <= text.length && out.length < MAX_MATCHES) {
      const match = program.search(text, from);
      if (!match) break; // none left, or out of budget
      const [start, end] = match;
      if (end > start) {
        out.push([start, end]);
        from = end;
      } else {
        from = end + (text.codePointAt(end) > 0xffff ? 2 : 1);
      }
    }
    this.exhausted = program.fuel <= 0;
    return out;
  }
}
