// timecell.js — a time as lists show it: a <time> element, or a word when there is none.
//
// Contract: timeCell(seconds, none) returns <time datetime="ISO">YYYY-MM-DD HH:MM:SS</time>
// for epoch seconds (format.js's formatTime), or the text `none` ("—" unless told) for null.

import {el} from "./dom.js";
import {formatTime, machineTime} from "./format.js";

export function timeCell(seconds, none = "—") {
  if (seconds === null || seconds === undefined) return none;
  return el("time", {text: formatTime(seconds), attrs: {datetime: machineTime(seconds)}});
}
