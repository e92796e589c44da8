// jobstream.js — follows one job through its /jobs/ID/stream WebSocket, resuming after drops.
//
// Contract: new JobStream(jobId, {logFrom, responseFrom, onStatus, onEntries, onEnd, onDeleted,
// onState}).open() connects from those entry indexes. Callbacks:
//   onStatus(job)                      the job, on connecting and on every change
//   onEntries(stream, seq, entries)    "log" or "response" entries seq, seq+1, ... in order,
//                                      each exactly once, however often the socket dropped
//   onEnd(status)                      the job is final and every entry has been delivered
//   onDeleted()                        the job was deleted (or is gone when reconnecting)
//   onState(state)                     "connecting", "live", "reconnecting", "closed", or
//                                      "refused" (the server refuses this page's origin)
//   onUsage(message)                   a `usage` message: the running job's latest CPU and
//                                      memory sample (usagechart.js draws them)
// next = {log, response} is the index of the next entry of each stream. After an unexpected
// close (a server restart, the network, a 1013 "too slow") it reconnects with log_from and
// response_from set to `next`, which the server's protocol guarantees continues with no gap and
// no duplicate; entries before `next` that still arrive are skipped all the same. close() stops
// for good.

import {ApiError, jobPath, query, request, socketRefusal, socketURL} from "./api.js";

const FIRST_DELAY_MS = 500;
const MAX_DELAY_MS = 8000;

export class JobStream {
  constructor(jobId, {logFrom = 0, responseFrom = 0, onStatus = () => {}, onEntries = () => {},
    onEnd = () => {}, onDeleted = () => {}, onState = () => {}, onUsage = () => {}} = {}) {
    this.jobId = jobId;
    this.next = {log: logFrom, response: responseFrom};
    Object.assign(this, {onStatus, onEntries, onEnd, onDeleted, onState, onUsage});
    this.closed = false;
    this.opened = false;
    this.ended = false;
    this.socket = null;
    this.timer = null;
    this.delay = FIRST_DELAY_MS;
  }

  open() {
    if (this.closed) return;
    this.onState(this.socket ? "reconnecting" : "connecting");
    const path = jobPath(this.jobId, "/stream") +
      query({log_from: this.next.log, response_from: this.next.response});
    const socket = new WebSocket(socketURL(path));
    this.socket = socket;
    socket.addEventListener("open", () => {
      this.opened = true; // then its origin is not what refuses it: see retry()
      this.delay = FIRST_DELAY_MS;
      this.onState("live");
    });
    socket.addEventListener("message", (event) => {
      if (this.socket === socket) this.receive(JSON.parse(event.data));
    });
    socket.addEventListener("close", (event) => {
      if (this.socket === socket) this.closedBy(event);
    });
  }

  receive(message) {
    if (message.type === "status") {
      this.onStatus(message.job);
    } else if (message.type === "log" || message.type === "response") {
      const stream = message.type;
      // A capped log drops entries from its middle: the server says how many it skipped.
      if (message.dropped && message.seq - message.dropped === this.next[stream]) {
        this.next[stream] = message.seq;
      }
      const skip = this.next[stream] - message.seq; // already delivered before a reconnect
      if (skip < 0) {
        // Any other gap is a fault; resume from what we have.
        console.warn(`job ${this.jobId}: ${stream} jumped from ${this.next[stream]} to ` +
          `${message.seq}; reconnecting`);
        this.socket.close();
        return;
      }
      const entries = skip > 0 ? message.entries.slice(skip) : message.entries;
      if (entries.length === 0) return;
      const seq = this.next[stream];
      this.next[stream] = seq + entries.length;
      this.onEntries(stream, seq, entries);
    } else if (message.type === "usage") {
      this.onUsage(message);
    } else if (message.type === "end") {
      this.ended = true;
      this.onEnd(message.status);
    }
  }

  closedBy(event) {
    if (this.closed) return;
    if (this.ended) {
      this.finish();
      return;
    }
    if (event.code === 1000 && event.reason === "job deleted") {
      this.finish();
      this.onDeleted();
      return;
    }
    this.onState("reconnecting");
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.retry(), this.delay);
    this.delay = Math.min(this.delay * 2, MAX_DELAY_MS);
  }

  async retry() {
    if (this.closed) return;
    // A socket refused before the upgrade says nothing to the page, so ask over HTTP whether
    // the job still exists, and whether this page's origin may open sockets, rather than
    // retrying forever.
    try {
      await request("GET", jobPath(this.jobId));
      if (!this.opened && await socketRefusal()) {
        this.finish();
        this.onState("refused");
        return;
      }
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        this.finish();
        this.onDeleted();
        return;
      }
      // The server is away (restarting, say): keep trying.
      this.closedBy({code: 1006, reason: ""});
      return;
    }
    this.open();
  }

  finish() {
    this.closed = true;
    clearTimeout(this.timer);
    this.onState("closed");
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    if (this.socket) this.socket.close(1000);
  }
}
