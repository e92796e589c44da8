// jobstates.js — the job states as the page needs them: which copy of a job is the newer.
//
// Contract: supersedes(candidate, current) is false when `candidate` is an older copy of the
// same job than `current`, judged by status (idle → active → stop/error/done, never back).
// Copies reach the page by three roads (a command's reply, the job's stream, the /events feed)
// that may arrive out of order: a stop's reply ("active, stop requested") can land after the
// stream already said "stop", and must not undo it.

const RANK = {idle: 0, active: 1, stop: 2, error: 2, done: 2};

export function supersedes(candidate, current) {
  if (!current || candidate.id !== current.id) return true;
  return (RANK[candidate.status] ?? 0) >= (RANK[current.status] ?? 0);
}
