// workers.js — the Manage Workers tab: the workers with their descriptions and declared
// parameters, Run, Code and Delete.
//
// Contract: new WorkersTab({workers, onRun}) takes the #workers-list and #worker-code elements
// of index.html and shows the WorkerStore's list (live: it follows the store). Each worker shows
// the parameters it declares (or says it declares none, so they are not checked); a worker
// whose code is invalid is marked so, with the server's reason, and has no Run. Run calls
// onRun(name) (the page opens Create a Job with it chosen; data-needs="operator"). Delete asks
// first, in the worker's row (not window.confirm), then sends DELETE /workers/NAME; a refusal,
// e.g. a worker with an active job, shows the server's message in the row. Code opens the source in a CodeMirror editor with Python highlighting;
// Save sends it (PUT /workers/NAME) and, when the server refuses code that does not parse,
// shows its message and highlights the line it names (the 422 reply's data[0].line).
// shown() is called when the tab appears (the editor measures itself then). Delete and Save
// are marked data-needs="admin" (roles.js hides them from others; the server refuses anyway).

import {getText, request, workerPath} from "./api.js";
import {$, el, replaceContent} from "./dom.js";
import {CodeEditor} from "./editor.js";
import {formatBytes, formatTime} from "./format.js";
import {attempt, clearError, showError, showInfo} from "./notices.js";
import {workerProblem} from "./workerstore.js";

export class WorkersTab {
  constructor({workers, onRun = () => {}}) {
    this.workers = workers;
    this.onRun = onRun;
    this.list = $("#workers-list");
    this.emptyNote = $("#workers-empty");
    this.section = $("#worker-code");
    this.nameLabel = $("#worker-code-name");
    this.saveButton = $("#worker-code-save");
    this.editor = null; // made on first use: CodeMirror must be visible to measure itself
    this.name = null;
    this.confirming = null; // the worker whose Delete asks in its row
    this.refused = null; // {name, message}: why the server refused to delete it
    this.saveButton.addEventListener("click", () => this.save());
    $("#worker-code-close").addEventListener("click", () => this.closeCode());
    workers.subscribe((list) => this.render(list));
  }

  render(list) {
    this.emptyNote.hidden = list.length > 0;
    replaceContent(this.list, list.map((worker) => this.item(worker)));
  }

  item(worker) {
    const opened = worker.name === this.name;
    const problem = workerProblem(worker);
    return el("li", {class: `worker${opened ? " opened" : ""}${problem ? " invalid" : ""}`,
      dataset: {worker: worker.name}},
      el("div", {class: "worker-main"},
        el("h3", {class: "worker-name"}, worker.name,
          problem ? el("span", {class: "badge status-error worker-invalid",
            text: "invalid code"}) : null),
        problem
          ? el("p", {class: "worker-error",
            text: `It cannot run jobs until its code is fixed: ${problem}`})
          : el("p", {class: "worker-description",
            text: worker.description || "(no description)"}),
        problem ? null : parametersOf(worker),
        el("p", {class: "worker-meta"},
          `${formatBytes(worker.size)} · modified `,
          el("time", {text: formatTime(worker.modified)})),
        this.confirming === worker.name ? this.deleteQuestion(worker.name) : null,
        this.refused && this.refused.name === worker.name
          ? el("p", {class: "refusal-inline", text: this.refused.message,
            attrs: {role: "alert"}}) : null),
      el("div", {class: "worker-actions"},
        problem ? null : el("button", {type: "button", class: "primary", text: "Run",
          dataset: {needs: "operator"}, attrs: {"aria-label": `Run ${worker.name}`},
          on: {click: () => this.onRun(worker.name)}}),
        el("button", {type: "button", text: "Code",
          attrs: {"aria-label": `Code of ${worker.name}`},
          on: {click: () => this.openCode(worker.name)}}),
        el("button", {type: "button", class: "danger", text: "Delete", dataset: {needs: "admin"},
          attrs: {"aria-label": `Delete ${worker.name}`},
          on: {click: () => this.ask(worker.name)}})));
  }

