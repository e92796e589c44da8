// jobdetail.js — the opened job: its facts, the actions on it, its log and response live.
//
// Contract: new JobDetail(root, {onOpened, onClosed}) takes the #job-detail section of
// index.html. open(id) shows that job: it reads the job, then follows /jobs/ID/stream from near
// the end of each stream (TAIL entries back; earlier ones load on demand), so opening a job with
// a million log lines costs what opening one with a thousand does. update(job) applies a newer
// copy of the job (from the live feed); progress(message) applies a live progress event (a
// bar with the time left among the facts, progress.js); deleted(id) says it is gone; tick()
// refreshes the running duration and the time left; close() stops following. The job's
// structured result, when it has one, is shown pretty-printed (as text) in its Result section:
// GET /jobs/ID carries it; a live copy does not, so it is read again (GET /jobs/ID/result)
// when its size changes or the job ends.
//
// Start, Pause, Resume, Stop, Kill and Delete are enabled only when the job's status allows them (the table in
// jobstates.js, a copy of the server's), following the status live; a line under them says what
// the status allows and a disabled button's title says why it is not offered. Stop, Kill and
// Delete ask first (Start, Pause and Resume go at once), in the page beside the buttons (never window.confirm, which blocks the page
// and its live updates). The server still decides: a job may change between the click and the
// request, and its refusal is shown beside the buttons, not over the log. Run again hands the job
// to onRerun(job) (the page fills the creation form with it); a job run again links to the one it
// came from; the code the job ran, and a diff with today's worker, are jobcode.js's.

import {address, jobPath, query, request} from "./api.js";
import {$, el, replaceContent} from "./dom.js";
import {EntryView, PAGE} from "./entryview.js";
import {formatDuration, formatTime, jobDuration, machineTime, stampReceived} from "./format.js";
import {allows, supersedes, whyNot} from "./jobstates.js";
import {JobCodeView} from "./jobcode.js";
import {JobStream} from "./jobstream.js";
import {attempt} from "./notices.js";
import {UsageChart} from "./usagechart.js";
import {progressView, refreshProgress, withProgress} from "./progress.js";
import {WAITING, cancelQuestion, commandLabel, placeKept, statusText, waitingFacts,
  waitingHint} from "./waiting.js";

export const TAIL = PAGE; // entries shown when a job is opened; "load earlier" fetches the rest

const STREAM_STATES = {connecting: "connecting…", live: "live", reconnecting: "reconnecting…",
  closed: "", refused: "refused: this origin is not allowed; see --allowed-origins"};

const FINAL = ["stop", "error", "done"];

const SIGNALS = {1: "SIGHUP", 2: "SIGINT", 6: "SIGABRT", 9: "SIGKILL", 11: "SIGSEGV",
  13: "SIGPIPE", 15: "SIGTERM"};

export class JobDetail {
  constructor(root, {onOpened = () => {}, onClosed = () => {}, onRerun = () => {}} = {}) {
    this.root = root;
    // Run again: the creation form filled with this job's parameters (createjob.js).
    this.rerunButton = $("#job-detail-rerun", root);
    this.rerunButton.addEventListener("click", () => { if (this.job) onRerun(this.job); });
    this.code = new JobCodeView($("#job-detail-code", root));
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
    this.resultBox = $("#job-detail-result", root);
    this.resultText = $("#job-detail-result-text", root);
    this.resultKey = null; // what the result shown was read for (see showResult)
    this.notice = $("#job-detail-notice", root);
    this.buttons = [...root.querySelectorAll("[data-command]")];
    for (const button of this.buttons) {
      button.addEventListener("click", () => this.ask(button.dataset.command));
    }
    this.actionsHint = $("#job-detail-actions-hint", root);
    this.confirmBox = $("#job-detail-confirm", root);
    this.confirmText = $("#job-detail-confirm-text", root);
    this.confirmYes = $("#job-detail-confirm-yes", root);
    this.refusal = $("#job-detail-refusal", root);
    this.said = $("#job-detail-said", root);
    this.asking = null; // the command the inline question is about
    this.sending = null; // the command on its way to the server
    this.confirmYes.addEventListener("click", () => this.confirmed());
    $("#job-detail-confirm-no", root).addEventListener("click", () => this.cancelAsk());
    this.confirmBox.addEventListener("keydown", (event) => {
      if (event.key === "Escape") this.cancelAsk();
    });
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
    this.usage = new UsageChart(); // its CPU and memory charts, above the log
    $("#job-detail-entries", root).before(this.usage.element);
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
    this.resultKey = null;
    this.gone = false;
    this.empty.hidden = true;
    this.body.hidden = false;
    this.notice.hidden = true;
    this.clearOutcome();
    this.cancelAsk({focus: false});
    this.log.setDownload(address(jobPath(id, "/log/download")));
    this.log.forgetSearch();
    this.response.setDownload(address(jobPath(id, "/response/download")));
    this.render();
    const from = {log: Math.max(0, this.job.log_count - TAIL),
      response: Math.max(0, this.job.response_count - TAIL)};
    this.log.reset(from.log);
    this.response.reset(from.response);
    this.startStream(from);
    this.usage.open(id);
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
      onUsage: (message) => this.usage.sample(message),
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
    this.usage.close();
    this.body.hidden = true;
    this.empty.hidden = false;
    this.onClosed();
  }

