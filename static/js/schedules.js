// schedules.js — the Schedules tab: cron schedules of jobs, their next five run times and their
// last runs with the outcome of each; operators create, edit, pause, resume, run now and delete.
//
// Contract: new SchedulesTab({workers}) takes the #panel-schedules elements of index.html and
// the shared WorkerStore (for the form's worker list); shown() reloads the list (GET /schedules)
// and keeps reloading it every RELOAD_SECONDS while the tab is visible, so fired runs appear.
// Each run shows its outcome and, when it made a job, a link to it (#jobs/ID) with the job's
// status. Every field (names, parameters, details: user-influenced) is shown as text. The form
// creates (POST /schedules) or, after Edit, changes (PATCH /schedules/ID) a schedule; secret
// parameters come back masked, and sending them back masked keeps them. Refusals show the
// server's message, which names the field.

import {query, request} from "./api.js";
import {$, el, replaceContent} from "./dom.js";
import {compactJSON} from "./format.js";
import {attempt, showInfo} from "./notices.js";
import {timeCell} from "./timecell.js";

const RELOAD_SECONDS = 5;
const PAGE = 200;
const path = (id, suffix = "") => `/schedules/${encodeURIComponent(id)}${suffix}`;

export class SchedulesTab {
  constructor({workers}) {
    this.rows = $("#schedules-rows");
    this.emptyNote = $("#schedules-empty");
    this.form = $("#schedule-form");
    this.error = $("#schedule-form-error");
    this.editing = null; // the id of the schedule the form changes, or null: a new one
    this.timer = null;
    this.loadToken = 0;
    $("#schedules-refresh").addEventListener("click", () => this.load());
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    $("#schedule-cancel").addEventListener("click", () => this.stopEditing());
    workers.subscribe((list) => this.listWorkers(list));
  }

  shown() {
    clearInterval(this.timer);
    this.timer = setInterval(() => {
      if ($("#panel-schedules").hidden) clearInterval(this.timer);
      else this.load();
    }, RELOAD_SECONDS * 1000);
    return this.load();
  }

  listWorkers(list) {
    const select = $("#schedule-worker");
    const chosen = select.value;
    replaceContent(select, list.map((worker) => el("option", {value: worker.name,
      text: worker.name})));
    if (chosen) select.value = chosen;
  }

  async load() {
    const token = ++this.loadToken;
    const reply = await attempt(() => request("GET", "/schedules" + query({limit: PAGE})));
    if (!reply || token !== this.loadToken) return;
    replaceContent(this.rows, reply.data.map((schedule) => this.row(schedule)));
    this.emptyNote.hidden = reply.data.length > 0;
  }

  row(schedule) {
    const paused = schedule.paused !== null;
    return el("tr", {dataset: {id: schedule.id}, class: paused ? "paused" : ""},
      el("td", {dataset: {label: "Schedule"}},
        el("strong", {text: schedule.name || schedule.id}),
        el("div", {class: "hint", text: `by ${schedule.owner}`})),
      el("td", {dataset: {label: "Worker"}}, el("code", {text: schedule.worker}),
        el("div", {class: "hint", text: compactJSON(schedule.parameters)})),
      el("td", {dataset: {label: "When"}}, el("code", {text: schedule.cron}),
        el("div", {class: "hint", text: `${schedule.timezone}; missed: ${schedule.missed}, `
          + `overlap: ${schedule.overlap}`})),
      el("td", {class: "next-runs", dataset: {label: "Next runs"}},
        schedule.next_runs.length === 0 ? "—"
          : el("ol", {}, ...schedule.next_runs.map((when) => el("li", {}, timeCell(when))))),
      el("td", {class: "last-runs", dataset: {label: "Last runs"}},
        schedule.runs.length === 0 ? "none yet"
          : el("ul", {}, ...schedule.runs.map((run) => this.runItem(run)))),
      el("td", {class: "schedule-state", dataset: {label: "State"},
        text: paused ? `paused: ${schedule.paused_reason || ""}` : "active"}),
      el("td", {dataset: {label: "Actions"}, attrs: {"data-needs": "operator"}},
        this.actions(schedule)));
  }

