// waiting.js — what the page shows of jobs that wait: `scheduled` for their start_at, `queued`
// behind a concurrency cap.
//
// Contract: statusText(job) is a job's badge text ("queued #2" with its place in the queue;
// the status otherwise). waitingFacts(job, time) are the rows the job view adds for a waiting
// job (its start time, its place and since when it waits); waitingHint(job) the line under its
// buttons. commandLabel(command, job) names a button for the job's status: Start now on a
// scheduled job, Cancel (stop) on a waiting one. cancelQuestion(job) is the question asked
// before a cancel. touchesQueue(job, shown) says whether a change moves the places in the
// queue (a job joins or leaves it): the list then reads the page again, since the feed's copies
// carry no place (queue_position is computed on reads). placeKept(job, shown) is the place of
// the copy shown, for a newer copy from the feed of a job still queued (the job view).

export const WAITING = ["scheduled", "queued"];

const LABELS = {start: "Start", pause: "Pause", resume: "Resume", stop: "Stop", kill: "Kill",
  delete: "Delete"};

export function statusText(job) {
  return job.status === "queued" && job.queue_position ? `queued #${job.queue_position}`
    : job.status;
}

export function waitingFacts(job, time) {
  if (job.status === "scheduled") return [["Starts at", time(job.start_at)]];
  if (job.status !== "queued") return [];
  const place = job.queue_position ? `#${job.queue_position} in the queue, ` : "";
  return [["Queue", `${place}waiting since `, time(job.queued)]];
}

export function waitingHint(job) {
  if (job.status === "scheduled") {
    return "Scheduled: it starts by itself at its time. Start it now, cancel it (stop), or " +
      "delete it.";
  }
  if (job.status === "queued") {
    return "Queued: a concurrency cap is full; it starts by itself when a slot frees. Cancel " +
      "it (stop), or delete it.";
  }
  return null;
}

export function commandLabel(command, job) {
  if (job && job.status === "scheduled" && command === "start") return "Start now";
  if (job && WAITING.includes(job.status) && command === "stop") return "Cancel";
  return LABELS[command] || command;
}

export function cancelQuestion(job) {
  return [`Cancel job ${job.id} (${job.worker})? It will not start; it ends stop (cancelled).`,
    "Cancel it"];
}

export function touchesQueue(job, shown) {
  return job.status === "queued" || (shown && shown.status === "queued");
}

export function placeKept(job, shown) {
  return job.queue_position === undefined && shown && shown.status === "queued" &&
    job.status === "queued" ? {queue_position: shown.queue_position} : {};
}