  update(job) {
    if (!this.job || job.id !== this.job.id || !supersedes(job, this.job)) return;
    this.job = stampReceived({...job, ...placeKept(job, this.job)});
    this.render();
    this.usage.jobChanged(this.job);
  }

  progress(message) {
    const job = withProgress(this.job, message);
    if (!job) return;
    this.job = job;
    const view = this.facts.querySelector("[data-progress]");
    if (view) refreshProgress(view, job);
    else this.render();
  }

  /** The Result section: the value pretty-printed, read again when it may have changed. */
  showResult(job) {
    if (job.result_size === null || job.result_size === undefined) {
      this.resultBox.hidden = true;
      return;
    }
    this.resultBox.hidden = false;
    const key = `${job.id} ${job.result_size} ${FINAL.includes(job.status)}`;
    if ("result" in job) {
      this.resultKey = key;
      this.resultText.textContent = JSON.stringify(job.result, null, 2);
      return;
    }
    if (this.resultKey === key) return;
    this.resultKey = key;
    attempt(() => request("GET", jobPath(job.id, "/result"))).then((reply) => {
      if (reply && this.jobId === job.id && this.resultKey === key) {
        this.resultText.textContent = JSON.stringify(reply.data[0], null, 2);
      }
    });
  }

  deleted(id) {
    if (!this.job || this.job.id !== id) return;
    this.gone = true;
    this.stopStream();
    this.notice.hidden = false;
    this.notice.textContent = "This job has been deleted. Its log and response are gone.";
    this.cancelAsk({focus: false});
    this.updateButtons();
    this.badge.textContent = "deleted";
    this.badge.className = "badge status-deleted";
  }

  /** Enable what the job's status allows (nothing once it is deleted or while one is sent). */
  updateButtons() {
    const job = this.job;
    for (const button of this.buttons) {
      const command = button.dataset.command;
      const reason = !job ? "No job is open." : this.gone ? "This job has been deleted."
        : this.sending ? "Waiting for the server's answer." : whyNot(command, job);
      button.disabled = reason !== null;
      button.title = reason || "";
    }
    this.actionsHint.textContent = !job || this.gone ? "" : actionsHint(job);
    this.rerunButton.disabled = !job || this.gone;
    if (this.asking && (!job || this.gone || !allows(this.asking, job.status))) {
      this.cancelAsk({focus: false});
    }
  }

  tick() {
    if (this.job && (this.job.status === "active" || this.job.status === "paused")) {
      const cell = this.facts.querySelector("[data-fact=duration]");
      if (cell) cell.textContent = formatDuration(jobDuration(this.job));
      const view = this.facts.querySelector("[data-progress]");
      if (view) refreshProgress(view, this.job);
    }
  }

