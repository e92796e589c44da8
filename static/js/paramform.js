// paramform.js — a form generated from the parameters a worker declares.
//
// Contract: new FormParametersEditor(declared, {id}) implements the parameters-editor members
// params.js describes (element, read(), onChange(fn), focus()). `declared` is the worker's
// `parameters` from GET /workers: {name: {type, required, default, description, secret, enum,
// minimum, maximum, label}}. One field per parameter: a text box (a password box for a secret
// one), a number box, a checkbox, a list for an enum, and a JSON box for objects and arrays.
// read() checks what the server will check (required, type, bounds, choices), so a mistake is
// shown at its field before anything is sent; an empty optional field is left out, and the
// server fills in its default. Secret defaults are never sent to the page, so none is shown.
//
// No field starts with a value nobody chose: a field starts with the declared default or empty.
// A list without a default starts on an empty "— choose —" (a required one must be chosen), and
// a boolean without a default is a list of true and false starting empty, not a checkbox that
// would send false unasked. Required fields are marked in their label; read()'s message names
// every field still missing, for the form to show beside its disabled submit button.
//
// Run again: with {initial, rerunOf} the fields start with the old job's values (`initial`, its
// parameters as GET /jobs/ID shows them) instead of the defaults, except secret ones: those were
// not copied (the server never sends them back), so they start empty with a note saying they must
// be given again.

import {el} from "./dom.js";
import {checkJSON} from "./jsoncheck.js";

export class FormParametersEditor {
  constructor(declared, {id, initial = null, rerunOf = null}) {
    this.listeners = [];
    this.fields = Object.entries(declared).map(([name, spec], index) =>
      new Field(name, spec, `${id}-${index}`, () => this.changed(),
        initial && Object.hasOwn(initial, name) ? {value: initial[name], rerunOf} : null));
    this.summary = el("p", {class: "field-error", hidden: true, attrs: {"aria-live": "polite"}});
    this.element = el("div", {class: "params-form", attrs: {role: "group",
      "aria-labelledby": "create-job-parameters-label"}},
      this.fields.map((field) => field.element), this.summary);
    this.changed({quiet: true});
  }

  read() {
    const value = {};
    const problems = [];
    for (const field of this.fields) {
      const result = field.read();
      if (!result.ok) problems.push(result.message);
      else if (result.value !== undefined) value[field.name] = result.value;
    }
    if (problems.length) return {ok: false, message: problems.join(" ")};
    return {ok: true, value};
  }

  onChange(fn) {
    this.listeners.push(fn);
  }

  changed({quiet = false} = {}) {
    const result = this.read();
    for (const field of this.fields) field.showProblem(quiet);
    for (const fn of this.listeners) fn(result);
  }

  focus() {
    const broken = this.fields.find((field) => !field.read().ok) || this.fields[0];
    if (broken) broken.input.focus();
  }
}

/** A choice as a person reads it: a string as it is, anything else as JSON. */
const shown = (value) => (typeof value === "string" ? value : JSON.stringify(value));

