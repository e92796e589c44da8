// attempts.js — a job's retry chain in the job view, and its small badge in the jobs list.
//
// Contract: new AttemptsView() makes an element for the job view (jobdetail.js puts it after
// the facts). show(job) shows why the job ended (its reason, for machines: the documented
// values of GET /openapi.json's Job) and, for a job in a retry chain (retries declared or
// given, or a retry itself), every attempt of the chain from GET /jobs/ID/attempts, first
// first: a link to each, its status and reason, and when a scheduled one starts. The chain is
// read again only when the job's status or attempt changes (a retry is made as an attempt ends).
// attemptBadge(job) is the list's "2/4" badge beside a retry's status (null for a first
// attempt). Everything is text, never markup.

import {jobPath, request} from "./api.js";
import {el, replaceContent} from "./dom.js";
import {formatTime, machineTime} from "./format.js";

/** Whether the job belongs to a retry chain worth showing. */
function chained(job) {
  return Boolean(job.retries) || Boolean(job.retry_of) || (job.attempt || 1) > 1;
}

/** "attempt 2 of 4" (or "" when the job carries no retry policy). */
export function attemptText(job) {
  if (job.attempt === null || job.attempt === undefined || job.retries === null ||
      job.retries === undefined) return "";
  return `attempt ${job.attempt} of ${job.retries + 1}`;
}

/** The list's badge of a retry (attempt 2 and later), or null. */
export function attemptBadge(job) {
  if (!job.attempt || job.attempt < 2) return null;
  const planned = job.retries === null || job.retries === undefined ? "" : `/${job.retries + 1}`;
  return el("span", {class: "badge attempt-badge", text: `${job.attempt}${planned}`,
    title: attemptText(job) || `attempt ${job.attempt}`});
}

export class AttemptsView {
  constructor() {
    this.element = el("section", {class: "job-attempts", attrs: {"aria-label": "Attempts"}});
    this.element.hidden = true;
    this.shownFor = null; // "id:status:attempt" of what the chain was read for
    this.asking = null;
  }

  show(job) {
    if (!chained(job) && !job.reason) {
      this.element.hidden = true;
      this.shownFor = null;
      return;
    }
    this.element.hidden = false;
    const key = `${job.id}:${job.status}:${job.attempt}`;
    if (this.shownFor === key) return;
    this.shownFor = key;
    this.render(job, chained(job) ? null : []);
    if (chained(job)) this.load(job, key);
  }

  async load(job, key) {
    this.asking = key;
    let reply;
    try {
      reply = await request("GET", jobPath(job.id, "/attempts"));
    } catch (error) {
      if (this.asking === key) {
        replaceContent(this.element, el("p", {class: "hint",
          text: `Its attempts could not be read: ${error.message}`}));
      }
      return;
    }
    if (this.asking === key) this.render(job, reply.data);
  }

  render(job, chain) {
    const parts = [];
    if (job.reason) {
      parts.push(el("p", {class: "job-reason"}, "Reason: ",
        el("code", {class: "reason", dataset: {reason: job.reason}, text: job.reason})));
    }
    if (chain === null) {
      parts.push(el("p", {class: "hint", text: "Loading its attempts…"}));
    } else if (chain.length) {
      parts.push(el("h3", {text: `Attempts (${attemptText(job) || `attempt ${job.attempt}`})`}),
        el("ol", {class: "attempt-list"}, ...chain.map((attempt) => this.item(attempt, job))));
    }
    replaceContent(this.element, ...parts);
  }

  item(attempt, current) {
    const when = attempt.status === "scheduled" && attempt.start_at ? [" — starts ",
      el("time", {text: formatTime(attempt.start_at),
        attrs: {datetime: machineTime(attempt.start_at)}})] : [];
    const link = attempt.id === current.id
      ? el("strong", {class: "job-id", text: attempt.id.slice(-6), attrs: {"aria-current": "true"}})
      : el("a", {class: "job-id", href: `#jobs/${attempt.id}`, text: attempt.id.slice(-6)});
    return el("li", {class: "attempt", dataset: {id: attempt.id}},
      `Attempt ${attempt.attempt || 1}: `, link, " ",
      el("span", {class: `badge status-${attempt.status}`, text: attempt.status}),
      attempt.reason ? el("span", {class: "reason", text: ` ${attempt.reason}`}) : "",
      attempt.error ? el("span", {class: "hint", text: ` — ${attempt.error}`}) : "", ...when);
  }
}

/** The creation form's retry fields (index.html: #create-job-retries, #create-job-retry-delay)
 * added to a POST /jobs or rerun body: a number as a number, anything else as typed, for the
 * server to say what is wrong; empty: the worker's (or, for a rerun, the old job's). */
export function withRetrySettings(body, form = document) {
  for (const [id, name] of [["#create-job-retries", "retries"],
    ["#create-job-retry-delay", "retry_delay"]]) {
    const input = form.querySelector(id);
    const value = input ? input.value.trim() : "";
    if (value !== "") body[name] = Number.isFinite(Number(value)) ? Number(value) : value;
  }
  return body;
}