  deleteQuestion(name) {
    return el("div", {class: "confirm-inline", dataset: {needs: "admin"},
      attrs: {role: "group", "aria-label": `Delete ${name}?`},
      on: {keydown: (event) => { if (event.key === "Escape") this.ask(null); }}},
      el("p", {class: "confirm-text",
        text: `Delete worker ${name}? Its file is removed; its jobs stay.`}),
      el("button", {type: "button", class: "danger", text: "Delete it",
        on: {click: () => this.remove(name)}}),
      el("button", {type: "button", text: "Cancel", on: {click: () => this.ask(null)}}));
  }

  /** Ask in `name`'s row whether to delete it (null: ask nothing). */
  ask(name) {
    this.confirming = name;
    this.refused = null;
    this.render(this.workers.workers);
    const question = this.list.querySelector(".confirm-inline button");
    if (question) question.focus();
  }

  shown() {
    if (this.editor) this.editor.refresh();
  }

  async openCode(name) {
    if (this.editor && this.editor.isDirty() && this.name !== name &&
        !window.confirm(`Discard your changes to ${this.name}?`)) return;
    const code = await attempt(() => getText(workerPath(name, "/code")));
    if (code === undefined) return;
    this.name = name;
    this.nameLabel.textContent = name;
    this.section.hidden = false;
    if (!this.editor) {
      this.editor = new CodeEditor($("#worker-code-editor"), {label: `Code of ${name}`});
    }
    this.editor.setValue(code);
    this.editor.refresh();
    this.render(this.workers.workers);
    // Beside the list on a wide screen; below it on a narrow one, so bring it into view there.
    if (window.matchMedia("(max-width: 1099px)").matches) {
      this.section.scrollIntoView({block: "start"});
    }
    this.editor.focus();
  }

  closeCode() {
    if (this.editor && this.editor.isDirty() &&
        !window.confirm(`Discard your changes to ${this.name}?`)) return;
    this.name = null;
    this.section.hidden = true;
    this.render(this.workers.workers);
  }

  async save() {
    clearError();
    this.saveButton.disabled = true;
    try {
      const reply = await request("PUT", workerPath(this.name), {text: this.editor.value});
      this.editor.markClean();
      showInfo(reply.message || `Worker ${this.name} saved.`);
    } catch (error) {
      showError(error.message);
      if (error.line) this.editor.showErrorAt(error.line);
    } finally {
      this.saveButton.disabled = false;
    }
  }

  async remove(name) {
    this.confirming = null;
    let reply;
    try {
      reply = await request("DELETE", workerPath(name));
    } catch (error) {
      this.refused = {name, message: error.message || String(error)};
      this.render(this.workers.workers);
      return;
    }
    showInfo(reply.message || `Worker ${name} deleted.`);
    if (this.name === name) {
      this.editor.markClean();
      this.closeCode(); // renders the list
    } else {
      this.render(this.workers.workers);
    }
    this.workers.refresh().catch(() => {});
  }
}

/** The parameters a worker declares, one line each: "width (integer, required, 1–4000)". */
function parametersOf(worker) {
  const declared = worker.parameters;
  if (!declared || typeof declared !== "object") {
    return el("p", {class: "worker-params-none",
      text: "Declares no parameters: any are accepted, unchecked."});
  }
  const names = Object.keys(declared);
  if (names.length === 0) {
    return el("p", {class: "worker-params-none", text: "Takes no parameters."});
  }
  return el("ul", {class: "worker-params", attrs: {"aria-label": `Parameters of ${worker.name}`}},
    names.map((name) => {
      const spec = declared[name];
      const notes = [spec.type || "string", spec.required ? "required" : null,
        spec.secret ? "secret" : null,
        spec.enum ? `one of ${spec.enum.map((c) => JSON.stringify(c)).join(", ")}` : null,
        spec.minimum !== undefined ? `≥ ${spec.minimum}` : null,
        spec.maximum !== undefined ? `≤ ${spec.maximum}` : null,
        spec.default !== undefined ? `default ${JSON.stringify(spec.default)}` : null]
        .filter(Boolean).join(", ");
      return el("li", {class: "worker-param"},
        el("code", {text: name}), ` (${notes})`,
        spec.description ? ` — ${spec.description}` : null);
    }));
}
