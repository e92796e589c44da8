// createjob.js — the Create a Job tab: choose a worker, give parameters, create, maybe start.
//
// Contract: new CreateJobTab({workers, onCreated}) takes the #create-job-form of index.html.
// Sending is disabled while the parameters are not valid, and the editor says what is wrong
// before anything is sent. Submitting creates the job (POST /jobs) and, when "Start it at once"
// is ticked, starts it (PUT /jobs/ID/status); then onCreated(job) (the page opens it in Manage
// Jobs). A refusal shows the server's message (for parameters, every problem it found). The
// parameters editor comes from parametersEditorFor (params.js): a form generated from what the
// worker declares, or a JSON editor for a worker that declares nothing.

import {jobPath, request} from "./api.js";
import {$, el, replaceContent} from "./dom.js";
import {declaresParameters, parametersEditorFor} from "./params.js";
import {attempt, showError, showInfo} from "./notices.js";

export class CreateJobTab {
  constructor({workers, onCreated}) {
    this.workers = workers;
    this.onCreated = onCreated;
    this.form = $("#create-job-form");
    this.select = $("#create-job-worker");
    this.description = $("#create-job-worker-description");
    this.startAtOnce = $("#create-job-start");
    this.submit = $("#create-job-submit");
    this.slot = $("#create-job-params");
    this.editor = null;
    this.editorKey = null;
    this.jsonEditor = null; // kept while other workers' forms are shown
    this.listening = new WeakSet();
    this.valid = true;
    this.busy = false;

    workers.subscribe((list) => this.fillWorkers(list));
    this.select.addEventListener("change", () => this.workerChosen());
    this.startAtOnce.addEventListener("change", () => this.updateSubmit());
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.create();
    });
    this.workerChosen();
  }

  fillWorkers(list) {
    const chosen = this.select.value;
    replaceContent(this.select, list.length === 0
      ? el("option", {value: "", text: "No workers yet"})
      : list.map((worker) => el("option", {value: worker.name, text: worker.name})));
    if (list.some((worker) => worker.name === chosen)) this.select.value = chosen;
    this.workerChosen();
  }

  workerChosen() {
    const worker = this.workers.find(this.select.value);
    this.description.textContent = worker ? worker.description || "(no description)" : "";
    // A worker that declares its parameters gets its own form; the others share one JSON
    // editor, kept across them so typed parameters survive a change of mind.
    const key = declaresParameters(worker) ? `form:${worker.name}:${worker.hash}` : "json";
    if (this.editorKey !== key) {
      this.editorKey = key;
      const editor = key === "json" && this.jsonEditor ? this.jsonEditor
        : parametersEditorFor(worker, {id: "create-job-parameters"});
      if (key === "json") this.jsonEditor = editor;
      if (!this.listening.has(editor)) {
        this.listening.add(editor);
        editor.onChange((result) => {
          if (this.editor !== editor) return; // a form left behind by a change of worker
          this.valid = result.ok;
          this.updateSubmit();
        });
      }
      this.editor = editor;
      replaceContent(this.slot, editor.element);
      this.valid = editor.read().ok;
    }
    this.updateSubmit();
  }

  updateSubmit() {
    this.submit.textContent = this.startAtOnce.checked ? "Create and start" : "Create job";
    this.submit.disabled = this.busy || !this.valid || !this.select.value;
  }

  async create() {
    const parameters = this.editor.read();
    if (!parameters.ok) {
      this.editor.focus();
      return;
    }
    this.busy = true;
    this.updateSubmit();
    try {
      const created = await attempt(() => request("POST", "/jobs",
        {json: {worker: this.select.value, parameters: parameters.value}}));
      if (!created) return;
      let job = created.data[0];
      if (this.startAtOnce.checked) {
        try {
          job = (await request("PUT", jobPath(job.id, "/status"), {text: "start"})).data[0];
          showInfo(`Job ${job.id} created and started.`);
        } catch (error) {
          showError(`Job ${job.id} was created but did not start: ${error.message}`);
        }
      } else {
        showInfo(created.message || `Job ${job.id} created.`);
      }
      this.onCreated(job);
    } finally {
      this.busy = false;
      this.updateSubmit();
    }
  }
}
