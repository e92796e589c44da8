// logsearch.js — a search box that finds text across a job's whole log, on the server.
//
// Contract: new LogSearch({id, search, onJump}) builds `form` (the box, "Any case", Find) and
// `panel` (the matches, each with its seq). search(text, ignoreCase, offset, limit) resolves to
// {entries, next, total} (GET /jobs/ID/log?search=&ignore_case=&offset=&limit=: `next` is its
// X-Next-Offset, null once the scan reached the end) or null on a failure (already shown).
// Clicking a match calls onJump(seq).
//
// The server answers each request within its time budget with what it found so far, so that a
// huge log never holds a request; this goes on asking from `next` until it has SHOWN matches
// or the end, saying how far it got, and a newer search (or closing) abandons the older one.
// "Search on" then asks for more.

import {terminalSegments} from "./ansi.js";
import {el, replaceContent} from "./dom.js";
import {formatCount} from "./format.js";

export const SHOWN = 100; // matches listed before the user asks for more
const PREVIEW_CHARACTERS = 200;

export class LogSearch {
  constructor({id, search, onJump}) {
    this.search = search;
    this.onJump = onJump;
    this.generation = 0;
    this.input = el("input", {type: "search", id: `${id}-search`, placeholder: "Find in the log",
      autocomplete: "off", spellcheck: false,
      attrs: {"aria-label": "Text to find in the whole log"}});
    this.ignoreCase = el("input", {type: "checkbox", id: `${id}-search-case`, checked: true});
    this.form = el("form", {class: "log-search", attrs: {role: "search"}, noValidate: true,
      on: {submit: (event) => { event.preventDefault(); this.start(); }}},
    this.input,
    el("label", {class: "follow", htmlFor: `${id}-search-case`}, this.ignoreCase, "Any case"),
    el("button", {type: "submit", class: "small", text: "Find"}));
    this.summary = el("span", {class: "search-summary", id: `${id}-search-summary`,
      attrs: {"aria-live": "polite"}});
    this.results = el("ol", {class: "search-results", id: `${id}-search-results`});
    this.more = el("button", {type: "button", class: "small", text: "Search on", hidden: true,
      on: {click: () => this.next(this.generation, SHOWN)}});
    this.panel = el("div", {class: "search-panel", id: `${id}-search-panel`, hidden: true},
      el("div", {class: "search-head"}, this.summary, this.more,
        el("button", {type: "button", class: "small", text: "Close",
          attrs: {"aria-label": "Close the search results"}, on: {click: () => this.close()}})),
      this.results);
  }

  start() {
    this.text = this.input.value;
    if (!this.text) {
      this.close();
      return;
    }
    this.generation++;
    this.caseless = this.ignoreCase.checked;
    this.offset = 0;
    this.found = 0;
    this.results.replaceChildren();
    this.panel.hidden = false;
    this.next(this.generation, SHOWN);
  }

  close() {
    this.generation++;
    this.panel.hidden = true;
  }

  async next(generation, wanted) {
    this.more.hidden = true;
    let listed = 0;
    while (generation === this.generation && this.offset !== null && listed < wanted) {
      replaceContent(this.summary, `Searching… ${formatCount(this.found)} found so far`);
      const page = await this.search(this.text, this.caseless, this.offset, wanted - listed);
      if (generation !== this.generation) return; // a newer search, or closed
      if (!page) {
        replaceContent(this.summary, `${formatCount(this.found)} found; the search failed`);
        this.more.hidden = false;
        return;
      }
      for (const entry of page.entries) this.results.append(this.result(entry));
      listed += page.entries.length;
      this.found += page.entries.length;
      this.offset = page.next;
      this.total = page.total;
    }
    if (generation !== this.generation) return;
    const where = this.offset === null ? `in all ${formatCount(this.total)} entries`
      : `in entries 0–${formatCount(this.offset - 1)} of ${formatCount(this.total)}`;
    replaceContent(this.summary, `${formatCount(this.found)} ` +
      `${this.found === 1 ? "match" : "matches"} for “${this.text}” ${where}`);
    this.more.hidden = this.offset === null;
  }

  result(entry) {
    // As the log shows it, without colours: no escape sequence shows as garbage here either.
    const shown = terminalSegments(entry.message).map((segment) => segment.text).join("");
    const preview = shown.length > PREVIEW_CHARACTERS
      ? `${shown.slice(0, PREVIEW_CHARACTERS)}…` : shown;
    return el("li", {},
      el("button", {type: "button", class: "search-result", dataset: {seq: String(entry.seq)},
        on: {click: () => this.onJump(entry.seq)}},
      el("span", {class: "search-seq", text: `#${entry.seq}`}),
      el("span", {class: "search-text", text: preview})));
  }
}
