// jobdetail.js — the opened job: its facts, the actions on it, its log and response live.
//
// Contract: new JobDetail(root, {onOpened, onClosed}) takes the #job-detail section of
// index.html. open(id) shows that job: it reads the job, then follows /jobs/ID/stream from near
// the end of each stream (TAIL entries back; earlier ones load on demand), so opening a job with
// a million log lines costs what opening one with a thousand does. update(job) applies a newer
// copy of the job (from the live feed); deleted(id) says it is gone; tick() refreshes the
// running duration; close() stops following. Start, Stop, Kill and Delete send the command; the
// last three ask first, as the original did. A refused command shows the server's message in the
// page's alert area; the buttons are never disabled by status, so that the server, which
// alone knows the job's state for sure, gives the reason.

import {jobPath, query, request} from "./api.js";
import {$, el, replaceContent} from "./dom.js";
import {EntryView, PAGE} from "./entryview.js";
import {formatDuration, formatTime, jobDuration, machineTime, stampReceived} from "./format.js";
import {supersedes} from "./jobstates.js";
import {JobStream} from "./jobstream.js";
import {attempt, showInfo} from "./notices.js";

export const TAIL = PAGE; // entries shown when a job is opened; "load earlier" fetches the rest

const STREAM_STATES = {connecting: "connecting…", live: "live", reconnecting: "reconnecting…",
  closed: ""};

const SIGNALS = {1: "SIGHUP", 2: "SIGINT", 6: "SIGABRT", 9: "SIGKILL", 11: "SIGSEGV",
  13: "SIGPIPE", 15: "SIGTERM"};

export class JobDetail {
  constructor(root, {onOpened = () => {}, onClosed = () => {}} = {}) {
    this.root = root;
    this.onOpened = onOpened;
    this.onClosed = onClosed;
    this.job = null;
    this.gone = false;
    this.stream = null;
    this.empty = $("#job-detail-empty", root);
    this.body = $("#job-detail-body", root);
    this.heading = $("#job-detail-heading", root);
    this.title = $("#job-detail-title", root);
    this.badge = $("#job-detail-status", root);
    this.streamState = $("#job-detail-stream", root);
    this.facts = $("#job-detail-facts", root);
    this.notice = $("#job-detail-notice", root);
    this.buttons = [...root.querySelectorAll("[data-command]")];
    for (const button of this.buttons) {
      button.addEventListener("click", () => this.command(button.dataset.command, button));
    }
    $("#job-detail-close", root).addEventListener("click", () => this.close());
    const fetchPage = (stream) => async (offset, limit) => {
      const reply = await attempt(() => request("GET",
        jobPath(this.job.id, `/${stream}`) + query({offset, limit})));
      return reply && reply.data;
    };
    const search = (stream) => async (text, ignoreCase, offset, limit) => {
      const reply = await attempt(() => request("GET", jobPath(this.job.id, `/${stream}`) +
        query({search: text, ignore_case: ignoreCase ? 1 : 0, offset, limit})));
      const next = reply && reply.headers.get("X-Next-Offset");
      return reply && {entries: reply.data, next: next === null ? null : Number(next),
        total: Number(reply.headers.get("X-Total-Count"))};
    };
    this.log = new EntryView({id: "job-log", title: "Log", fetchPage: fetchPage("log"),
      onWantLatest: () => this.restartStream("log"), search: search("log")});
    this.response = new EntryView({id: "job-response", title: "Response",
      fetchPage: fetchPage("response"), onWantLatest: () => this.restartStream("response")});
    $("#job-detail-entries", root).append(this.log.element, this.response.element);
  }

  get jobId() {
    return this.job && this.job.id;
  }

  async open(id) {
    if (this.jobId === id && !this.gone) return;
    this.stopStream();
    this.opening = id;
    const reply = await attempt(() => request("GET", jobPath(id)));
    if (!reply || this.opening !== id) return; // failed, or another job was opened meanwhile
    this.job = stampReceived(reply.data[0]);
    this.gone = false;
    this.empty.hidden = true;
    this.body.hidden = false;
    this.notice.hidden = true;
    this.setButtonsEnabled(true);
    this.log.setDownload(jobPath(id, "/log/download"));
    this.log.forgetSearch();
    this.response.setDownload(jobPath(id, "/response/download"));
    this.render();
    const from = {log: Math.max(0, this.job.log_count - TAIL),
      response: Math.max(0, this.job.response_count - TAIL)};
    this.log.reset(from.log);
    this.response.reset(from.response);
    this.startStream(from);
    this.onOpened(this.job);
  }

