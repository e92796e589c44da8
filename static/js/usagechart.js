// usagechart.js — a job's resource use in the job view: its totals and two small charts.
//
// Contract: new UsageChart() builds `element` (hidden until there is something to show).
// open(jobId) reads GET /jobs/ID/usage and draws it; sample(message) adds a stream's `usage`
// message ({t, cpu_seconds, rss_bytes, max_rss_bytes}) live; jobChanged(job) takes a newer copy
// of the job (its stored figures; at its end the series is read once more, as stored, with its
// exact end figures); close() forgets the job. The charts are SVG polylines drawn from
// [t, cpu_seconds, rss_bytes] points: CPU use in % of one core between two points (the CPU time's
// difference over their times: above 100 % when the group uses several cores) and the group's
// memory (RSS). Text goes in as text only, and nothing is styled inline (the page's CSP).

import {jobPath, request} from "./api.js";
import {el, replaceContent} from "./dom.js";
import {formatBytes} from "./format.js";

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 300; // the charts' own units; CSS scales them to the view
const HEIGHT = 60;
const MAX_LIVE_POINTS = 4000; // past it, the server's series (downsampled) is read again
const FINAL = ["stop", "error", "done"];

function svg(tag, attributes = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  return node;
}

export function formatCpu(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  return seconds < 60 ? `${seconds.toFixed(2)} s` : `${(seconds / 60).toFixed(1)} min`;
}

function formatMemory(bytes) {
  if (bytes === null || bytes === undefined) return "—";
  if (bytes >= 1024 ** 3) return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
  return formatBytes(bytes);
}

/** CPU use in % of one core between neighbouring points: [[t, percent], ...]. */
export function cpuPercent(points) {
  const result = [];
  for (let i = 1; i < points.length; i++) {
    const [t0, cpu0] = points[i - 1];
    const [t1, cpu1] = points[i];
    if (t1 > t0) result.push([t1, Math.max(0, (cpu1 - cpu0) / (t1 - t0) * 100)]);
  }
  return result;
}

/** The polyline's "x,y x,y ..." of values [[t, v], ...] over [t0, t1] x [0, top]. */
function polyline(values, t0, t1, top) {
  const span = Math.max(t1 - t0, 1e-9);
  return values.map(([t, v]) => {
    const x = ((t - t0) / span) * WIDTH;
    const y = HEIGHT - (Math.min(v, top) / top) * HEIGHT;
    return `${x.toFixed(1)},${y.toFixed(1)}`;
  }).join(" ");
}

class Chart {
  constructor(name, label) {
    this.line = svg("polyline", {class: `usage-line usage-line-${name}`, fill: "none",
      "vector-effect": "non-scaling-stroke"});
    this.drawing = svg("svg", {class: "usage-svg", viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
      preserveAspectRatio: "none", role: "img", "aria-label": label});
    this.drawing.append(svg("line", {class: "usage-axis", x1: 0, y1: HEIGHT, x2: WIDTH,
      y2: HEIGHT, "vector-effect": "non-scaling-stroke"}), this.line);
    this.scale = el("span", {class: "usage-scale"});
    this.element = el("figure", {class: `usage-chart usage-chart-${name}`, dataset: {chart: name}},
      el("figcaption", {}, el("span", {class: "usage-title", text: label}), this.scale),
      this.drawing);
  }

  draw(values, t0, t1, top, scaleText) {
    this.line.setAttribute("points", polyline(values, t0, t1, top));
    this.element.dataset.points = String(values.length);
    this.scale.textContent = scaleText;
  }
}

export class UsageChart {
  constructor() {
    this.jobId = null;
    this.usage = null;
    this.reading = null;
    this.totals = el("p", {class: "usage-totals", attrs: {"aria-live": "off"}});
    this.cpu = new Chart("cpu", "CPU");
    this.memory = new Chart("memory", "Memory");
    this.element = el("section", {class: "usage", id: "job-usage", hidden: true,
      attrs: {"aria-label": "Resource use"}},
      el("h3", {class: "usage-heading", text: "Resource use"}), this.totals,
      el("div", {class: "usage-charts"}, this.cpu.element, this.memory.element));
  }

  async open(jobId) {
    this.jobId = jobId;
    this.usage = null;
    this.element.hidden = true;
    await this.read();
  }

  close() {
    this.jobId = null;
    this.usage = null;
    this.element.hidden = true;
  }

  async read() {
    const jobId = this.jobId;
    if (!jobId) return;
    const reading = this.reading = request("GET", jobPath(jobId, "/usage"));
    let reply;
    try {
      reply = await reading;
    } catch {
      return; // a view, not a reason to fail: the next sample or copy of the job tries again
    } finally {
      if (this.reading === reading) this.reading = null;
    }
    if (this.jobId !== jobId || !reply.data[0]) return;
    this.usage = reply.data[0];
    this.render();
  }

  /** A `usage` message of the job's stream: the newest sample. */
  sample(message) {
    if (!this.usage || message.job !== this.jobId) return;
    const usage = this.usage;
    const last = usage.points[usage.points.length - 1];
    if (last && message.t <= last[0]) return;
    usage.points.push([message.t, message.cpu_seconds, message.rss_bytes]);
    Object.assign(usage, {cpu_seconds: message.cpu_seconds, rss_bytes: message.rss_bytes,
      max_rss_bytes: message.max_rss_bytes, sampling: true});
    if (usage.points.length > MAX_LIVE_POINTS) this.read();
    else this.render();
  }

  /** A newer copy of the job: once it has ended, its stored figures and series are final. */
  jobChanged(job) {
    if (!this.usage || job.id !== this.jobId) return;
    if (FINAL.includes(job.status) && this.usage.sampling && !this.reading) {
      this.usage.sampling = false;
      this.read();
    }
  }

  render() {
    const usage = this.usage;
    const shown = usage.points.length > 0 || usage.cpu_seconds !== null;
    this.element.hidden = !shown;
    if (!shown) return;
    replaceContent(this.totals,
      el("span", {class: "usage-figure", dataset: {usage: "cpu"}},
        "CPU time ", el("strong", {text: formatCpu(usage.cpu_seconds)})),
      el("span", {class: "usage-figure", dataset: {usage: "rss"}},
        usage.sampling ? "Memory now " : "Memory at the end ",
        el("strong", {text: formatMemory(usage.rss_bytes)})),
      el("span", {class: "usage-figure", dataset: {usage: "peak"}},
        "Peak ", el("strong", {text: formatMemory(usage.max_rss_bytes)})));
    const points = usage.points;
    if (points.length === 0) return;
    const t0 = points[0][0];
    const t1 = points[points.length - 1][0];
    const percent = cpuPercent(points);
    const cpuTop = Math.max(100, ...percent.map(([, v]) => v));
    this.cpu.draw(percent, t0, t1, cpuTop, `${Math.round(cpuTop)} % of a core`);
    const memory = points.map(([t, , rss]) => [t, rss]);
    const peak = Math.max(1, ...memory.map(([, v]) => v));
    // Headroom above the peak, so that a flat line is not drawn on the frame.
    this.memory.draw(memory, t0, t1, peak * 1.25, `peak ${formatMemory(peak)}`);
  }
}
