// params.js — the parameters editor of the Create a Job tab.
//
// Contract: parametersEditorFor(worker, {id}) returns an editor with four members:
//   element     the DOM to place in the form
//   read()      {ok: true, value} with the parameters object to send, or
//               {ok: false, message} saying what is wrong (shown by the editor itself)
//   onChange(fn)  fn(read()) after every edit, so the form can disable sending at once
//   focus()     puts the caret where the problem is (or at the start)
// A worker that declares its parameters (GET /workers gives them) gets a form generated from
// the declaration (paramform.js); any other worker gets a JSON editor, checked as you type.
// Both implement the same four members, so the Create a Job tab (createjob.js) does not care.

import {el} from "./dom.js";
import {checkJSON} from "./jsoncheck.js";
import {FormParametersEditor} from "./paramform.js";

/** What a secret parameter's value shows as in a job (parameters.MASK on the server). */
export const MASK = "********";

/** Whether `worker` declares parameters (then its editor is a generated form). */
export function declaresParameters(worker) {
  return Boolean(worker && worker.parameters && Object.keys(worker.parameters).length);
}

export function parametersEditorFor(worker, options) {
  if (declaresParameters(worker)) return new FormParametersEditor(worker.parameters, options);
  return new JsonParametersEditor(options);
}

class JsonParametersEditor {
  constructor({id, initial = "{}"}) {
    // An object (a job run again: its parameters) is shown as JSON.
    if (typeof initial !== "string") initial = JSON.stringify(initial, null, 2);
    this.listeners = [];
    this.problem = null;
    this.hint = el("p", {id: `${id}-hint`, class: "hint",
      text: 'A JSON object, e.g. {"count": 3, "sleep": 1}; {} for none. It is checked as ' +
        "you type."});
    this.error = el("p", {id: `${id}-error`, class: "field-error", hidden: true,
      attrs: {"aria-live": "polite"}});
    this.textarea = el("textarea", {id, class: "code-input", value: initial, rows: 8,
      spellcheck: false, attrs: {"aria-describedby": `${id}-hint ${id}-error`,
        "aria-labelledby": "create-job-parameters-label",
        autocomplete: "off", autocapitalize: "off"},
      on: {input: () => this.changed()}});
    this.element = el("div", {class: "params-editor"}, this.textarea, this.error, this.hint);
    this.changed();
  }

  read() {
    const text = this.textarea.value;
    if (text.trim() === "") return {ok: true, value: {}};
    const result = checkJSON(text);
    if (!result.ok) {
      return {ok: false, message: `Line ${result.line}, column ${result.column}: ` +
        `${result.message}.`, offset: result.offset};
    }
    const value = result.value;
    if (value === null) return {ok: true, value: {}};
    if (typeof value !== "object" || Array.isArray(value)) {
      const kind = Array.isArray(value) ? "an array" : `a ${typeof value}`;
      return {ok: false, message: `The parameters must be a JSON object like {"count": 3}, ` +
        `not ${kind}.`, offset: 0};
    }
    return {ok: true, value};
  }

  onChange(fn) {
    this.listeners.push(fn);
  }

  changed() {
    const result = this.read();
    this.problem = result.ok ? null : result;
    this.error.hidden = result.ok;
    this.error.textContent = result.ok ? "" : result.message;
    this.textarea.setAttribute("aria-invalid", String(!result.ok));
    for (const fn of this.listeners) fn(result);
  }

  focus() {
    this.textarea.focus();
    if (this.problem) {
      const at = this.problem.offset;
      this.textarea.setSelectionRange(at, Math.min(at + 1, this.textarea.value.length));
    }
  }
}
