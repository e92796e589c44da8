// jobs.js — the Manage Jobs tab's list: jobs newest first, paged, filtered, live.
//
// Contract: new JobsList({live, workers, detail}) takes the list elements of index.html and
// the JobDetail that shows the opened job. load() reads the current page (GET /jobs with
// status, worker, offset, limit); the live feed then keeps it current without polling: a new
// job appears at the top of the first page, a status changes in its row, a deleted job leaves.
// On another page, new jobs are announced rather than shifting the rows under the reader.
// open(id) selects a job and opens it in the detail; tick() refreshes running durations.
// The pager says how many jobs match ("1–20 of 345 jobs") when GET /jobs gives the count in its
// X-Total-Count header (the envelope's `total` counts only the page); without the header it
// shows the range alone. The count then follows created and deleted jobs from the feed; a
// status change under a status filter moves it only for jobs on the page, and every load
// reads it afresh. A job that reports progress shows a bar under its status, with the time
// left (progress.js), moved live by the feed's progress events.
//
// Snapshot and feed race: a page requested before an event but answered after it would undo
// that event, so events that arrive while a page loads are applied again on top of it.

import {query, request} from "./api.js";
import {$, el, replaceContent} from "./dom.js";
import {compactJSON, formatCount, formatDuration, formatShortTime, formatTime, jobDuration,
  machineTime, stampReceived} from "./format.js";
import {supersedes} from "./jobstates.js";
import {attempt} from "./notices.js";
import {progressView, refreshProgress, withProgress} from "./progress.js";
import {statusText, touchesQueue} from "./waiting.js";

export const PAGE_SIZE = 20;
const REPLAY_LIMIT = 500;

export class JobsList {
  constructor({live, workers, detail}) {
    this.detail = detail;
    this.rows = [];
    this.offset = 0;
    this.hasMore = false;
    this.total = null; // jobs matching the filters, when the server says (X-Total-Count)
    this.newer = 0;
    this.counter = 0; // events seen
    this.recent = []; // the last events, to replay over a page that was loading meanwhile
    this.loadToken = 0;
    this.durationCells = new Map();
    this.progressViews = new Map(); // job id -> its bar in the list, updated in place
    this.tbody = $("#jobs-rows");
    this.emptyNote = $("#jobs-empty");
    this.range = $("#jobs-range");
    this.prev = $("#jobs-prev");
    this.next = $("#jobs-next");
    this.newerNote = $("#jobs-newer");
    this.statusFilter = $("#jobs-filter-status");
    this.workerFilter = $("#jobs-filter-worker");

    this.statusFilter.addEventListener("change", () => this.goTo(0));
    this.workerFilter.addEventListener("change", () => this.goTo(0));
    this.prev.addEventListener("click", () => this.goTo(Math.max(0, this.offset - PAGE_SIZE)));
    this.next.addEventListener("click", () => this.goTo(this.offset + PAGE_SIZE));
    $("#jobs-newer-button").addEventListener("click", () => this.goTo(0));
    workers.subscribe((list) => this.fillWorkerFilter(list));
    live.subscribe((message) => {
      if (message.type === "progress") {
        this.progress(message);
        return;
      }
      if (message.type !== "job") return;
      // the places in the queue move: read them again (the feed's copies carry none)
      const shown = this.rows.find((row) => row.id === message.job.id);
      if (touchesQueue(message.job, shown)) this.reloadSoon();
      this.counter++;
      this.recent.push({counter: this.counter, message});
      if (this.recent.length > REPLAY_LIMIT) this.recent.shift();
      this.apply(message, {live: true});
      this.render();
    });
    live.onResync(() => this.load());
  }

  reloadSoon() {
    clearTimeout(this.reloading);
    this.reloading = setTimeout(() => this.load(), 150);
  }

  get filters() {
    return {status: this.statusFilter.value, worker: this.workerFilter.value};
  }

  matches(job) {
    const {status, worker} = this.filters;
    return (!status || job.status === status) && (!worker || job.worker === worker);
  }

  fillWorkerFilter(workers) {
    const chosen = this.workerFilter.value;
    const names = workers.map((worker) => worker.name);
    if (chosen && !names.includes(chosen)) names.push(chosen); // keep a deleted worker's jobs
    replaceContent(this.workerFilter, el("option", {value: "", text: "All workers"}),
      names.map((name) => el("option", {value: name, text: name})));
    this.workerFilter.value = chosen;
  }

  goTo(offset) {
    this.offset = offset;
    if (offset === 0) this.newer = 0;
    return this.load();
  }

  async load() {
    const token = ++this.loadToken;
    const since = this.counter;
    const reply = await attempt(() => request("GET", "/jobs" +
      query({...this.filters, offset: this.offset, limit: PAGE_SIZE})));
    if (!reply || token !== this.loadToken) return;
    this.rows = reply.data.map(stampReceived);
    this.total = totalOf(reply);
    this.hasMore = this.total === null ? this.rows.length === PAGE_SIZE
      : this.offset + this.rows.length < this.total;
    for (const {counter, message} of this.recent) {
      if (counter > since) this.apply(message);
    }
    this.render();
  }

