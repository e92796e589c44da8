// progress.js — a job's progress as the page shows it: a bar, the percentage and the time left.
//
// Contract: withProgress(job, message) is the job with a live progress event applied
// ({type: "progress", job, progress, message, revision}: see docs/streams.md), or null when the
// event is older than the copy (an event carries the revision of the change it tells, so the
// page merges it like any copy: jobstates.js supersedes). timeLeft(job) estimates the time left
// from the job's start and its progress ("—" when it cannot be told: not started, no progress
// yet, complete, or ended). progressView(job) is the element that shows it (a <progress> bar and
// a line of text, "42% · 1:05 left · message"), or null for a job that never reported progress;
// refreshProgress(element, job) updates one in place, so that a bar updated ten times a second
// keeps the reader's selection and focus around it.

import {el} from "./dom.js";

const RUNNING = ["active", "paused"];

export function withProgress(job, message) {
  if (!job || message.job !== job.id || message.revision <= job.revision) return null;
  return {...job, progress: message.progress, progress_message: message.message,
    revision: message.revision};
}

export function timeLeft(job, nowMs = Date.now()) {
  const done = job.progress;
  if (!RUNNING.includes(job.status) || job.starttime === null || !done || done >= 1) return "—";
  const elapsed = Math.max(nowMs / 1000 - job.starttime, 0);
  const left = Math.round(elapsed * (1 - done) / done);
  const hours = Math.floor(left / 3600);
  const minutes = Math.floor((left % 3600) / 60);
  const seconds = String(left % 60).padStart(2, "0");
  return hours ? `${hours}:${String(minutes).padStart(2, "0")}:${seconds}`
    : `${minutes}:${seconds}`;
}

function progressText(job) {
  const percent = Math.floor(job.progress * 100);
  const parts = [`${percent}%`];
  if (RUNNING.includes(job.status)) parts.push(`${timeLeft(job)} left`);
  if (job.progress_message) parts.push(job.progress_message);
  return parts.join(" · ");
}

export function progressView(job) {
  if (job.progress === null || job.progress === undefined) return null;
  const bar = el("progress", {class: "job-progress-bar", attrs: {max: "1"}});
  const text = el("span", {class: "job-progress-text"});
  const view = el("span", {class: "job-progress", dataset: {progress: ""}}, bar, text);
  refreshProgress(view, job);
  return view;
}

export function refreshProgress(view, job) {
  const bar = view.querySelector("progress");
  bar.value = job.progress;
  bar.setAttribute("aria-label", `progress ${Math.floor(job.progress * 100)}%`);
  view.dataset.progress = String(job.progress);
  view.querySelector(".job-progress-text").textContent = progressText(job);
}
