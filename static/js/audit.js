// audit.js — the Audit tab (admins): who did what, newest first, paged and filtered.
//
// Contract: new AuditTab() takes the #panel-audit elements of index.html; shown() reloads the
// current page (GET /audit with actor, action, offset, limit). The filters apply on submit
// (Enter in the actor box, or Filter) and when the action changes, going back to the newest
// page. Every field (actor, target, detail, address: all user-influenced) is shown as text.

import {query, request} from "./api.js";
import {$, el, replaceContent} from "./dom.js";
import {attempt} from "./notices.js";
import {timeCell} from "./timecell.js";

export const AUDIT_PAGE = 50;
// The actions jobjoker/audit.py records, for the filter.
const ACTIONS = ["job.create", "job.start", "job.stop", "job.kill", "job.pause", "job.resume",
  "job.timeout", "job.delete",
  "worker.save", "worker.delete", "login.ok", "login.failed", "logout", "user.create",
  "user.update", "user.delete", "user.password", "token.create", "token.revoke",
  "schedule.create", "schedule.update", "schedule.delete", "schedule.pause", "schedule.resume",
  "schedule.run", "schedule.fire",
  "webhook.create", "webhook.update", "webhook.rotate", "webhook.delete"];

export class AuditTab {
  constructor() {
    this.offset = 0;
    this.loadToken = 0;
    this.rows = $("#audit-rows");
    this.emptyNote = $("#audit-empty");
    this.actor = $("#audit-actor");
    this.action = $("#audit-action");
    this.prev = $("#audit-prev");
    this.next = $("#audit-next");
    this.range = $("#audit-range");
    this.action.append(...ACTIONS.map((name) => el("option", {value: name, text: name})));
    $("#audit-filters").addEventListener("submit", (event) => {
      event.preventDefault();
      this.goTo(0);
    });
    this.action.addEventListener("change", () => this.goTo(0));
    $("#audit-refresh").addEventListener("click", () => this.load());
    this.prev.addEventListener("click", () => this.goTo(Math.max(0, this.offset - AUDIT_PAGE)));
    this.next.addEventListener("click", () => this.goTo(this.offset + AUDIT_PAGE));
  }

  shown() {
    return this.load();
  }

  goTo(offset) {
    this.offset = offset;
    return this.load();
  }

  async load() {
    const token = ++this.loadToken;
    const reply = await attempt(() => request("GET", "/audit" + query({
      actor: this.actor.value.trim(), action: this.action.value, offset: this.offset,
      limit: AUDIT_PAGE})));
    if (!reply || token !== this.loadToken) return;
    const entries = reply.data;
    replaceContent(this.rows, entries.map((entry) => this.row(entry)));
    this.emptyNote.hidden = entries.length > 0;
    this.prev.disabled = this.offset === 0;
    this.next.disabled = entries.length < AUDIT_PAGE;
    this.range.textContent = entries.length === 0 ? ""
      : `${this.offset + 1}–${this.offset + entries.length}`;
  }

  row(entry) {
    const failed = entry.action === "login.failed";
    return el("tr", {class: failed ? "failed" : "", dataset: {id: String(entry.id)}},
      el("td", {class: "cell-time", dataset: {label: "Time"}}, timeCell(entry.time)),
      el("td", {class: "cell-actor", dataset: {label: "Actor"},
        text: entry.actor === null ? "(server)" : entry.actor}),
      el("td", {class: "cell-action", dataset: {label: "Action"}},
        el("code", {text: entry.action})),
      el("td", {class: "cell-target", dataset: {label: "Target"}, text: entry.target ?? "—"}),
      el("td", {class: "cell-detail", dataset: {label: "Detail"}, text: entry.detail ?? ""}),
      el("td", {class: "cell-address", dataset: {label: "Address"}, text: entry.address ?? "—"}));
  }
}
