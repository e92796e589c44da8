// account.js — the Account tab, for every signed-in user: their password and API tokens.
//
// Contract: new AccountTab() takes the #panel-account elements of index.html; start(me) is
// called with GET /session's answer ({username, role, scheme}); shown() (re)loads the tokens.
// The password form sends PUT /users/ME/password {current, password}; the server ends the
// user's sessions, this page's included, so success leads to the sign-in form. The token form
// sends POST /tokens {name, role, expires_in} with a role no higher than the user's, then shows
// the secret once (with a Copy button) until Done; it is never kept anywhere else. Revoke asks
// first, then DELETE /tokens/ID. Every refusal shows the server's message.

import {address, request} from "./api.js";
import {$, el, replaceContent} from "./dom.js";
import {formatTime} from "./format.js";
import {attempt, showError, showInfo} from "./notices.js";
import {rolesUpTo} from "./roles.js";
import {timeCell} from "./timecell.js";

const userPath = (name, suffix = "") => `/users/${encodeURIComponent(name)}${suffix}`;

export class AccountTab {
  constructor() {
    this.me = null;
    this.passwordForm = $("#password-form");
    this.current = $("#password-current");
    this.fresh = $("#password-new");
    this.repeat = $("#password-repeat");
    this.repeatError = $("#password-repeat-error");
    this.tokenForm = $("#token-form");
    this.tokenName = $("#token-name");
    this.tokenRole = $("#token-role");
    this.tokenExpiry = $("#token-expiry");
    this.rows = $("#tokens-rows");
    this.emptyNote = $("#tokens-empty");
    this.secret = $("#token-secret");
    this.secretValue = $("#token-secret-value");

    this.passwordForm.addEventListener("submit", (event) => {
      event.preventDefault();
      this.changePassword();
    });
    this.repeat.addEventListener("input", () => this.checkRepeat(false));
    this.tokenForm.addEventListener("submit", (event) => {
      event.preventDefault();
      this.createToken();
    });
    $("#token-secret-copy").addEventListener("click", () => this.copySecret());
    $("#token-secret-done").addEventListener("click", () => this.hideSecret());
  }

  start(me) {
    this.me = me;
    $("#password-username").value = me.username;
    replaceContent(this.tokenRole,
      rolesUpTo(me.role).map((role) => el("option", {value: role, text: role})));
    this.tokenRole.value = me.role;
  }

  shown() {
    if (this.me) this.load();
  }

  async load() {
    const reply = await attempt(() => request("GET", "/tokens"));
    if (!reply) return;
    this.emptyNote.hidden = reply.data.length > 0;
    replaceContent(this.rows, reply.data.map((token) => this.row(token)));
  }

  row(token) {
    const expired = token.expires !== null && token.expires * 1000 < Date.now();
    const state = token.revoked ? el("span", {class: "badge status-error", text: "revoked",
      title: `revoked ${formatTime(token.revoked)}`})
      : expired ? el("span", {class: "badge status-stop", text: "expired"})
        : el("span", {class: "badge status-done", text: "active"});
    return el("tr", {dataset: {id: token.id}},
      el("th", {scope: "row"}, el("span", {class: "token-name", text: token.name}),
        el("code", {class: "token-id", text: token.id})),
      el("td", {dataset: {label: "Role"}, text: token.role}),
      el("td", {dataset: {label: "Created"}}, timeCell(token.created)),
      el("td", {dataset: {label: "Expires"}}, timeCell(token.expires, "never")),
      el("td", {dataset: {label: "Last used"}}, timeCell(token.last_used, "never")),
      el("td", {dataset: {label: "State"}}, state,
        token.revoked ? el("span", {class: "cell-note"}, " ", timeCell(token.revoked)) : null),
      el("td", {class: "cell-actions"}, token.revoked ? null
        : el("button", {type: "button", class: "danger small", text: "Revoke",
          attrs: {"aria-label": `Revoke token ${token.name}`},
          on: {click: () => this.revoke(token)}})));
  }

  checkRepeat(submitting) {
    const differs = this.repeat.value !== this.fresh.value;
    const show = differs && (submitting || this.repeat.value.length >= this.fresh.value.length);
    this.repeatError.hidden = !show;
    this.repeat.setAttribute("aria-invalid", String(show));
    return !differs;
  }

  async changePassword() {
    if (!this.checkRepeat(true)) {
      this.repeat.focus();
      return;
    }
    const body = {password: this.fresh.value};
    if (this.current.value) body.current = this.current.value;
    const submit = $("#password-submit");
    submit.disabled = true;
    const reply = await attempt(() => request("PUT", userPath(this.me.username, "/password"),
      {json: body}));
    submit.disabled = false;
    if (!reply) return;
    this.passwordForm.reset();
    // The server has ended every session of this user, this page's too: sign in again.
    showInfo(`${reply.message}. Sign in again with the new password.`);
    if (this.me.scheme === "session") window.location.assign(address("/login"));
  }

  async createToken() {
    const name = this.tokenName.value.trim();
    if (!name) {
      showError("Give the token a name that says what it is for.");
      this.tokenName.focus();
      return;
    }
    const body = {name, role: this.tokenRole.value};
    if (this.tokenExpiry.value) body.expires_in = Number(this.tokenExpiry.value);
    const reply = await attempt(() => request("POST", "/tokens", {json: body}));
    if (!reply) return;
    const token = reply.data[0];
    this.tokenName.value = "";
    $("#token-secret-name").textContent = token.name;
    this.secretValue.value = token.token;
    this.secret.hidden = false;
    this.secret.focus();
    this.secretValue.select();
    this.load();
  }

  async copySecret() {
    this.secretValue.select();
    try {
      await navigator.clipboard.writeText(this.secretValue.value);
    } catch {
      // No clipboard API (not a secure context, or refused): the old way, from the selection.
      if (!document.execCommand("copy")) {
        showError("The browser would not copy it: the token is selected, press Ctrl+C.");
        return;
      }
    }
    showInfo("Token copied to the clipboard.");
  }

  hideSecret() {
    this.secretValue.value = "";
    this.secret.hidden = true;
    this.tokenName.focus();
  }

  async revoke(token) {
    if (!window.confirm(`Revoke token ${token.name}? Scripts using it are refused at once.`)) {
      return;
    }
    const reply = await attempt(() => request("DELETE", `/tokens/${encodeURIComponent(token.id)}`));
    if (!reply) return;
    showInfo(reply.message || `Token ${token.name} revoked.`);
    this.load();
  }
}
