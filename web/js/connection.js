// The viewer's side of `/ws`: one WebSocket at a time, reconnecting by itself
// and resuming without losing or repeating a line.
//
// Guarantees to the page:
// - Lines are handed over in `seq` order, each at most once per stream: a line
//   whose seq is not above the last one handed over is dropped (and counted).
// - After a dropped connection it reconnects with exponential backoff and
//   jitter, asking for `after=<last seq>&epoch=<epoch>` so the server sends
//   exactly the missed lines (or a `gap` saying why it cannot).
// - `onReset` is called whenever what follows is a new stream (a `subscribed`
//   reply, or a fresh connection under another filter): the page clears.
// - A refused upgrade is diagnosed (a browser cannot read the 4xx body of a
//   WebSocket): 401 asks for a token, 403 stops with the server's reason, a
//   bad filter is found by subscribing to it on a throw-away connection, so
//   the server's own error message can be shown.

import { authFetch, authProblem, webSocketProtocols } from "./auth.js";
import { filterKey, filterMessage, filterParams } from "./filter.js";

const BASE_DELAY_MS = 500;
const MAX_DELAY_MS = 15000;
const STABLE_AFTER_MS = 5000; // a connection this old resets the backoff
const PROBE_TIMEOUT_MS = 5000;

/** Backoff with "equal jitter": half fixed, half random, doubling per attempt. */
export function retryDelay(attempt, random = Math.random) {
  const ceiling = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** attempt);
  return Math.round(ceiling / 2 + random() * ceiling / 2);
}

