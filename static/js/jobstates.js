// jobstates.js — which of two copies of a job is the newer.
//
// Contract: supersedes(candidate, current) is false when `candidate` is an older copy of the
// same job than `current`. Copies reach the page by three roads (a command's reply, the job's
// stream, the /events feed) that may arrive out of order: a stop's reply ("active, stop
// requested") can land after the stream already said "stop", and must not undo it. The server
// counts every change of a job in its `revision`, so the higher revision is the newer copy,
// whatever the statuses say (once jobs can be paused or queued, a status may come back).

export function supersedes(candidate, current) {
  if (!current || candidate.id !== current.id) return true;
  return candidate.revision >= current.revision;
}
