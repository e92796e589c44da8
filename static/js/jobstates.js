// jobstates.js — what the page knows of a job's states: which copy of a job is the newer, and
// which actions a job's status allows.
//
// Contract: supersedes(candidate, current) is false when `candidate` is an older copy of the
// same job than `current`. Copies reach the page by three roads (a command's reply, the job's
// stream, the /events feed) that may arrive out of order: a stop's reply ("active, stop
// requested") can land after the stream already said "stop", and must not undo it. The server
// counts every change of a job in its `revision`, so the higher revision is the newer copy,
// whatever the statuses say (once jobs can be paused or queued, a status may come back).
//
// ACTIONS is the server's table (jobjoker/states.py ACTIONS), copied: action -> the statuses a
// job may be in for it. tests/test_browser_page.py checks that the two agree. allows(action,
// status) answers from it; whyNot(action, job) says in a sentence why an action is not offered
// (null when it is). The page offers only what the table allows; the server still decides,
// and a job may change between the click and the request, so its refusal is still shown.

export const ACTIONS = {
  start: ["idle", "scheduled"],
  stop: ["scheduled", "queued", "active", "paused"],
  kill: ["scheduled", "queued", "active", "paused"],
  pause: ["active"],
  resume: ["paused"],
  delete: ["idle", "scheduled", "queued", "stop", "error", "done"],
};

export function supersedes(candidate, current) {
  if (!current || candidate.id !== current.id) return true;
  return candidate.revision >= current.revision;
}

export function allows(action, status) {
  return (ACTIONS[action] || []).includes(status);
}

const ENDED = ["stop", "error", "done"];

/** Why `action` is not offered for `job` in its status, as a sentence; null if it is. */
export function whyNot(action, job) {
  if (allows(action, job.status)) return null;
  if (action === "start") {
    return ENDED.includes(job.status)
      ? `This job has ended (${job.status}); a job runs once: create a new one to run ` +
        `${job.worker} again.`
      : `This job is ${job.status}; only an idle job can start.`;
  }
  if (action === "stop" || action === "kill") {
    return job.status === "idle" ? "This job has not started: there is nothing to " +
      `${action}. Delete it instead.` : `This job has already ended (${job.status}).`;
  }
  if (action === "delete") return `This job is ${job.status}: stop or kill it before deleting it.`;
  if (action === "pause" || action === "resume") {
    if (job.status === "idle") return `This job has not started: there is nothing to ${action}.`;
    if (ENDED.includes(job.status)) return `This job has already ended (${job.status}).`;
    return action === "pause" ? "This job is paused already: resume it to let it go on."
      : "This job is not paused: only a paused job can resume.";
  }
  return `This job is ${job.status}.`;
}
