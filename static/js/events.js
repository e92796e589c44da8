// events.js — the live feed of every job and worker change, from the /events WebSocket.
//
// Contract: const live = new LiveEvents(); live.subscribe(fn) calls fn(message) for each change
// ({type: "job", action: "created"|"status"|"updated"|"deleted", job} or
// {type: "worker", action: "saved"|"deleted", name}); live.onResync(fn) calls fn() each time
// the socket (re)opens, because the feed has no replay: whoever keeps a list reloads it then to
// catch what happened while the socket was down. live.onState(fn) reports "connecting", "live"
// or "offline", or ("refused", the server's message) when the server refuses this page's
// origin: then it stops, since retrying cannot change that. A dropped socket (a server
// restart, the network, a 1013 "too slow" close) reconnects with a backoff from 0.5 s doubling
// to 10 s. live.start() opens it.

import {request, socketRefusal, socketURL} from "./api.js";

const FIRST_DELAY_MS = 500;
const MAX_DELAY_MS = 10000;

export class LiveEvents {
  constructor(path = "/events") {
    this.path = path;
    this.listeners = [];
    this.resyncListeners = [];
    this.stateListeners = [];
    this.delay = FIRST_DELAY_MS;
    this.socket = null;
    this.timer = null;
    this.opened = false; // a socket of this page has opened: its origin is not refused
  }

  subscribe(fn) { this.listeners.push(fn); }
  onResync(fn) { this.resyncListeners.push(fn); }
  onState(fn) { this.stateListeners.push(fn); }

  setState(state, detail = "") {
    for (const fn of this.stateListeners) fn(state, detail);
  }

  start() {
    this.setState("connecting");
    const socket = new WebSocket(socketURL(this.path));
    this.socket = socket;
    socket.addEventListener("open", () => {
      this.opened = true;
      this.delay = FIRST_DELAY_MS;
      this.setState("live");
      for (const fn of this.resyncListeners) fn();
    });
    socket.addEventListener("message", (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return; // not ours to interpret; the feed only sends JSON
      }
      for (const fn of this.listeners) {
        try {
          fn(message);
        } catch (error) {
          console.error("a live update could not be applied", error);
        }
      }
    });
    socket.addEventListener("close", () => {
      if (this.socket !== socket) return;
      this.setState("offline");
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.retry(), this.delay);
      this.delay = Math.min(this.delay * 2, MAX_DELAY_MS);
    });
  }

  async retry() {
    // A refused upgrade looks like any drop: ask over HTTP first, so that an expired session
    // leads to the sign-in form (api.js does that on a 401) and a refused origin is said,
    // instead of endless retries. Once a socket of this page has opened, its origin is not
    // what refuses it (and the server's answer, which compares Origin and Host alone, could
    // be wrong where the browser's Sec-Fetch-Site let it through): then only the session.
    let refusal = null;
    try {
      if (this.opened) await request("GET", "/session");
      else refusal = await socketRefusal();
    } catch {
      // the server is away (restarting, say): the socket's retry will tell
    }
    if (refusal) {
      this.setState("refused", refusal);
      return;
    }
    this.start();
  }
}