  startStream(from) {
    const id = this.job.id;
    this.stream = new JobStream(id, {
      logFrom: from.log, responseFrom: from.response,
      onStatus: (job) => this.update(job),
      onEntries: (stream, seq, entries) => this[stream].append(seq, entries),
      onDeleted: () => this.deleted(id),
      onState: (state) => { this.streamState.textContent = STREAM_STATES[state] ?? ""; },
    });
    this.stream.open();
  }

  /**
   * Follow `which` stream again from near its end, after the reader let newer entries go
   * unrendered; the other stream's view goes on from where it stands.
   */
  restartStream(which) {
    if (!this.job || this.gone) return;
    const from = {log: this.log.streamNext, response: this.response.streamNext};
    from[which] = Math.max(0, from[which] - TAIL);
    this.stopStream();
    this[which].reset(from[which]);
    this.startStream(from);
  }

  stopStream() {
    if (this.stream) this.stream.close();
    this.stream = null;
  }

  close() {
    this.stopStream();
    this.opening = null;
    this.job = null;
    this.body.hidden = true;
    this.empty.hidden = false;
    this.onClosed();
  }

  update(job) {
    if (!this.job || job.id !== this.job.id || !supersedes(job, this.job)) return;
    this.job = stampReceived({...job});
    this.render();
  }

  deleted(id) {
    if (!this.job || this.job.id !== id) return;
    this.gone = true;
    this.stopStream();
    this.notice.hidden = false;
    this.notice.textContent = "This job has been deleted. Its log and response are gone.";
    this.setButtonsEnabled(false);
    this.badge.textContent = "deleted";
    this.badge.className = "badge status-deleted";
  }

  setButtonsEnabled(enabled) {
    for (const button of this.buttons) button.disabled = !enabled;
  }

  tick() {
    if (this.job && this.job.status === "active") {
      const cell = this.facts.querySelector("[data-fact=duration]");
      if (cell) cell.textContent = formatDuration(jobDuration(this.job));
    }
  }

  render() {
    const job = this.job;
    this.title.textContent = job.worker;
    this.badge.textContent = job.status;
    this.badge.className = `badge status-${job.status}`;
    // Emphasise the command that fits the status; all stay usable (see the contract).
    const suggested = {idle: "start", active: "stop"}[job.status];
    for (const button of this.buttons) {
      button.classList.toggle("primary", button.dataset.command === suggested);
    }
    const time = (seconds) => seconds === null ? "—"
      : el("time", {text: formatTime(seconds), attrs: {datetime: machineTime(seconds)}});
    const rows = [
      ["Job", el("code", {class: "job-id", text: job.id})],
      ["Worker", job.worker],
      ["Created", time(job.created), job.created_by ? ` by ${job.created_by}` : ""],
      ["Started", time(job.starttime)],
      ["Stopped", time(job.stoptime)],
      ["Duration", el("span", {dataset: {fact: "duration"},
        text: formatDuration(jobDuration(job))})],
    ];
    if (job.pid !== null) {
      rows.push(["Process", `pid ${job.pid}${job.node ? ` on ${job.node}` : ""}`]);
    }
    if (job.stop_requested !== null) rows.push(["Stop asked", time(job.stop_requested)]);
    if (job.exit_code !== null || job.exit_signal !== null) rows.push(["Exit", exitText(job)]);
    if (job.error) rows.push(["Error", el("span", {class: "fact-error", text: job.error})]);
    rows.push(["Parameters", el("pre", {class: "params-full",
      text: JSON.stringify(job.parameters ?? {}, null, 2)})]);
    replaceContent(this.facts, rows.map(([term, ...value]) =>
      el("div", {class: "fact"}, el("dt", {text: term}), el("dd", {}, ...value))));
  }

  async command(command, button) {
    const job = this.job;
    if (!job) return;
    const who = `job ${job.id} (${job.worker})`;
    const questions = {
      stop: `Stop ${who}? It gets SIGTERM now and SIGKILL after the grace period.`,
      kill: `Kill ${who}? SIGKILL ends it, and every command it started, at once.`,
      delete: `Delete ${who} with its whole log and response? This cannot be undone.`,
    };
    if (questions[command] && !window.confirm(questions[command])) return;
    button.disabled = true;
    try {
      const reply = await attempt(() => command === "delete"
        ? request("DELETE", jobPath(job.id))
        : request("PUT", jobPath(job.id, "/status"), {text: command}));
      if (!reply) return;
      showInfo(reply.message);
      if (command === "delete") this.deleted(job.id);
      else if (reply.data[0]) this.update(reply.data[0]);
    } finally {
      if (this.job === job && !this.gone) button.disabled = false;
    }
  }
}

function exitText(job) {
  if (job.exit_signal !== null) {
    return `killed by ${SIGNALS[job.exit_signal] || `signal ${job.exit_signal}`}`;
  }
  return `exit code ${job.exit_code}`;
}
