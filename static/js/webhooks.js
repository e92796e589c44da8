// webhooks.js — the Webhooks tab (admins): URLs told of job ends, and what each was sent.
//
// Contract: new WebhooksTab() takes the #panel-webhooks elements of index.html; shown() reloads
// the list (GET /webhooks). The form adds a webhook (POST /webhooks {url, scope, scope_value,
// statuses, description}) and shows its secret, which the server shows this once, until Done;
// it is kept nowhere else. Each row's buttons: Deliveries (GET /webhooks/ID/deliveries, shown
// under the list), Test (POST /webhooks/ID/test), Disable/Enable (PATCH {enabled}), Delete
// (asks first). A refusal shows the server's message (it names the field to fix). Every field
// is shown as text.

import {request} from "./api.js";
import {$, el, replaceContent} from "./dom.js";
import {attempt, showInfo} from "./notices.js";
import {timeCell} from "./timecell.js";

const hookPath = (id) => `/webhooks/${encodeURIComponent(id)}`;
const DELIVERIES_SHOWN = 50;

export class WebhooksTab {
  constructor() {
    this.rows = $("#webhooks-rows");
    this.emptyNote = $("#webhooks-empty");
    this.form = $("#webhook-form");
    this.scope = $("#webhook-scope");
    this.secret = $("#webhook-secret");
    this.deliveriesOf = null;
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.create();
    });
    this.scope.addEventListener("change", () => {
      $("#webhook-scope-value-field").hidden = this.scope.value === "server";
    });
    $("#webhook-secret-done").addEventListener("click", () => {
      $("#webhook-secret-value").value = "";
      this.secret.hidden = true;
    });
    $("#webhooks-refresh").addEventListener("click", () => this.shown());
  }

  async shown() {
    await this.load();
    if (this.deliveriesOf) await this.showDeliveries(this.deliveriesOf);
  }

  async load() {
    const reply = await attempt(() => request("GET", "/webhooks"));
    if (!reply) return;
    replaceContent(this.rows, reply.data.map((hook) => this.row(hook)));
    this.emptyNote.hidden = reply.data.length > 0;
  }

  row(hook) {
    const jobs = hook.scope === "server" ? "every job" : `${hook.scope} ${hook.scope_value}`;
    const button = (text, label, action, danger) => el("button", {type: "button",
      class: danger ? "danger small" : "small", text, attrs: {"aria-label": `${label} ${hook.url}`},
      on: {click: action}});
    return el("tr", {class: hook.enabled ? "" : "disabled", dataset: {id: hook.id}},
      el("th", {scope: "row", class: "cell-url"},
        el("span", {class: "webhook-url", text: hook.url}),
        hook.description ? el("span", {class: "hint", text: ` ${hook.description}`}) : null),
      el("td", {dataset: {label: "Jobs"}, text: jobs}),
      el("td", {dataset: {label: "Statuses"}, text: hook.statuses.join(", ")}),
      el("td", {dataset: {label: "State"}}, hook.enabled
        ? el("span", {class: "badge status-done", text: "enabled"})
        : el("span", {class: "badge status-error", text: "disabled"})),
      el("td", {dataset: {label: "Created"}}, timeCell(hook.created)),
      el("td", {class: "cell-actions"},
        button("Deliveries", "Deliveries of", () => this.showDeliveries(hook)),
        button("Test", "Send a test delivery to", () => this.test(hook)),
        button(hook.enabled ? "Disable" : "Enable", hook.enabled ? "Disable" : "Enable",
          () => this.update(hook, {enabled: !hook.enabled})),
        button("Delete", "Delete", () => this.remove(hook), true)));
  }

  async create() {
    const scope = this.scope.value;
    const body = {
      url: $("#webhook-url").value.trim(), scope,
      statuses: Array.from(this.form.querySelectorAll("input[name=webhook-status]:checked"),
        (box) => box.value),
      description: $("#webhook-description").value.trim() || null,
    };
    if (scope !== "server") body.scope_value = $("#webhook-scope-value").value.trim();
    const reply = await attempt(() => request("POST", "/webhooks", {json: body}));
    if (!reply) return;
    showInfo(reply.message);
    this.form.reset();
    $("#webhook-scope-value-field").hidden = true;
    $("#webhook-secret-value").value = reply.data[0].secret;
    this.secret.hidden = false;
    this.secret.focus();
    $("#webhook-secret-value").select();
    this.load();
  }

  async update(hook, changes) {
    const reply = await attempt(() => request("PATCH", hookPath(hook.id), {json: changes}));
    if (reply) showInfo(reply.message);
    this.load();
  }

  async test(hook) {
    const reply = await attempt(() => request("POST", `${hookPath(hook.id)}/test`));
    if (!reply) return;
    showInfo(reply.message);
    this.showDeliveries(hook);
  }

  async remove(hook) {
    if (!window.confirm(`Delete the webhook to ${hook.url}, with its deliveries?`)) return;
    const reply = await attempt(() => request("DELETE", hookPath(hook.id)));
    if (!reply) return;
    showInfo(reply.message);
    if (this.deliveriesOf && this.deliveriesOf.id === hook.id) {
      this.deliveriesOf = null;
      $("#webhook-deliveries").hidden = true;
    }
    this.load();
  }

  async showDeliveries(hook) {
    const reply = await attempt(() => request("GET",
      `${hookPath(hook.id)}/deliveries?limit=${DELIVERIES_SHOWN}`));
    if (!reply) return;
    this.deliveriesOf = hook;
    $("#webhook-deliveries-url").textContent = hook.url;
    replaceContent($("#webhook-deliveries-rows"), reply.data.map((delivery) => el("tr",
      {class: delivery.state === "failed" ? "failed" : "", dataset: {id: String(delivery.id)}},
      el("td", {dataset: {label: "Job"}}, delivery.job
        ? el("a", {href: `#jobs/${encodeURIComponent(delivery.job)}`, text: delivery.job})
        : "(test)"),
      el("td", {dataset: {label: "State"}, class: "delivery-state", text: delivery.state}),
      el("td", {dataset: {label: "Attempts"}, text: String(delivery.attempts)}),
      el("td", {dataset: {label: "Last outcome"},
        text: delivery.last_error || (delivery.last_code ? `HTTP ${delivery.last_code}` : "—")}),
      el("td", {dataset: {label: "Created"}}, timeCell(delivery.created)),
      el("td", {dataset: {label: "Finished"}}, timeCell(delivery.finished)))));
    $("#webhook-deliveries-empty").hidden = reply.data.length > 0;
    $("#webhook-deliveries").hidden = false;
  }
}