class Field {
  constructor(name, spec, id, onChange, old = null) {
    this.name = name;
    this.spec = spec;
    this.touched = false;
    const kind = spec.type || "string";
    const label = spec.label || name;
    const hasDefault = spec.default !== undefined;
    // A boolean with a default is a checkbox starting at it; without one, a list (see above).
    this.choices = spec.enum || (kind === "boolean" && !hasDefault ? [true, false] : null);
    if (this.choices) {
      const empty = hasDefault && !spec.required ? `(default: ${shown(spec.default)})`
        : spec.required ? "— choose —" : "(none)";
      this.input = el("select", {id},
        spec.required && hasDefault ? null : el("option", {value: "", text: empty}),
        this.choices.map((choice, index) =>
          el("option", {value: String(index), text: shown(choice)})));
      if (spec.required && hasDefault) {
        this.input.value = String(this.choices.findIndex((c) => c === spec.default));
      }
    } else if (kind === "boolean") {
      this.input = el("input", {type: "checkbox", id, checked: spec.default === true});
    } else if (kind === "object" || kind === "array") {
      this.input = el("textarea", {id, class: "code-input", rows: 3, spellcheck: false,
        value: hasDefault ? JSON.stringify(spec.default, null, 2) : ""});
    } else {
      const numeric = kind === "integer" || kind === "number";
      this.input = el("input", {id, type: spec.secret ? "password" : numeric ? "number" : "text",
        value: hasDefault && !spec.secret ? String(spec.default) : "",
        attrs: {autocomplete: spec.secret ? "new-password" : "off", spellcheck: "false",
          step: kind === "integer" ? "1" : numeric ? "any" : null,
          min: spec.minimum ?? null, max: spec.maximum ?? null}});
    }
    const again = old && spec.secret;
    if (old && !spec.secret) this.setValue(old.value);
    this.error = el("p", {id: `${id}-error`, class: "field-error", hidden: true});
    // A secret's default is hidden here but not from viewers: it is in the worker's code.
    const notes = [kind, spec.required ? "required" : null,
      spec.secret ? "secret: what you type is hidden; a default in the worker's code is not" : null,
      spec.minimum !== undefined ? `≥ ${spec.minimum}` : null,
      spec.maximum !== undefined ? `≤ ${spec.maximum}` : null].filter(Boolean).join(", ");
    const hint = el("p", {id: `${id}-hint`, class: "hint",
      text: spec.description ? `${spec.description} (${notes})` : notes},
    again ? el("span", {class: "secret-again", text: ` Not copied from job ${old.rerunOf}: ` +
      "a secret value must be given again."}) : null);
    this.input.setAttribute("aria-describedby", `${id}-hint ${id}-error`);
    if (spec.required) this.input.setAttribute("aria-required", "true");
    this.input.addEventListener("input", () => { this.touched = true; onChange(); });
    this.input.addEventListener("change", () => { this.touched = true; onChange(); });
    const labelElement = el("label", {htmlFor: id}, label,
      spec.required ? el("span", {class: "required-mark", text: " (required)"}) : null);
    this.element = kind === "boolean" && !this.choices
      ? el("div", {class: "param-field check"}, this.input, labelElement, hint, this.error)
      : el("div", {class: "param-field"}, labelElement, this.input, this.error, hint);
  }

  /** Start at an old job's value (run again). */
  setValue(value) {
    if (this.choices) {
      const index = this.choices.findIndex((c) => JSON.stringify(c) === JSON.stringify(value));
      if (index >= 0) this.input.value = String(index);
    } else if (this.input.type === "checkbox") {
      this.input.checked = value === true;
    } else if (value !== null && typeof value === "object") {
      this.input.value = JSON.stringify(value, null, 2);
    } else if (value !== null && value !== undefined) {
      this.input.value = String(value);
    }
  }

  read() {
    const {spec, name} = this;
    const label = spec.label || name;
    const kind = spec.type || "string";
    const fail = (message) => ({ok: false, message: `${label}: ${message}.`});
    if (this.choices) {
      if (this.input.value === "") {
        return spec.required ? fail(spec.enum ? "choose one" : "choose true or false")
          : {ok: true, value: undefined};
      }
      return {ok: true, value: this.choices[Number(this.input.value)]};
    }
    if (kind === "boolean") return {ok: true, value: this.input.checked};
    const text = this.input.value;
    if (text.trim() === "") {
      return spec.required ? fail("required") : {ok: true, value: undefined};
    }
    let value = text;
    if (kind === "integer" || kind === "number") {
      value = Number(text);
      if (!Number.isFinite(value)) return fail("not a number");
      if (kind === "integer" && !Number.isInteger(value)) return fail("must be a whole number");
      if (spec.minimum !== undefined && value < spec.minimum) {
        return fail(`must be at least ${spec.minimum}`);
      }
      if (spec.maximum !== undefined && value > spec.maximum) {
        return fail(`must be at most ${spec.maximum}`);
      }
    } else if (kind === "object" || kind === "array") {
      const parsed = checkJSON(text);
      if (!parsed.ok) {
        return fail(`line ${parsed.line}, column ${parsed.column}: ${parsed.message}`);
      }
      const isArray = Array.isArray(parsed.value);
      if (parsed.value === null || typeof parsed.value !== "object" ||
          isArray !== (kind === "array")) {
        return fail(`must be a JSON ${kind}`);
      }
      value = parsed.value;
    }
    return {ok: true, value};
  }

  /** Show this field's problem once the user has touched it (or always, when not quiet). */
  showProblem(quiet) {
    const result = this.read();
    const show = !result.ok && (this.touched || !quiet);
    this.error.hidden = !show;
    this.error.textContent = show ? result.message : "";
    this.input.setAttribute("aria-invalid", String(show));
  }
}
