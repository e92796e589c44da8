// createjob.js — the Create a Job tab: choose a worker, give parameters, create, maybe start.
//
// Contract: new CreateJobTab({workers, onCreated}) takes the #create-job-form of index.html.
// Nothing starts chosen: the worker list starts on "— choose a worker —" (choose(name) picks one
// from code: the Run button of Manage Workers, the address #create-job/NAME). A worker whose
// code is invalid is listed but cannot be chosen, and says why. Sending is disabled while
// something is missing or wrong, and the form says what, beside the button and in its title;
// the editor shows each problem at its field. Submitting creates the job (POST /jobs) and, when
// "Start it at once" is ticked, starts it (PUT /jobs/ID/status); then onCreated(job) (the page
// opens it in Manage Jobs). A refusal shows the server's message (for parameters, every problem
// it found). The parameters editor comes from parametersEditorFor (params.js): a form generated
// from what the worker declares, or a JSON editor for a worker that declares nothing, with a
// note that its parameters are not checked (GET /workers gives `parameters: null` for it).
//
// Run again: rerun(job) (the job view's Run again button) fills the form with that job's worker
// and parameters, secret ones empty with a note that they must be given again (the server never
// sends them back), and a banner says which job runs again. Sending then goes to
// POST /jobs/ID/rerun, so the new job is linked to the old one (rerun_of); the server merges
// what is sent over the old parameters, so a field left empty keeps the old value (a secret one
// excepted). Choosing another worker, or "Create a new job instead", leaves that mode.

import {jobPath, request} from "./api.js";
import {MASK} from "./params.js";
import {$, el, replaceContent} from "./dom.js";
import {declaresParameters, parametersEditorFor} from "./params.js";
import {attempt, showError, showInfo} from "./notices.js";
import {workerProblem} from "./workerstore.js";