  /** Apply one change from the live feed to the rows (render() shows it). */
  apply({action, job}, {live = false} = {}) {
    const index = this.rows.findIndex((row) => row.id === job.id);
    if (live) this.count(action, job, index >= 0 ? this.rows[index] : null);
    if (action === "deleted") {
      if (index >= 0) this.rows.splice(index, 1);
      if (live) this.detail.deleted(job.id);
      return;
    }
    stampReceived(job);
    if (live) this.detail.update(job);
    if (index >= 0) {
      if (!supersedes(job, this.rows[index])) return; // an older copy, arriving late
      if (this.matches(job)) this.rows[index] = job;
      else this.rows.splice(index, 1);
      return;
    }
    if (!this.matches(job)) return;
    if (this.offset > 0) {
      if (action === "created" && live) this.newer++;
      return;
    }
    // Ids are time-ordered, so newest first is descending id order.
    const last = this.rows[this.rows.length - 1];
    if (this.rows.length === PAGE_SIZE && last && job.id < last.id) return; // an older page's
    const at = this.rows.findIndex((row) => row.id < job.id);
    this.rows.splice(at < 0 ? this.rows.length : at, 0, job);
    if (this.rows.length > PAGE_SIZE) {
      this.rows.length = PAGE_SIZE;
      this.hasMore = true;
    }
  }

  /** A live progress event: the row's bar (in place) and the opened job's. */
  progress(message) {
    this.detail.progress(message);
    const index = this.rows.findIndex((row) => row.id === message.job);
    if (index < 0) return;
    const job = withProgress(this.rows[index], message);
    if (!job) return; // older than the copy shown
    this.rows[index] = job;
    const view = this.progressViews.get(job.id);
    if (view) refreshProgress(view, job);
    else this.render();
  }

  /** Follow the number of matching jobs through one change (see the contract). */
  count(action, job, shown) {
    if (this.total === null) return;
    const matches = this.matches(job);
    if (action === "created" && matches) this.total++;
    else if (action === "deleted" && matches) this.total--;
    else if (action === "status" && this.filters.status && shown?.status !== job.status) {
      if (matches) this.total++; // it has come into the filter
      else if (shown) this.total--; // it has left it
    }
    this.total = Math.max(this.total, 0);
  }

  open(id, {reveal = false} = {}) {
    this.selected = id;
    this.render();
    const opened = this.detail.open(id);
    // On a narrow screen the job opens below the list: bring it into view.
    if (reveal && window.matchMedia("(max-width: 1099px)").matches) {
      opened.then(() => this.detail.root.scrollIntoView({block: "start", behavior: "smooth"}));
    }
    return opened;
  }

  unselect() {
    this.selected = null;
    this.render();
  }

  render() {
    // Rebuilding the rows would lose the keyboard focus: put it back on the same job's button.
    const focused = document.activeElement && document.activeElement.closest("#jobs-rows tr");
    const focusedId = focused && focused.dataset.id;
    this.durationCells.clear();
    this.progressViews.clear();
    replaceContent(this.tbody, this.rows.map((job) => this.row(job)));
    if (focusedId) {
      const button = this.tbody.querySelector(`tr[data-id="${CSS.escape(focusedId)}"] button`);
      if (button) button.focus();
    }
    this.emptyNote.hidden = this.rows.length > 0;
    this.prev.disabled = this.offset === 0;
    this.next.disabled = !this.hasMore;
    const range = this.rows.length === 0 ? ""
      : `${this.offset + 1}–${this.offset + this.rows.length}`;
    this.range.textContent = this.total === null ? range
      : `${range ? `${range} of ` : ""}${formatCount(this.total)} ` +
        `${this.total === 1 ? "job" : "jobs"}`;
    this.newerNote.hidden = this.newer === 0;
    $("#jobs-newer-button").textContent = `${this.newer} new ${this.newer === 1 ? "job" : "jobs"}` +
      " — show the newest";
  }

  row(job) {
    const selected = job.id === this.selected;
    const time = (seconds) => seconds === null ? "—"
      : el("time", {text: formatShortTime(seconds), title: formatTime(seconds),
        attrs: {datetime: machineTime(seconds)}});
    const duration = el("td", {class: "cell-duration", dataset: {label: "Duration"},
      text: formatDuration(jobDuration(job))});
    if (job.status === "active" || job.status === "paused") this.durationCells.set(job.id, duration);
    const parameters = compactJSON(job.parameters);
    const progress = progressView(job);
    if (progress) this.progressViews.set(job.id, progress);
    return el("tr", {class: selected ? "selected" : "", dataset: {id: job.id},
      on: {click: (event) => {
        if (!event.target.closest("button")) this.open(job.id, {reveal: true});
      }}},
      el("th", {scope: "row", class: "cell-worker"},
        el("button", {type: "button", class: "row-open",
          attrs: {"aria-current": selected ? "true" : false,
            "aria-label": `${job.worker}, job ${job.id}`},
          on: {click: () => this.open(job.id, {reveal: true})}},
          el("span", {class: "row-worker", text: job.worker}),
          el("span", {class: "row-id", text: job.id.slice(-6), attrs: {"aria-hidden": "true"}}))),
      el("td", {class: "cell-status", dataset: {label: "Status"}},
        el("span", {class: `badge status-${job.status}`, text: statusText(job)}), progress),
      el("td", {class: "cell-time", dataset: {label: "Started"}},
        job.status === "scheduled" ? "at " : "", time(job.starttime ?? job.start_at ?? null)),
      el("td", {class: "cell-time", dataset: {label: "Stopped"}}, time(job.stoptime)),
      duration,
      el("td", {class: "cell-params", dataset: {label: "Parameters"}},
        el("code", {text: parameters, title: parameters})));
  }

  tick() {
    for (const job of this.rows) {
      const cell = this.durationCells.get(job.id);
      if (cell) cell.textContent = formatDuration(jobDuration(job));
      const view = this.progressViews.get(job.id);
      if (view) refreshProgress(view, job); // the time left moves on
    }
  }
}

/** The number of jobs matching a GET /jobs, from its X-Total-Count header; null without it. */
function totalOf(reply) {
  const header = reply.headers && reply.headers.get("X-Total-Count");
  const total = header === null || header === undefined ? NaN : Number(header);
  return Number.isInteger(total) && total >= 0 ? total : null;
}
