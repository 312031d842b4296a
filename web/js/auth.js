// The access token, for servers started with one (docs/PROTOCOL.md, "Authentication and origin").
//
// The token lives in sessionStorage (gone when the tab closes), travels as
// `Authorization: Bearer` on fetches and, since browsers cannot set headers
// on a WebSocket, as the subprotocol `logcast.token.<base64url>` next to
// `logcast.v1`. It never goes into a URL.

const STORAGE_KEY = "logcast.token";

export function getToken() {
  try {
    return sessionStorage.getItem(STORAGE_KEY) || null;
  } catch {
    return null; // storage disabled
  }
}

export function setToken(token) {
  try {
    if (token) sessionStorage.setItem(STORAGE_KEY, token);
    else sessionStorage.removeItem(STORAGE_KEY);
  } catch {
    // storage disabled: the token lasts until the page is reloaded
  }
  memoryToken = token || null;
}

let memoryToken = null;

function currentToken() {
  return getToken() || memoryToken;
}

/** base64url (RFC 4648 §5) of the UTF-8 bytes of `text`, without padding. */
export function base64url(text) {
  const bytes = new TextEncoder().encode(text);
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** The WebSocket subprotocol list to offer, or undefined when there is no token. */
export function webSocketProtocols() {
  const token = currentToken();
  return token ? ["logcast.v1", "logcast.token." + base64url(token)] : undefined;
}

/** Responses to `authFetch`, and the token each request carried (null: none). */
const sentWith = new WeakMap();

/**
 * `fetch` with the token (if any) as a Bearer header. A 401 to a request that
 * carried a token means the server does not accept it: it is forgotten, so a
 * wrong token is never kept for the rest of the session.
 */
export async function authFetch(url, init = {}) {
  const headers = new Headers(init.headers || {});
  const token = currentToken();
  if (token) headers.set("Authorization", "Bearer " + token);
  const response = await fetch(url, { ...init, headers, cache: "no-store" });
  sentWith.set(response, token);
  if (response.status === 401 && token && currentToken() === token) setToken(null);
  return response;
}

/**
 * What a 401 answer to `authFetch` says, from its JSON body and its
 * `WWW-Authenticate` challenge (RFC 6750: `error="invalid_token"` when a
 * token was sent and refused):
 *   reason   the server's `error` ("token required", "token not accepted")
 *   hint     the server's `hint`
 *   rejected a token was sent and refused
 *   stale    a new token was entered while the request was under way:
 *            try again with it instead of asking
 */
export function authProblem(response, body = {}) {
  const challenge = response.headers.get("WWW-Authenticate") || "";
  const sent = sentWith.get(response) ?? null;
  const rejected = /error="?invalid_token/.test(challenge) || sent !== null;
  const now = currentToken();
  return {
    reason: (body && typeof body.error === "string" && body.error) || (rejected ? "token not accepted" : "token required"),
    hint: (body && typeof body.hint === "string" && body.hint) || "",
    rejected,
    stale: now !== null && now !== sent,
  };
}

/**
 * Asks the user for a token with the page's token dialog. One dialog at a
 * time: callers that ask while it is open share its answer. Resolves to true
 * when a token was entered, false when the user cancelled.
 *
 * `problem` is what the server said (see `authProblem`). When it refused a
 * token, the dialog shows the server's reason and hint.
 */
export class TokenPrompt {
  constructor(dialog) {
    this.dialog = dialog;
    this.form = dialog.querySelector("form");
    this.input = dialog.querySelector("input");
    this.message = dialog.querySelector(".dialog-message");
    this.reason = dialog.querySelector(".dialog-reason");
    this.pending = null;
    this.shown = 0; // times the dialog was opened (for the test hook)
  }

  describe(problem) {
    const rejected = Boolean(problem && problem.rejected);
    this.dialog.dataset.reason = (problem && problem.reason) || "token required";
    this.message.textContent = rejected
      ? "The server did not accept that token. Enter the right one."
      : "This logcast server needs an access token.";
    this.reason.hidden = !rejected;
    this.reason.textContent = rejected
      ? problem.reason + (problem.hint ? ` — ${problem.hint}` : "")
      : "";
  }

  ask(problem = {}) {
    if (this.pending) {
      // A refusal learned while the dialog is open is worth showing.
      if (problem.rejected) this.describe(problem);
      return this.pending;
    }
    this.pending = new Promise((resolve) => {
      this.describe(problem);
      this.input.value = "";
      const finish = (ok) => {
        this.form.removeEventListener("submit", onSubmit);
        this.dialog.removeEventListener("close", onClose);
        if (this.dialog.open) this.dialog.close();
        this.pending = null;
        resolve(ok);
      };
      const onSubmit = (event) => {
        event.preventDefault(); // no navigation: form-action is 'none'
        const token = this.input.value.trim();
        if (!token) return;
        setToken(token);
        this.input.value = "";
        finish(true);
      };
      const onClose = () => finish(false);
      this.form.addEventListener("submit", onSubmit);
      this.dialog.addEventListener("close", onClose);
      this.shown++;
      this.dialog.showModal();
      this.input.focus();
    });
    return this.pending;
  }
}
