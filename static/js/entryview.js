// entryview.js — a bounded, live view of one of a job's streams (its log or its response).
//
// Contract: new EntryView({id, title, fetchPage, onWantLatest, search}) builds `element`, a
// section with the entries, a Follow switch, a "load earlier" button, a download link
// (setDownload(url)), "Go to entry" (jumpTo(seq)), Wrap on/off and a Full screen switch (Escape
// leaves it), and, when `search` is given, a search box over the whole stream (logsearch.js).
//   reset(start)           empty the view; the stream will deliver entries from index `start`
//   append(seq, entries)   entries seq, seq+1, ... from the stream, in order
//   refresh()              call when the view becomes visible (scrolls to the end when following)
//   jumpTo(seq)            show entry `seq`, fetching the page around it if it is not shown
//   forgetSearch()         close the search results (another job is shown)
// fetchPage(offset, limit) resolves to entries offset.. (GET /jobs/ID/log?offset=&limit=);
// onWantLatest() asks the owner to restart the stream near its end (see below);
// search(text, ignoreCase, offset, limit) is LogSearch's.
//
// A message shows as a terminal would show it (ansi.js): colours, bold, and \r rewriting its
// line. An entry that ends in a bare \r (a progress line flushed before its newline: the runner
// and the server store what was written, each flush its own entry) is overwritten in its row by
// the next entry, as on a terminal, so a progress bar takes one row however many entries it
// made; the row carries the seq of its first and last entry (data-seq, data-last), and search
// results and "Go to entry" find an entry inside it.
//
// Why bounded: a job may log millions of lines. The DOM holds at most MAX_FOLLOWING entries
// while following (the oldest go; "load earlier" fetches them again) and MAX_READING while the
// user reads earlier pages. Past that, newer entries are not rendered ("tail cut"): following
// again then asks the owner for a fresh start near the end rather than rendering everything in
// between. New entries are rendered once per animation frame, whatever their rate, and an entry
// is text in a <span>: a log line holding markup shows as that markup's text.

import {endsInRewrite, terminalSegments} from "./ansi.js";
import {el, replaceContent} from "./dom.js";
import {formatClock, formatCount, formatTime} from "./format.js";
import {LogSearch} from "./logsearch.js";

export const MAX_FOLLOWING = 5000;
export const MAX_READING = 10000;
export const PAGE = 1000;
const NEAR_BOTTOM_PX = 24;
const JUMP_BEFORE = 100; // entries shown above the one jumped to
const MAX_REWRITTEN = 16384; // characters of a row rewritten by \r kept to render it again

export class EntryView {
  constructor({id, title, fetchPage, onWantLatest, search}) {
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
    this.wrap = el("input", {type: "checkbox", id: `${id}-wrap`, checked: true,
      on: {change: () => this.lines.classList.toggle("nowrap", !this.wrap.checked)}});
    this.fullScreen = el("button", {type: "button", class: "small", text: "Full screen",
      id: `${id}-full-screen`, attrs: {"aria-pressed": "false"},
      on: {click: () => this.setFullScreen(!this.element.classList.contains("full-screen"))}});
    this.jumpInput = el("input", {type: "number", id: `${id}-jump`, min: 0, step: 1,
      class: "jump-input", placeholder: "Entry #",
      attrs: {"aria-label": "Entry number (seq) to go to"}});
    this.jumpNote = el("span", {class: "jump-note", attrs: {"aria-live": "polite"}});
    const jump = el("form", {class: "jump", noValidate: true, on: {submit: (event) => {
      event.preventDefault();
      this.jumpTo(Number(this.jumpInput.value));
    }}}, this.jumpInput, el("button", {type: "submit", class: "small", text: "Go to entry"}));
    this.finder = search ? new LogSearch({id, search, onJump: (seq) => this.jumpTo(seq)}) : null;
    this.element = el("section",
      {id, class: "entries", attrs: {"aria-labelledby": `${id}-heading`},
        on: {keydown: (event) => {
          if (event.key === "Escape" && this.element.classList.contains("full-screen")) {
            this.setFullScreen(false);
          }
        }}},
      el("div", {class: "entries-head"},
        el("h3", {id: `${id}-heading`, text: title}),
        this.range,
        el("div", {class: "entries-tools"},
          el("label", {class: "follow", htmlFor: `${id}-follow`}, this.follow, "Follow"),
          el("label", {class: "follow", htmlFor: `${id}-wrap`}, this.wrap, "Wrap"),
          this.fullScreen,
          this.download)),
      el("div", {class: "entries-bar"}, this.finder && this.finder.form, jump, this.jumpNote),
      this.finder && this.finder.panel,
      this.earlier, this.lines, this.cutNote);
    this.reset(0);
  }