  render() {
    const job = this.job;
    this.title.textContent = job.worker;
    this.badge.textContent = statusText(job);
    this.badge.className = `badge status-${job.status}`;
    // Emphasise the command that fits the status.
    const suggested = {idle: "start", active: "stop", paused: "resume"}[job.status];
    for (const button of this.buttons) {
      button.classList.toggle("primary", button.dataset.command === suggested);
      button.textContent = commandLabel(button.dataset.command, job);
    }
    this.updateButtons();
    // A job that ended without a response has none to wait for.
    this.response.setEmptyText(FINAL.includes(job.status) ? "no response" : "none yet");
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
      ...waitingFacts(job, time),
    ];
    if (job.pid !== null) {
      rows.push(["Process", `pid ${job.pid}${job.node ? ` on ${job.node}` : ""}`]);
    }
    if (job.timeout !== null && job.timeout !== undefined) {
      rows.push(["Time limit", el("span", {dataset: {fact: "timeout"},
        text: `${job.timeout} s`}), job.deadline !== null ? " (until " : "",
      job.deadline !== null ? time(job.deadline) : "", job.deadline !== null ? ")" : ""]);
    }
    if (job.pause_requested) rows.push(["Pause asked", time(job.pause_requested)]);
    if (job.stop_requested !== null) {
      rows.push(["Stop asked", time(job.stop_requested),
        job.stop_reason === "timeout" ? " (its time limit)" : ""]);
    }
    if (job.exit_code !== null || job.exit_signal !== null) rows.push(["Exit", exitText(job)]);
    if (job.error) rows.push(["Error", el("span", {class: "fact-error", text: job.error})]);
    const progress = progressView(job);
    if (progress) rows.push(["Progress", progress]);
    if (job.rerun_of) {
      rows.push(["Run again of", el("a", {class: "job-id rerun-of", href: `#jobs/${job.rerun_of}`,
        text: job.rerun_of})]);
    }
    rows.push(["Parameters", el("pre", {class: "params-full",
      text: JSON.stringify(job.parameters ?? {}, null, 2)})]);
    replaceContent(this.facts, rows.map(([term, ...value]) =>
      el("div", {class: "fact"}, el("dt", {text: term}), el("dd", {}, ...value))));
    this.showResult(job);
    this.code.show(job);
  }

  /** A click on an action: Start goes at once; the others ask first, beside the buttons. */
  ask(command) {
    const job = this.job;
    if (!job || this.gone || !allows(command, job.status)) return;
    this.clearOutcome();
    if (command === "start" || command === "pause" || command === "resume") {
      this.send(command);
      return;
    }
    const who = `job ${job.id} (${job.worker})`;
    const questions = {
      stop: [`Stop ${who}? It gets SIGTERM now and SIGKILL after the grace period.`, "Stop it"],
      kill: [`Kill ${who}? SIGKILL ends it, and every command it started, at once.`, "Kill it"],
      delete: [`Delete ${who} with its whole log and response? This cannot be undone.`,
        "Delete it"],
    };
    const [question, yes] = WAITING.includes(job.status) && command !== "delete"
      ? cancelQuestion(job) : questions[command];
    this.asking = command;
    this.confirmText.textContent = question;
    this.confirmYes.textContent = yes;
    this.confirmBox.hidden = false;
    this.confirmYes.focus();
  }

  confirmed() {
    const command = this.asking;
    this.cancelAsk({focus: false});
    if (command) this.send(command);
  }

  cancelAsk({focus = true} = {}) {
    const command = this.asking;
    this.asking = null;
    this.confirmBox.hidden = true;
    const button = this.buttons.find((b) => b.dataset.command === command);
    if (focus && button && !button.disabled) button.focus();
  }

  clearOutcome() {
    this.refusal.hidden = this.said.hidden = true;
    this.refusal.textContent = this.said.textContent = "";
  }

  async send(command) {
    const job = this.job;
    // Copies of the job replace this.job as they arrive (update()): the same job is its id.
    const stillOpen = () => this.jobId === job.id && !this.gone;
    this.sending = command;
    this.updateButtons();
    try {
      const reply = command === "delete"
        ? await request("DELETE", jobPath(job.id))
        : await request("PUT", jobPath(job.id, "/status"), {text: command});
      if (this.jobId !== job.id) return; // another job was opened meanwhile
      this.said.textContent = reply.message;
      this.said.hidden = !reply.message;
      if (command === "delete") this.deleted(job.id);
      else if (reply.data[0]) this.update(reply.data[0]);
    } catch (error) {
      if (!stillOpen()) return;
      this.refusal.textContent = error.message || String(error);
      this.refusal.hidden = false;
    } finally {
      this.sending = null;
      if (this.jobId === job.id) this.updateButtons();
    }
  }
}

/** What the job's status allows, in a line under the buttons. */
function actionsHint(job) {
  if (waitingHint(job)) return waitingHint(job);
  if (job.status === "idle") return "Not started yet: start it, or delete it.";
  if (job.status === "active") {
    return job.stop_requested !== null
      ? "Stopping: kill it to end it at once. It can be deleted once it has ended."
      : "Running: pause it (SIGSTOP), stop it (SIGTERM, then SIGKILL after the grace period) " +
        "or kill it (SIGKILL at once). It can be deleted once it has ended.";
  }
  if (job.status === "paused") {
    return "Paused (its processes are stopped; a time limit runs on): resume it, stop it or " +
      "kill it. It can be deleted once it has ended.";
  }
  if (FINAL.includes(job.status)) {
    return `Ended (${job.status}): a job runs once, so it can only be deleted; run it again ` +
      `to create a new job of ${job.worker} from its parameters.`;
  }
  return "";
}

function exitText(job) {
  if (job.exit_signal !== null) {
    return `killed by ${SIGNALS[job.exit_signal] || `signal ${job.exit_signal}`}`;
  }
  return `exit code ${job.exit_code}`;
}
