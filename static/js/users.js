// users.js — the Users tab (admins): every account, created, re-roled, disabled or deleted.
//
// Contract: new UsersTab({me}) takes the #panel-users elements of index.html; shown() reloads
// the list (GET /users). The form creates a user (POST /users {username, password, role});
// each row's role select sends PATCH /users/NAME {role} at once, Disable/Enable sends
// {disabled}, Delete asks first, then DELETE /users/NAME. A refusal (409 "the last active
// admin", say) shows the server's message and the list is read again, so it shows what is true.

import {request} from "./api.js";
import {$, el, replaceContent} from "./dom.js";
import {attempt, showError, showInfo} from "./notices.js";
import {ROLES} from "./roles.js";
import {timeCell} from "./timecell.js";

const userPath = (name) => `/users/${encodeURIComponent(name)}`;

export class UsersTab {
  constructor() {
    this.me = null;
    this.rows = $("#users-rows");
    this.form = $("#user-form");
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.create();
    });
  }

  start(me) {
    this.me = me;
  }

  shown() {
    return this.load();
  }

  async load() {
    // Not through attempt(): that would clear the refusal a failed change just showed.
    try {
      const reply = await request("GET", "/users");
      replaceContent(this.rows, reply.data.map((user) => this.row(user)));
    } catch (error) {
      showError(error.message);
    }
  }

  row(user) {
    const you = this.me && user.username === this.me.username;
    const role = el("select", {attrs: {"aria-label": `Role of ${user.username}`},
      on: {change: () => this.update(user, {role: role.value})}},
    ROLES.map((name) => el("option", {value: name, text: name})));
    role.value = user.role;
    return el("tr", {class: user.disabled ? "disabled" : "", dataset: {username: user.username}},
      el("th", {scope: "row"}, el("span", {class: "user-name", text: user.username}),
        you ? el("span", {class: "you", text: " (you)"}) : null),
      el("td", {dataset: {label: "Role"}}, role),
      el("td", {dataset: {label: "State"}}, user.disabled
        ? el("span", {class: "badge status-error", text: "disabled"})
        : el("span", {class: "badge status-done", text: "active"})),
      el("td", {dataset: {label: "Created"}}, timeCell(user.created)),
      el("td", {class: "cell-actions"},
        el("button", {type: "button", class: "small", text: user.disabled ? "Enable" : "Disable",
          attrs: {"aria-label": `${user.disabled ? "Enable" : "Disable"} ${user.username}`},
          on: {click: () => this.update(user, {disabled: !user.disabled})}}),
        el("button", {type: "button", class: "danger small", text: "Delete",
          attrs: {"aria-label": `Delete ${user.username}`},
          on: {click: () => this.remove(user)}})));
  }

  async create() {
    const username = $("#user-name").value.trim();
    const password = $("#user-password").value;
    if (!username) {
      showError("Give the user a name.");
      $("#user-name").focus();
      return;
    }
    const reply = await attempt(() => request("POST", "/users",
      {json: {username, password, role: $("#user-role").value}}));
    if (!reply) return;
    showInfo(reply.message);
    this.form.reset();
    this.load();
  }

  async update(user, changes) {
    if (changes.disabled && !window.confirm(
      `Disable ${user.username}? Their sessions end now and they cannot sign in.`)) return;
    const reply = await attempt(() => request("PATCH", userPath(user.username), {json: changes}));
    if (reply) showInfo(reply.message);
    this.load(); // on a refusal too: the select must show the role the user still has
  }

  async remove(user) {
    if (!window.confirm(`Delete user ${user.username}, with their tokens and sessions?`)) return;
    const reply = await attempt(() => request("DELETE", userPath(user.username)));
    if (!reply) return;
    showInfo(reply.message);
    this.load();
  }
}
