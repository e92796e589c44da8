// jobcode.js — the code a job ran, in the job view: its source and a diff against today's.
//
// Contract: new JobCodeView(root) takes the #job-detail-code element of index.html. show(job)
// shows the code of that job: nothing to fetch until it has started (its code_hash is set
// then), else GET /jobs/ID/code (the source as it ran, who saved that version and when) and
// GET /jobs/ID/code/diff (a unified diff from it to today's worker file, or that the worker was
// deleted). Fetched once per job and version; reload() fetches again (today's file may have
// changed); workersChanged(list) does so when the list of workers (workerstore.js) says that
// job's worker is no longer the file the diff was made against. The source and the diff are shown as text, never as markup: each diff line is its own
// element, coloured by its first character (+ added, - removed, @@ a hunk's head).

import {jobPath, request} from "./api.js";
import {el, replaceContent} from "./dom.js";
import {formatTime} from "./format.js";

export class JobCodeView {
  constructor(root) {
    this.root = root;
    this.shownFor = null; // "job id:code hash" of what is shown
    this.asking = null;
    this.shown = null; // {job, worker, today: "sha256:…" or null (deleted)} once rendered
  }

  show(job) {
    if (!job.code_hash) {
      this.shownFor = null;
      this.shown = null;
      replaceContent(this.root, el("p", {class: "hint",
        text: "The code a job runs is recorded when it starts."}));
      return;
    }
    const key = `${job.id}:${job.code_hash}`;
    if (this.shownFor === key) return;
    this.shownFor = key;
    this.load(job.id, key);
  }

  reload(job) {
    this.shownFor = null;
    this.show(job);
  }

  /** Fetch the diff again when today's file of the shown job's worker changed or went. */
  workersChanged(list) {
    if (!this.shown) return;
    const worker = list.find((w) => w.name === this.shown.worker);
    const today = worker ? worker.hash : null;
    if (today !== this.shown.today) this.reload(this.shown.job);
  }

  async load(id, key) {
    this.asking = key;
    this.shown = null;
    replaceContent(this.root, el("p", {class: "hint", text: "Loading the code it ran…"}));
    let code, diff;
    try {
      [code, diff] = await Promise.all([request("GET", jobPath(id, "/code")),
        request("GET", jobPath(id, "/code/diff"))]);
    } catch (error) {
      if (this.asking === key) {
        replaceContent(this.root, el("p", {class: "hint", text: error.message}));
      }
      return;
    }
    if (this.asking !== key) return; // another job (or version) is shown now
    const shown = diff.data[0];
    this.shown = {job: {id, code_hash: shown.hash}, worker: shown.worker,
      today: shown.current_hash ? `sha256:${shown.current_hash}` : null};
    this.render(code.data[0], shown);
  }

  render(code, diff) {
    const who = code.saved_by ? `saved by ${code.saved_by} ${formatTime(code.saved)}`
      : `found on disk (file of ${formatTime(code.saved)})`;
    const today = diff.worker_deleted ? `The worker ${code.worker} has since been deleted.`
      : diff.current ? `Today's ${code.worker} is the same code.`
        : `Today's ${code.worker} differs (${diff.current_hash.slice(0, 12)}).`;
    const source = el("details", {class: "code-ran"},
      el("summary", {text: "The code it ran"}),
      el("pre", {class: "code-view", text: code.source}));
    const parts = [el("p", {class: "code-summary", dataset: {state: diff.worker_deleted
      ? "deleted" : diff.current ? "current" : "changed"}},
    `Version ${code.hash.slice(0, 12)}, ${who}. ${today}`), source];
    if (!diff.current && !diff.worker_deleted) {
      parts.push(el("details", {class: "code-diff", open: true},
        el("summary", {text: "What changed since (a diff with today's worker)"}),
        el("pre", {class: "diff-view", attrs: {"aria-label": "unified diff"}},
          diff.diff.split("\n").filter((line, i, lines) => line || i < lines.length - 1)
            .map((line) => el("span", {class: diffClass(line), text: `${line}\n`})))));
    }
    replaceContent(this.root, ...parts);
  }
}

function diffClass(line) {
  if (line.startsWith("+++") || line.startsWith("---")) return "diff-file";
  if (line.startsWith("@@")) return "diff-hunk";
  if (line.startsWith("+")) return "diff-add";
  if (line.startsWith("-")) return "diff-del";
  return "diff-same";
}