function wsURL(query) {
  const url = new URL("/ws", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  url.search = query.toString();
  return url.toString();
}

/** Splits one text frame into objects (NDJSON; a frame never splits an object). */
function parseFrame(data, onObject, onBad) {
  let start = 0;
  while (start < data.length) {
    let end = data.indexOf("\n", start);
    if (end === -1) end = data.length;
    if (end > start) {
      let obj;
      try {
        obj = JSON.parse(data.slice(start, end));
      } catch {
        onBad();
        obj = null;
      }
      if (obj && typeof obj === "object") onObject(obj);
    }
    start = end + 1;
  }
}

export class LogStream {
  /**
   * @param {object} options
   * @param {object} options.filter    the filter to stream (see filter.js)
   * @param {number} options.backlog   lines of history to ask for on a fresh stream
   * @param {object} options.handlers  onHello(hello), onObject(obj), onReset(reason),
   *   onStatus(status), onFilterError(error, hint), onFilterAccepted(filter),
   *   onAuthRequired(problem) -> Promise<boolean> (problem: see auth.js authProblem)
   */
  constructor({ filter, backlog, handlers }) {
    this.handlers = handlers;
    this.backlog = backlog;
    this.desired = filter; // what the page asks for
    this.desiredRejected = false; // the server refused `desired`
    this.good = null; // the last filter the server accepted
    this.streamKey = null; // the filter the lines handed over so far belong to
    this.fields = ""; // `fields` of the URL: the structured fields sent with each line ("" for none)
    this.epoch = null;
    this.lastSeq = null;

    this.ws = null;
    this.socketFilter = null; // the filter of the current socket's stream
    this.helloSeen = false;
    this.openedAt = 0;
    this.pendingSubscribes = []; // filters sent in `subscribe`, awaiting a reply
    this.attempt = 0;
    this.retryTimer = 0;
    this.retryAt = 0;
    this.stopped = false;

    // Counters, for the status line and the test hook.
    this.connections = 0; // WebSocket connections opened
    this.duplicates = 0; // lines dropped for repeating a seq
    this.recentContext = new Set(); // seqs of the context lines seen last (at most 1024)
    this.badObjects = 0; // objects that were not JSON
    this.status = { state: "idle" };

    addEventListener("online", () => this.retryNow());
  }

  // ---- public ---------------------------------------------------------

  start() {
    this.connect();
  }

  /** Changes the filter: a `subscribe` on the open socket, or the next connection's filter. */
  setFilter(filter, backlog = this.backlog) {
    this.desired = filter;
    this.backlog = backlog;
    this.desiredRejected = false;
    if (this.isLive()) {
      this.sendSubscribe(filter);
    } else if (!this.ws) {
      this.retryNow(); // waiting or stopped (perhaps on the old, bad filter)
    }
    // While connecting, the hello handler subscribes if the filter changed.
  }

  /**
   * Asks for structured fields with each line (`fields=*`, or "" for none).
   * A stream cannot change them: this starts a fresh one (the page clears
   * and gets the backlog again, now with fields).
   */
  setFields(fields) {
    if (fields === this.fields) return;
    this.fields = fields;
    this.streamKey = null;
    this.connect();
  }

  /** Connects at once if a retry is waiting (the user asked, or the network came back). */
  retryNow() {
    if (this.ws) return;
    clearTimeout(this.retryTimer);
    this.stopped = false;
    this.connect();
  }

  isLive() {
    return this.ws !== null && this.helloSeen && this.ws.readyState === WebSocket.OPEN;
  }

  // ---- connecting -----------------------------------------------------

  connectFilter() {
    return this.desiredRejected && this.good ? this.good : this.desired;
  }

  connect() {
    clearTimeout(this.retryTimer);
    this.generation = (this.generation || 0) + 1;
    if (this.ws) {
      const old = this.ws;
      this.ws = null; // its close handler now ignores it
      old.close();
    }
    const filter = this.connectFilter();
    const key = filterKey(filter);
    const query = filterParams(filter);
    query.set("backlog", String(this.backlog));
    if (this.fields) query.set("fields", this.fields);
    const resuming = this.lastSeq !== null && this.epoch !== null && this.streamKey === key;
    if (resuming) {
      query.set("after", String(this.lastSeq));
      query.set("epoch", this.epoch);
    }

    let ws;
    const protocols = webSocketProtocols();
    try {
      ws = new WebSocket(wsURL(query), protocols);
    } catch (error) {
      this.setStatus({ state: "stopped", error: "cannot connect: " + error.message });
      return;
    }
    this.ws = ws;
    this.socketProtocols = String(protocols); // the token this socket offered
    this.socketFilter = filter;
    this.helloSeen = false;
    this.pendingSubscribes = [];
    let opened = false;
    this.setStatus({ state: "connecting", resuming });

    ws.onopen = () => {
      opened = true;
      this.connections++;
      this.openedAt = performance.now();
    };
    ws.onmessage = (event) => {
      if (this.ws !== ws || typeof event.data !== "string") return;
      parseFrame(event.data, (obj) => this.receive(obj, resuming), () => this.badObjects++);
    };
    ws.onclose = (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.helloSeen = false;
      this.pendingSubscribes = [];
      if (!opened) {
        this.diagnose();
        return;
      }
      if (performance.now() - this.openedAt > STABLE_AFTER_MS) this.attempt = 0;
      this.scheduleRetry(0, `connection closed (${event.code})`);
    };
  }

  scheduleRetry(minimumMs = 0, reason = "") {
    clearTimeout(this.retryTimer);
    const delay = Math.max(minimumMs, retryDelay(this.attempt));
    this.attempt = Math.min(this.attempt + 1, 10);
    this.retryAt = performance.now() + delay;
    this.retryTimer = setTimeout(() => this.connect(), delay);
    this.setStatus({ state: "waiting", retryAt: this.retryAt, reason });
  }

  stop(error, hint) {
    clearTimeout(this.retryTimer);
    this.stopped = true;
    this.setStatus({ state: "stopped", error, hint });
  }

  setStatus(status) {
    this.status = status;
    this.handlers.onStatus(status);
  }

  // ---- the stream -----------------------------------------------------

  receive(obj, resuming) {
    switch (obj.type) {
      case "hello": {
        this.helloSeen = true;
        if (this.epoch !== null && obj.epoch !== this.epoch) this.lastSeq = null; // new seq space
        this.epoch = obj.epoch;
        const key = filterKey(this.socketFilter);
        this.good = this.socketFilter;
        if (!resuming) {
          // A fresh stream: what the page shows belongs to another filter or epoch.
          this.streamKey = key;
          this.lastSeq = null;
          this.handlers.onReset("connect");
        }
        this.setStatus({ state: "live" });
        this.handlers.onHello(obj);
        if (!this.desiredRejected && filterKey(this.desired) !== key) this.sendSubscribe(this.desired);
        else if (!this.desiredRejected) this.handlers.onFilterAccepted(this.socketFilter);
        break;
      }
      case "line":
        if (typeof obj.seq === "number") {
          // A context line before a match may be older than lines of other files
          // sent before it: an older seq is a duplicate only if that context line
          // came already (docs/PROTOCOL.md, "Context lines").
          const older = this.lastSeq !== null && obj.seq <= this.lastSeq;
          if (obj.context === true) {
            if (older && this.recentContext.has(obj.seq)) {
              this.duplicates++;
              return;
            }
            this.recentContext.add(obj.seq);
            if (this.recentContext.size > 1024) this.recentContext.delete(this.recentContext.values().next().value);
          } else if (older) {
            this.duplicates++;
            return;
          }
          if (!older) this.lastSeq = obj.seq;
        }
        this.handlers.onObject(obj);
        break;
      case "separator":
        this.handlers.onObject(obj);
        break;
      case "gap":
        if (obj.reason === "restart") this.lastSeq = null;
        this.handlers.onObject(obj);
        break;
      case "source":
        this.handlers.onObject(obj);
        break;
      case "subscribed": {
        const filter = this.pendingSubscribes.shift() || this.desired;
        this.socketFilter = filter;
        this.good = filter;
        this.streamKey = filterKey(filter);
        this.lastSeq = null; // the backlog that follows may repeat earlier seqs
        this.handlers.onReset("subscribed");
        if (filterKey(filter) === filterKey(this.desired)) this.handlers.onFilterAccepted(filter);
        break;
      }
      case "error": {
        const filter = this.pendingSubscribes.shift();
        if (filter && filterKey(filter) === filterKey(this.desired)) {
          this.desiredRejected = true;
          this.handlers.onFilterError(obj.error || "filter refused", obj.hint || "");
        } else if (!filter) {
          this.handlers.onServerError?.(obj.error || "error", obj.hint || "");
        }
        break;
      }
      default:
        break; // unknown object types are ignored (forward compatible)
    }
  }

  sendSubscribe(filter) {
    this.pendingSubscribes.push(filter);
    this.ws.send(JSON.stringify({ type: "subscribe", filter: filterMessage(filter), backlog: this.backlog }));
  }

  // ---- why a connection was refused -------------------------------------

  async diagnose() {
    const generation = this.generation;
    const superseded = () => generation !== this.generation; // someone connected meanwhile
    let response;
    try {
      response = await authFetch("/api/v1/sources");
    } catch {
      if (!superseded()) this.scheduleRetry(0, "server unreachable");
      return;
    }
    const body = await response.json().catch(() => ({}));
    if (superseded()) return;
    if (response.status === 401) {
      const problem = authProblem(response, body);
      if (problem.stale) { // a token was entered meanwhile: try it
        this.retryNow();
        return;
      }
      this.setStatus({ state: "stopped", error: problem.reason });
      const entered = await this.handlers.onAuthRequired(problem);
      if (superseded()) return;
      if (entered) this.retryNow();
      else this.stop(problem.reason, "press Retry now to enter a token");
      return;
    }
    if (response.ok && String(webSocketProtocols()) !== this.socketProtocols) {
      // The socket went out before a token was entered; the server lets us in now.
      this.retryNow();
      return;
    }
    if (response.status === 403) {
      this.stop(body.error || "forbidden", body.hint || "");
      return;
    }
    if (response.status === 503) {
      const after = Number(response.headers.get("Retry-After"));
      this.scheduleRetry(Number.isFinite(after) ? after * 1000 : 0, body.error || "server busy");
      return;
    }
    if (!response.ok) {
      this.scheduleRetry(0, `server answered ${response.status}`);
      return;
    }
    // The server is up and lets us in: most likely the filter was refused (400).
    const verdict = await this.probeFilter(this.connectFilter());
    if (superseded()) return;
    if (verdict && verdict.error) {
      this.desiredRejected = true;
      this.handlers.onFilterError(verdict.error, verdict.hint || "");
      if (this.good && filterKey(this.good) !== filterKey(this.desired)) this.retryNow();
      else this.stop("filter refused", verdict.error);
      return;
    }
    this.scheduleRetry(0, "connection refused");
  }

  /** Subscribes to `filter` on a throw-away connection to hear the server's verdict. */
  probeFilter(filter) {
    return new Promise((resolve) => {
      const query = new URLSearchParams({ backlog: "0" });
      let ws;
      try {
        ws = new WebSocket(wsURL(query), webSocketProtocols());
      } catch {
        resolve(null);
        return;
      }
      const done = (verdict) => {
        clearTimeout(timer);
        ws.onclose = null;
        try { ws.close(); } catch { /* already closed */ }
        resolve(verdict);
      };
      const timer = setTimeout(() => done(null), PROBE_TIMEOUT_MS);
      ws.onopen = () => ws.send(JSON.stringify({ type: "subscribe", filter: filterMessage(filter), backlog: 0 }));
      ws.onmessage = (event) => parseFrame(String(event.data), (obj) => {
        if (obj.type === "subscribed") done({ ok: true });
        else if (obj.type === "error") done({ error: obj.error, hint: obj.hint });
      }, () => {});
      ws.onclose = () => done(null);
    });
  }
}