export class CreateJobTab {
  constructor({workers, onCreated}) {
    this.workers = workers;
    this.onCreated = onCreated;
    this.form = $("#create-job-form");
    this.select = $("#create-job-worker");
    this.description = $("#create-job-worker-description");
    this.workerProblem = $("#create-job-worker-problem");
    this.unchecked = $("#create-job-unchecked");
    this.startAtOnce = $("#create-job-start");
    this.timeout = $("#create-job-timeout");
    this.startAt = $("#create-job-start-at"); // a local time: sent as start_at, it schedules
    this.submit = $("#create-job-submit");
    this.missing = $("#create-job-missing");
    this.slot = $("#create-job-params");
    this.editor = null;
    this.editorKey = null;
    this.jsonEditor = null; // kept while other workers' forms are shown
    this.listening = new WeakSet();
    this.problem = null; // what the parameters editor last said is wrong
    this.busy = false;
    this.wanted = null; // a worker asked for by choose() before the list arrived
    this.rerunOf = null; // the job being run again, while the form is filled from it
    this.rerunBanner = $("#create-job-rerun");
    this.rerunText = $("#create-job-rerun-text");
    $("#create-job-rerun-cancel").addEventListener("click", () => this.leaveRerun());

    workers.subscribe((list) => this.fillWorkers(list));
    this.select.addEventListener("change", () => {
      if (this.rerunOf && this.select.value !== this.rerunOf.worker) this.leaveRerun(false);
      this.workerChosen();
    });
    this.startAtOnce.addEventListener("change", () => this.updateSubmit());
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.create();
    });
    this.workerChosen();
  }

  fillWorkers(list) {
    const chosen = this.wanted || this.select.value;
    const option = (worker) => {
      const problem = workerProblem(worker);
      return el("option", {value: worker.name, disabled: Boolean(problem),
        text: problem ? `${worker.name} — invalid code, cannot run: ${problem}` : worker.name});
    };
    replaceContent(this.select, el("option", {value: "",
      text: list.length === 0 ? "No workers yet" : "— choose a worker —"}), list.map(option));
    const worker = list.find((w) => w.name === chosen);
    this.select.value = worker && !workerProblem(worker) ? chosen : "";
    if (list.length > 0) this.wanted = null; // asked for once, against the first real list
    this.workerChosen();
  }

  /** Choose the worker named so (when it can run), as if picked in the list. */
  choose(name) {
    const worker = this.workers.find(name);
    if (!worker) {
      this.wanted = name; // the list has not arrived yet: fillWorkers picks it
      return;
    }
    this.select.value = workerProblem(worker) ? "" : name;
    this.workerChosen();
  }

  /** Fill the form from `job` to run it again (see the module's comment). */
  rerun(job) {
    this.rerunOf = job;
    const worker = this.workers.find(job.worker);
    const secrets = Object.entries(job.parameters || {})
      .filter(([, value]) => value === MASK).map(([name]) => name);
    this.rerunBanner.hidden = false;
    this.rerunText.textContent = `Running job ${job.id} (${job.worker}) again with its ` +
      "parameters: change what you need; a field left empty keeps the old value." +
      (secrets.length ? ` Secret parameters were not copied and must be given again: ` +
        `${secrets.join(", ")}.` : "") +
      (!worker ? ` Its worker ${job.worker} no longer exists, so it cannot run again.` : "");
    this.select.value = worker && !workerProblem(worker) ? job.worker : "";
    this.editorKey = null; // a new editor, filled from the job
    this.workerChosen();
  }

  leaveRerun(refill = true) {
    if (!this.rerunOf) return;
    this.rerunOf = null;
    this.rerunBanner.hidden = true;
    if (refill) {
      this.editorKey = null;
      this.workerChosen();
    }
  }

  workerChosen() {
    const worker = this.select.value ? this.workers.find(this.select.value) : undefined;
    this.description.textContent = worker ? worker.description || "(no description)" : "";
    const problem = workerProblem(worker);
    this.workerProblem.hidden = !problem;
    this.workerProblem.textContent = problem ? `Its code is invalid: ${problem}` : "";
    this.unchecked.hidden = !worker || declaresParameters(worker);
    this.unchecked.textContent = !worker ? "" : uncheckedNote(worker);
    // An empty time limit means the worker's own, when it declares one: say which.
    this.timeout.placeholder = worker && worker.timeout ? `${worker.name}'s own: ${worker.timeout}` : "";
    // A worker that declares its parameters gets its own form; the others share one JSON
    // editor, kept across them so typed parameters survive a change of mind.
    const rerun = this.rerunOf;
    const key = rerun ? `rerun:${rerun.id}:${worker ? worker.hash : ""}`
      : declaresParameters(worker) ? `form:${worker.name}:${worker.hash}` : "json";
    if (this.editorKey !== key) {
      this.editorKey = key;
      const editor = key === "json" && this.jsonEditor ? this.jsonEditor
        : parametersEditorFor(worker, rerun ? {id: "create-job-parameters",
          ...rerunValues(rerun, worker)} : {id: "create-job-parameters"});
      if (key === "json") this.jsonEditor = editor;
      if (!this.listening.has(editor)) {
        this.listening.add(editor);
        editor.onChange((result) => {
          if (this.editor !== editor) return; // a form left behind by a change of worker
          this.problem = result.ok ? null : result.message;
          this.updateSubmit();
        });
      }
      this.editor = editor;
      replaceContent(this.slot, editor.element);
      const result = editor.read();
      this.problem = result.ok ? null : result.message;
    }
    this.updateSubmit();
  }

  /** What stops sending, in a sentence (null when nothing does). */
  get whatIsMissing() {
    if (!this.select.value) {
      if (this.rerunOf) return `The worker ${this.rerunOf.worker} cannot run.`;
      return this.workers.workers.length === 0 ? "There is no worker to run yet."
        : "Choose a worker.";
    }
    return this.problem;
  }

  /** POST /jobs/ID/rerun with what the form holds; the reply says what was not copied. */
  async sendRerun(parameters) {
    const old = this.rerunOf;
    try {
      const reply = await attempt(() => request("POST", jobPath(old.id, "/rerun"),
        {json: {parameters, start: this.startAtOnce.checked}}));
      if (!reply) return;
      showInfo(reply.message || `Job ${reply.data[0].id} created.`);
      this.leaveRerun();
      this.onCreated(reply.data[0]);
    } finally {
      this.busy = false;
      this.updateSubmit();
    }
  }

  updateSubmit() {
    this.submit.textContent = this.rerunOf
      ? (this.startAtOnce.checked ? "Run again" : "Create the job again")
      : this.startAtOnce.checked ? "Create and start" : "Create job";
    const missing = this.whatIsMissing;
    this.submit.disabled = this.busy || missing !== null;
    this.submit.title = missing ? `Not yet: ${missing}` : "";
    this.missing.hidden = missing === null;
    this.missing.textContent = missing ? `To send it: ${missing}` : "";
  }

  async create() {
    const parameters = this.editor.read();
    if (!parameters.ok || !this.select.value) {
      this.editor.focus();
      return;
    }
    this.busy = true;
    this.updateSubmit();
    if (this.rerunOf) {
      await this.sendRerun(parameters.value);
      return;
    }
    try {
      const body = {worker: this.select.value, parameters: parameters.value};
      const timeout = this.timeout.value.trim();
      // A number as a number; anything else as typed, for the server to say what is wrong.
      if (timeout !== "") body.timeout = Number.isFinite(Number(timeout)) ? Number(timeout) : timeout;
      const at = this.startAt.value ? new Date(this.startAt.value) : null;
      if (at) body.start_at = Number.isNaN(at.getTime()) ? this.startAt.value : at.toISOString();
      const created = await attempt(() => request("POST", "/jobs", {json: body}));
      if (!created) return;
      let job = created.data[0];
      if (this.startAtOnce.checked && !at) {
        try {
          const reply = await request("PUT", jobPath(job.id, "/status"), {text: "start"});
          job = reply.data[0];
          showInfo(job.status === "queued" ? reply.message : `Job ${job.id} created and started.`);
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

/** The editor options that fill it from a job run again: its parameters (a form leaves the
 * secret ones empty with a note; the JSON editor leaves them out). */
function rerunValues(job, worker) {
  const parameters = job.parameters || {};
  const initial = declaresParameters(worker) ? parameters : Object.fromEntries(
    Object.entries(parameters).filter(([, value]) => value !== MASK));
  return {initial, rerunOf: job.id};
}

/** The note over the JSON editor of a worker that declares no parameters. */
function uncheckedNote(worker) {
  if (worker.parameters && typeof worker.parameters === "object") {
    return `${worker.name} declares that it takes no parameters: any you give are refused.`;
  }
  return `${worker.name} declares no parameters, so they are not checked: a misspelt name ` +
    "is passed to the job as it is, and the job falls back to its own default.";
}
