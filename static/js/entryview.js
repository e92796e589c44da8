// entryview.js — a bounded, live view of one of a job's streams (its log or its response).
//
// Contract: new EntryView({id, title, fetchPage, onWantLatest}) builds `element`, a section with
// the entries, a Follow switch, a "load earlier" button and a download link (setDownload(url)).
//   reset(start)           empty the view; the stream will deliver entries from index `start`
//   append(seq, entries)   entries seq, seq+1, ... from the stream, in order
//   refresh()              call when the view becomes visible (scrolls to the end when following)
// fetchPage(offset, limit) resolves to entries offset.. (GET /jobs/ID/log?offset=&limit=);
// onWantLatest() asks the owner to restart the stream near its end (see below).
//
// Why bounded: a job may log millions of lines. The DOM holds at most MAX_FOLLOWING entries
// while following (the oldest go; "load earlier" fetches them again) and MAX_READING while the
// user reads earlier pages. Past that, newer entries are not rendered ("tail cut"): following
// again then asks the owner for a fresh start near the end rather than rendering everything in
// between. New entries are rendered once per animation frame, whatever their rate, and an entry
// is text in a <span>: a log line holding markup shows as that markup's text.

import {el, replaceContent} from "./dom.js";
import {formatClock, formatCount, formatTime} from "./format.js";

export const MAX_FOLLOWING = 5000;
export const MAX_READING = 10000;
export const PAGE = 1000;
const NEAR_BOTTOM_PX = 24;

export class EntryView {
  constructor({id, title, fetchPage, onWantLatest}) {
    this.fetchPage = fetchPage;
    this.onWantLatest = onWantLatest;
    this.following = true;
    this.emptyText = "none yet";
    this.generation = 0;
    this.frame = null;

    this.follow = el("input", {type: "checkbox", id: `${id}-follow`, checked: true,
      on: {change: () => this.setFollowing(this.follow.checked)}});
    this.download = el("a", {class: "button small", text: "Download",
      attrs: {download: "", "aria-label": `Download the whole ${title.toLowerCase()}`}});
    this.range = el("span", {class: "entries-range", id: `${id}-range`});
    this.earlier = el("button", {type: "button", class: "small load-earlier", hidden: true,
      on: {click: () => this.loadEarlier()}});
    this.lines = el("div", {class: "lines", id: `${id}-lines`, tabIndex: 0,
      attrs: {role: "log", "aria-live": "off", "aria-labelledby": `${id}-heading`,
        "aria-describedby": `${id}-range`},
      on: {scroll: () => this.onScroll()}});
    this.cutNote = el("p", {class: "tail-cut", hidden: true},
      el("span", {class: "tail-cut-text"}), " ",
      el("button", {type: "button", class: "small", text: "Jump to the latest",
        on: {click: () => this.setFollowing(true)}}));
    this.element = el("section",
      {id, class: "entries", attrs: {"aria-labelledby": `${id}-heading`}},
      el("div", {class: "entries-head"},
        el("h3", {id: `${id}-heading`, text: title}),
        this.range,
        el("div", {class: "entries-tools"},
          el("label", {class: "follow", htmlFor: `${id}-follow`}, this.follow, "Follow"),
          this.download)),
      this.earlier, this.lines, this.cutNote);
    this.reset(0);
  }

  setDownload(url) {
    this.download.href = url;
  }

  /** What an empty stream says: "none yet" while entries may come, else e.g. "no response". */
  setEmptyText(text) {
    this.emptyText = text;
    this.lines.dataset.empty = text;
    this.updateControls();
  }

  get count() {
    return this.lines.childElementCount; // rows, not last - first: a capped log has a gap
  }

  reset(start) {
    this.generation++;
    this.lines.replaceChildren();
    this.first = this.last = this.pendingStart = this.streamNext = start;
    this.pending = [];
    this.tailCut = false;
    this.loading = false;
    this.setFollowing(true, {quiet: true});
    this.updateControls();
  }

  append(seq, entries) {
    this.streamNext = seq + entries.length;
    if (this.tailCut) {
      this.updateControls();
      return;
    }
    if (this.pending.length === 0) this.pendingStart = seq;
    if (this.following) {
      for (const entry of entries) this.pending.push(entry);
      if (this.pending.length > MAX_FOLLOWING) {
        // More than the view holds arrived before a frame: only the newest can be shown.
        const drop = this.pending.length - MAX_FOLLOWING;
        this.pending = this.pending.slice(drop);
        this.pendingStart += drop;
      }
    } else {
      const room = Math.max(0, MAX_READING - this.count - this.pending.length);
      for (const entry of entries.slice(0, room)) this.pending.push(entry);
      if (room < entries.length) this.tailCut = true;
    }
    this.schedule();
  }