  runItem(run) {
    const item = el("li", {dataset: {outcome: run.outcome}}, timeCell(run.scheduled_for), " ",
      el("span", {class: "run-outcome", text: run.outcome}));
    if (run.job) {
      item.append(" ", el("a", {href: `#jobs/${encodeURIComponent(run.job)}`,
        text: `job ${run.job.slice(-6)}`}), ` (${run.job_status || "deleted"})`);
    }
    if (run.detail) item.append(el("div", {class: "hint", text: run.detail}));
    return item;
  }

  actions(schedule) {
    const paused = schedule.paused !== null;
    const act = (text, method, suffix, done) => el("button", {type: "button", class: "small",
      text, on: {click: () => this.act(method, path(schedule.id, suffix), done)}});
    const remove = el("button", {type: "button", class: "small danger", text: "Delete"});
    remove.addEventListener("click", () => {
      if (remove.dataset.armed) this.act("DELETE", path(schedule.id), "deleted");
      else { remove.dataset.armed = "yes"; remove.textContent = "Really delete?"; }
    });
    return el("div", {class: "actions"},
      paused ? act("Resume", "POST", "/resume", "resumed") : act("Pause", "POST", "/pause",
        "paused"),
      act("Run now", "POST", "/run", "run"),
      el("button", {type: "button", class: "small", text: "Edit",
        on: {click: () => this.edit(schedule)}}),
      remove);
  }

  async act(method, target, done) {
    const reply = await attempt(() => request(method, target));
    if (!reply) return;
    showInfo(reply.message || `schedule ${done}`);
    await this.load();
  }

  edit(schedule) {
    this.editing = schedule.id;
    $("#schedule-name").value = schedule.name || "";
    $("#schedule-worker").value = schedule.worker;
    $("#schedule-cron").value = schedule.cron;
    $("#schedule-timezone").value = schedule.timezone;
    $("#schedule-missed").value = schedule.missed;
    $("#schedule-overlap").value = schedule.overlap;
    $("#schedule-timeout").value = schedule.timeout ?? "";
    $("#schedule-parameters").value = JSON.stringify(schedule.parameters, null, 2);
    $("#schedule-form-heading").textContent = `Edit schedule ${schedule.name || schedule.id}`;
    $("#schedule-submit").textContent = "Save changes";
    $("#schedule-cancel").hidden = false;
    $("#schedule-cron").focus();
  }

  stopEditing() {
    this.editing = null;
    this.form.reset();
    $("#schedule-form-heading").textContent = "New schedule";
    $("#schedule-submit").textContent = "Create schedule";
    $("#schedule-cancel").hidden = true;
    this.error.hidden = true;
  }

  body() {
    const text = $("#schedule-parameters").value.trim();
    let parameters = null;
    if (text) {
      try {
        parameters = JSON.parse(text);
      } catch (error) {
        throw new Error(`parameters: not valid JSON (${error.message})`);
      }
    }
    const timeout = $("#schedule-timeout").value.trim();
    return {name: $("#schedule-name").value.trim() || null,
      worker: $("#schedule-worker").value, cron: $("#schedule-cron").value.trim(),
      timezone: $("#schedule-timezone").value.trim(), missed: $("#schedule-missed").value,
      overlap: $("#schedule-overlap").value, parameters,
      // not a number: sent as typed, so that the server's refusal names the field
      timeout: timeout === "" ? null : Number.isFinite(Number(timeout)) ? Number(timeout)
        : timeout};
  }

  async submit() {
    this.error.hidden = true;
    let reply;
    try {
      const json = this.body();
      reply = this.editing ? await request("PATCH", path(this.editing), {json})
        : await request("POST", "/schedules", {json});
    } catch (error) {
      this.error.textContent = error.message;
      this.error.hidden = false;
      return;
    }
    showInfo(reply.message);
    this.stopEditing();
    await this.load();
  }
}
