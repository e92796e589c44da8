// api.js — the page's one door to the server: REST calls, its session, WebSocket addresses.
//
// Contract: request(method, path, {json, text}) resolves to {status, message, data, headers}
// for a successful reply in the JSON envelope, and rejects with an ApiError whose `message` is
// the server's own (the envelope's `message`: it says what was wrong and what would be right),
// `status` the HTTP status (0 when the server could not be reached) and `data` the envelope's
// data (a 422 about worker code carries [{line: N}]). getText(path) does the same for the
// routes that answer plain text. socketURL(path) is the ws:// or wss:// address of a path here.
// whoAmI() reads GET /session: {username, role, scheme, xsrf}; signOut() ends the session.
// socketRefusal() says why the server refuses this page's WebSockets (its message), or null.
//
// Paths are the API's own ("/jobs"): every call, socket and link goes through address(path),
// which puts the server's path prefix (--base-path) in front, so no module needs to know it.
//
// Authentication: the browser sends what it holds, the session cookie set by the sign-in form
// (/login) or HTTP Basic credentials it was given; both also reach WebSocket upgrades. Every
// request says X-Requested-With, so a refusal comes without a Basic challenge and the browser
// never pops up its own dialog; a 401 (the session expired or was revoked) sends the page to
// the sign-in form. Unsafe methods carry the XSRF token (X-XSRFToken), which the server
// requires of requests authenticated by the session cookie.

const UNSAFE = new Set(["POST", "PUT", "DELETE", "PATCH"]);
// The pages are served at BASE + "/" and BASE + "/login", this file at
// BASE + "/static/js/api.js": BASE is two folders up ("/jobjoker" under --base-path
// /jobjoker, "" at the root). Asking the server would cost a request before the first one.
export const BASE = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
export const address = (path) => BASE + path;
let xsrfToken = null;

function xsrf() {
  // The _xsrf cookie is the source (Tornado sets it and checks the header against it); the
  // token /session gave is the fallback while no cookie is readable.
  const cookie = document.cookie.split("; ").find((part) => part.startsWith("_xsrf="));
  return cookie ? decodeURIComponent(cookie.slice(6)) : xsrfToken;
}

export class ApiError extends Error {
  constructor(message, status, data) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.data = data || [];
  }

  /** The 1-based line a refused piece of worker code was refused at, or null. */
  get line() {
    const line = this.data[0] && this.data[0].line;
    return Number.isInteger(line) ? line : null;
  }
}

const UNREACHABLE = "could not reach the server; check the connection and try again";

async function send(method, path, {json, text, accept = "application/json"} = {}) {
  const headers = {Accept: accept, "X-Requested-With": "JobJoker"};
  if (UNSAFE.has(method) && xsrf()) headers["X-XSRFToken"] = xsrf();
  const init = {method, headers, credentials: "same-origin", cache: "no-store"};
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers["Content-Type"] = "application/json";
  } else if (text !== undefined) {
    init.body = text;
    init.headers["Content-Type"] = "text/plain; charset=UTF-8";
  }
  try {
    return await fetch(address(path), init);
  } catch {
    throw new ApiError(UNREACHABLE, 0, []);
  }
}

async function refusal(response) {
  // Errors always come in the envelope, even from the plain-text routes.
  let envelope = null;
  try {
    envelope = await response.json();
  } catch {
    // not JSON: a proxy's error page, say
  }
  if (response.status === 401) {
    window.location.assign(address("/login")); // signed out, or the session expired
  }
  const message = envelope && typeof envelope.message === "string" && envelope.message
    ? envelope.message
    : `the server answered ${response.status} ${response.statusText}`.trim();
  return new ApiError(message, response.status, envelope && envelope.data);
}

export async function request(method, path, options = {}) {
  const response = await send(method, path, options);
  if (!response.ok) throw await refusal(response);
  let envelope;
  try {
    envelope = await response.json();
  } catch {
    throw new ApiError(`the server's reply to ${method} ${path} is not JSON`, response.status);
  }
  return {status: response.status, message: envelope.message || "", data: envelope.data || [],
    headers: response.headers};
}

export async function getText(path) {
  const response = await send("GET", path, {accept: "text/plain"});
  if (!response.ok) throw await refusal(response);
  return response.text();
}

/** Who is signed in ({username, role, scheme, xsrf}); keeps the XSRF token for later calls. */
export async function whoAmI() {
  const me = (await request("GET", "/session")).data[0];
  xsrfToken = me.xsrf;
  return me;
}

export async function signOut() {
  await request("DELETE", "/session");
  window.location.assign(address("/login"));
}

/** "?a=1&b=x" from an object, leaving out empty values ("" for none at all). */
export function query(parameters) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(parameters)) {
    if (value !== "" && value !== null && value !== undefined) search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

export function socketURL(path) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${address(path)}`;
}

/** Why the server refuses this page's WebSockets (its message, naming what to change), or
 * null. A browser tells a page nothing about a refused handshake, so this asks over HTTP:
 * the server applies the handshake's origin rule to this page's origin and Host. */
export async function socketRefusal() {
  const reply = await request("GET", "/streams/origin" + query({origin: location.origin}));
  return reply.data[0].allowed ? null : reply.message;
}

export const jobPath = (id, suffix = "") => `/jobs/${encodeURIComponent(id)}${suffix}`;
export const workerPath = (name, suffix = "") => `/workers/${encodeURIComponent(name)}${suffix}`;