  setDownload(url) {
    this.download.href = url;
  }

  /** Another job's stream is shown from now on: its search results and notes go. */
  forgetSearch() {
    if (this.finder) this.finder.close();
    this.jumpNote.textContent = "";
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
    const row = el("div", {class: "line", attrs: {"data-seq": String(seq)}},
      el("span", {class: "line-time"}), el("span", {class: "line-text"}));
    row.terminalText = "";
    this.write(row, entry, seq);
    return row;
  }

  /** Show `entry` in `row`, after what the row shows (overwriting it from a \r on). */
  write(row, entry, seq) {
    let text = row.terminalText + entry.message;
    if (text.length > MAX_REWRITTEN) { // keep from a \r on: what came before is overwritten
      const cut = text.indexOf("\r", text.length - MAX_REWRITTEN);
      text = text.slice(cut >= 0 ? cut : text.length - MAX_REWRITTEN);
    }
    row.terminalText = text;
    row.dataset.last = String(seq);
    const [time, message] = row.children;
    time.textContent = formatClock(entry.time);
    time.title = formatTime(entry.time);
    replaceContent(message, terminalSegments(text).map(({text: part, classes}) =>
      classes ? el("span", {class: classes, text: part}) : part));
  }

  /** Rows for entries (seq from each entry, else counted from `start`); the first continues
   * `open`, a row whose entry ended in a bare \r, when given. */
  rows(entries, start, open = null) {
    const made = [];
    entries.forEach((entry, i) => {
      const seq = entry.seq ?? start + i;
      if (open) this.write(open, entry, seq);
      else made.push(open = this.line(entry, seq));
      if (!endsInRewrite(open.terminalText)) open = null;
    });
    return made;
  }

  rowFor(seq) {
    for (const row of this.lines.children) {
      if (Number(row.dataset.seq) <= seq && seq <= Number(row.dataset.last)) return row;
    }
    return null;
  }

  async jumpTo(seq) {
    this.jumpNote.textContent = "";
    if (!Number.isInteger(seq) || seq < 0) {
      this.jumpNote.textContent = "Give an entry number: 0 or more.";
      return;
    }
    this.setFollowing(false);
    if (!this.rowFor(seq)) {
      const generation = ++this.generation;
      const offset = Math.max(0, seq - JUMP_BEFORE);
      const entries = await this.fetchPage(offset, PAGE);
      if (generation !== this.generation || !entries) return;
      if (!entries.some((entry) => entry.seq >= seq)) {
        this.jumpNote.textContent = `There is no entry ${formatCount(seq)}.`;
        return;
      }
      this.lines.replaceChildren(...this.rows(entries, offset));
      this.pending = [];
      this.first = offset;
      this.last = entries[entries.length - 1].seq + 1;
      this.tailCut = this.last < this.streamNext; // newer ones wait for "Jump to the latest"
      this.updateControls();
    }
    const row = this.rowFor(seq) || [...this.lines.children].find(
      (candidate) => Number(candidate.dataset.seq) >= seq); // in the gap of a capped log
    if (!row) return;
    for (const marked of this.lines.querySelectorAll(".line.target")) {
      marked.classList.remove("target");
    }
    row.classList.add("target");
    row.scrollIntoView({block: "center"});
  }

  setFullScreen(on) {
    this.element.classList.toggle("full-screen", on);
    this.fullScreen.setAttribute("aria-pressed", String(on));
    this.fullScreen.textContent = on ? "Leave full screen" : "Full screen";
    document.body.classList.toggle("has-full-screen", on);
    if (this.following) this.scrollToEnd();
  }

  render() {
    this.frame = null;
    if (this.pending.length) {
      if (this.pendingStart !== this.last) {
        // The view fell behind by more than it holds: start it again at the pending entries.
        this.lines.replaceChildren();
        this.first = this.pendingStart;
      }
      const last = this.lines.lastElementChild;
      const open = last && endsInRewrite(last.terminalText) ? last : null;
      this.lines.append(...this.rows(this.pending, this.pendingStart, open));
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
    this.lines.prepend(...this.rows(entries, offset));
    this.first = offset; // by number: a capped log's dropped middle reads as fewer entries
    this.lines.scrollTop += this.lines.scrollHeight - height;
    if (this.count > MAX_READING) {
      while (this.count > MAX_READING) this.lines.lastElementChild.remove();
      this.last = Number(this.lines.lastElementChild.dataset.last) + 1;
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