  schedule() {
    if (this.frame === null) this.frame = requestAnimationFrame(() => this.render());
  }

  line(entry, seq) {
    return el("div", {class: "line", attrs: {"data-seq": String(seq)}},
      el("span", {class: "line-time", text: formatClock(entry.time),
        title: formatTime(entry.time)}),
      el("span", {class: "line-text", text: entry.message}));
  }

  render() {
    this.frame = null;
    if (this.pending.length) {
      if (this.pendingStart !== this.last) {
        // The view fell behind by more than it holds: start it again at the pending entries.
        this.lines.replaceChildren();
        this.first = this.pendingStart;
      }
      const fragment = document.createDocumentFragment();
      this.pending.forEach((entry, i) => fragment.append(this.line(entry, this.pendingStart + i)));
      this.lines.append(fragment);
      this.last = this.pendingStart + this.pending.length;
      this.pending = [];
      this.pendingStart = this.last;
    }
    if (this.following) {
      this.trimOldest(MAX_FOLLOWING);
      this.scrollToEnd();
    }
    this.updateControls();
  }

  trimOldest(limit) {
    if (this.count <= limit) return;
    while (this.count > limit) this.lines.firstElementChild.remove();
    this.first = Number(this.lines.firstElementChild.dataset.seq);
  }

  scrollToEnd() {
    this.lines.scrollTop = this.lines.scrollHeight;
  }

  onScroll() {
    // Scrolling up while following means "let me read": stop following, as a terminal would.
    const fromBottom = this.lines.scrollHeight - this.lines.scrollTop - this.lines.clientHeight;
    if (this.following && fromBottom > NEAR_BOTTOM_PX && this.frame === null) {
      this.setFollowing(false);
    }
  }

  setFollowing(on, {quiet = false} = {}) {
    this.following = on;
    this.follow.checked = on;
    if (!on || quiet) return;
    if (this.tailCut) {
      this.onWantLatest(); // the owner restarts the stream near the end and calls reset()
      return;
    }
    this.trimOldest(MAX_FOLLOWING);
    this.scrollToEnd();
    this.updateControls();
  }

  async loadEarlier() {
    if (this.loading || this.first === 0) return;
    this.setFollowing(false);
    const generation = this.generation;
    const offset = Math.max(0, this.first - PAGE);
    this.loading = true;
    this.updateControls();
    let entries;
    try {
      entries = await this.fetchPage(offset, this.first - offset);
    } finally {
      if (generation === this.generation) this.loading = false;
    }
    if (generation !== this.generation || !entries) return; // reset meanwhile
    // Keep what the reader looks at in place while rows are added above it.
    const height = this.lines.scrollHeight;
    const fragment = document.createDocumentFragment();
    for (const entry of entries) fragment.append(this.line(entry, entry.seq));
    this.lines.prepend(fragment);
    this.first = offset; // by number: a capped log's dropped middle reads as fewer entries
    this.lines.scrollTop += this.lines.scrollHeight - height;
    if (this.count > MAX_READING) {
      while (this.count > MAX_READING) this.lines.lastElementChild.remove();
      this.last = Number(this.lines.lastElementChild.dataset.seq) + 1;
      this.tailCut = true;
      this.pending = [];
    }
    this.updateControls();
  }

  refresh() {
    if (this.following) this.scrollToEnd();
  }

  updateControls() {
    const total = this.streamNext;
    if (this.count === 0) {
      this.range.textContent = total === 0 ? this.emptyText : `${formatCount(total)} entries`;
    } else if (this.first === 0 && this.last === total) {
      this.range.textContent = `${formatCount(total)} ${total === 1 ? "entry" : "entries"}`;
    } else {
      this.range.textContent = `entries ${formatCount(this.first + 1)}–` +
        `${formatCount(this.last)} of ${formatCount(total)}`;
    }
    this.earlier.hidden = this.first === 0;
    this.earlier.disabled = this.loading;
    this.earlier.textContent = this.loading ? "Loading…"
      : `Load earlier entries (${formatCount(this.first)} before these)`;
    this.cutNote.hidden = !this.tailCut;
    if (this.tailCut) {
      replaceContent(this.cutNote.firstElementChild,
        `${formatCount(total - this.last)} newer entries are not shown while you read ` +
        "earlier ones.");
    }
  }
}
