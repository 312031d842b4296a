// The access token, for servers started with one (PROTOCOL.md, "Authentication").
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

/** `fetch` with the token (if any) as a Bearer header. */
export function authFetch(url, init = {}) {
  const headers = new Headers(init.headers || {});
  const token = currentToken();
  if (token) headers.set("Authorization", "Bearer " + token);
  return fetch(url, { ...init, headers, cache: "no-store" });
}

/**
 * Asks the user for a token with the page's token dialog. One dialog at a
 * time: callers that ask while it is open share its answer. Resolves to true
 * when a token was entered, false when the user cancelled.
 */
export class TokenPrompt {
  constructor(dialog) {
    this.dialog = dialog;
    this.form = dialog.querySelector("form");
    this.input = dialog.querySelector("input");
    this.message = dialog.querySelector(".dialog-message");
    this.pending = null;
  }

  ask(rejected) {
    if (this.pending) return this.pending;
    this.pending = new Promise((resolve) => {
      this.message.textContent = rejected
        ? "The server did not accept that token. Enter the right one."
        : "This logcast server needs an access token.";
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
        finish(true);
      };
      const onClose = () => finish(false);
      this.form.addEventListener("submit", onSubmit);
      this.dialog.addEventListener("close", onClose);
      this.dialog.showModal();
      this.input.focus();
    });
    return this.pending;
  }
}
