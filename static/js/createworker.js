// createworker.js — the Create a Worker tab: a name and code, prefilled from a template.
//
// Contract: new CreateWorkerTab({workers}) takes the #create-worker-form of index.html. The code
// starts as static/templates/worker.py, whose class is renamed as the name is typed (a worker's
// class is named like its file). The name is checked as the server will check it
// (NAME_PATTERN) before anything is sent; replacing an existing worker asks first. Save sends
// PUT /workers/NAME; code the server refuses shows its message, and the line it names is
// highlighted. shown() is called when the tab appears.

import {getText, request, workerPath} from "./api.js";
import {$} from "./dom.js";
import {CodeEditor} from "./editor.js";
import {clearError, showError, showInfo} from "./notices.js";

export const NAME_PATTERN = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;
const TEMPLATE_URL = "/static/templates/worker.py";
const TEMPLATE_CLASS = "MyWorker";

export class CreateWorkerTab {
  constructor({workers}) {
    this.workers = workers;
    this.form = $("#create-worker-form");
    this.name = $("#create-worker-name");
    this.nameError = $("#create-worker-name-error");
    this.submit = $("#create-worker-submit");
    this.editor = null;
    this.className = TEMPLATE_CLASS;
    this.name.addEventListener("input", () => this.nameChanged());
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.save();
    });
  }

  /** Made when the tab first appears: CodeMirror measures itself and cannot while hidden. */
  async shown() {
    if (this.editor) {
      this.editor.refresh();
      return;
    }
    this.editor = new CodeEditor($("#create-worker-editor"), {label: "Code of the new worker"});
    try {
      this.editor.setValue(await getText(TEMPLATE_URL));
    } catch (error) {
      showError(`The worker template could not be loaded: ${error.message}`);
    }
    this.nameChanged();
  }

  nameProblem() {
    const name = this.name.value;
    if (name === "") return "Give the worker a name.";
    if (!NAME_PATTERN.test(name)) {
      return "A name is a letter, then up to 63 letters, digits or underscores.";
    }
    return null;
  }

  nameChanged() {
    const name = this.name.value;
    const problem = name === "" ? null : this.nameProblem();
    this.nameError.hidden = !problem;
    this.nameError.textContent = problem || "";
    this.name.setAttribute("aria-invalid", String(Boolean(problem)));
    if (!problem && name && this.editor) this.renameClass(name);
  }

  /** Keep `class NAME(` in step with the name, as long as the code still has the old one. */
  renameClass(name) {
    const cm = this.editor.cm;
    const pattern = new RegExp(`^class ${this.className}\\b`);
    for (let line = 0; line < cm.lineCount(); line++) {
      const text = cm.getLine(line);
      if (pattern.test(text)) {
        cm.replaceRange(name, {line, ch: 6}, {line, ch: 6 + this.className.length});
        this.className = name;
        return;
      }
    }
  }

  async save() {
    clearError();
    const problem = this.nameProblem();
    if (problem) {
      this.nameError.hidden = false;
      this.nameError.textContent = problem;
      this.name.setAttribute("aria-invalid", "true");
      this.name.focus();
      return;
    }
    const name = this.name.value;
    if (this.workers.find(name) &&
        !window.confirm(`A worker named ${name} exists. Replace its code?`)) return;
    this.submit.disabled = true;
    try {
      const reply = await request("PUT", workerPath(name), {text: this.editor.value});
      this.editor.markClean();
      showInfo(reply.message || `Worker ${name} saved.`);
      this.workers.refresh().catch(() => {});
    } catch (error) {
      showError(error.message);
      if (error.line) this.editor.showErrorAt(error.line);
    } finally {
      this.submit.disabled = false;
    }
  }
}
