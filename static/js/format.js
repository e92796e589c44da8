// format.js — how times, durations and values read on the page.
//
// Contract: pure functions of their arguments (and the clock, for jobDuration).
// Times are seconds since the epoch, as the API gives them, and are shown in the browser's local
// time as "YYYY-MM-DD HH:MM:SS": unambiguous in every locale and sortable by eye. A missing time
// or duration reads "—".

const DASH = "—";
const pad = (number, width = 2) => String(number).padStart(width, "0");

function toDate(seconds) {
  return seconds === null || seconds === undefined ? null : new Date(seconds * 1000);
}

/** "2026-12-01 13:05:02" in local time. */
export function formatTime(seconds) {
  const d = toDate(seconds);
  if (!d) return DASH;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** Compact for lists: "13:05:02" today, "2026-11-30 13:05" on another day. */
export function formatShortTime(seconds, now = new Date()) {
  const d = toDate(seconds);
  if (!d) return DASH;
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  if (d.toDateString() === now.toDateString()) return `${time}:${pad(d.getSeconds())}`;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}`;
}

/** "13:05:02.123" for a log line (its date is in the tooltip). */
export function formatClock(seconds) {
  const d = toDate(seconds);
  if (!d) return "";
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}` +
    `.${pad(d.getMilliseconds(), 3)}`;
}

/** The value for a <time datetime> attribute (UTC, which the attribute allows). */
export function machineTime(seconds) {
  const d = toDate(seconds);
  return d ? d.toISOString() : null;
}

/** "850 ms", "4.2 s", "42 s", "3 min 4 s", "2 h 5 min", "3 d 4 h". */
export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return DASH;
  const s = Math.max(0, seconds);
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 10) return `${s.toFixed(1)} s`;
  if (s < 60) return `${Math.floor(s)} s`;
  const minutes = Math.floor(s / 60);
  if (minutes < 60) return `${minutes} min ${Math.floor(s % 60)} s`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return `${hours} h ${minutes % 60} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

/**
 * A job's duration now. While it is active the server's `duration` counts to the moment it
 * answered; adding the time since we received the job (stamped by stampReceived) keeps it
 * ticking without trusting the browser's clock to match the server's.
 */
export function jobDuration(job, nowMs = Date.now()) {
  if (job.duration === null || job.duration === undefined) return null;
  if ((job.status !== "active" && job.status !== "paused") || !job.receivedAt) return job.duration;
  return job.duration + (nowMs - job.receivedAt) / 1000;
}

/** Mark when a job object arrived (see jobDuration); returns the job. */
export function stampReceived(job) {
  job.receivedAt = Date.now();
  return job;
}

/** Parameters on one line, as JSON ("{}" for none). */
export function compactJSON(value) {
  return JSON.stringify(value ?? {});
}

export function formatCount(number) {
  return Number(number).toLocaleString("en-US");
}

export function formatBytes(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}
