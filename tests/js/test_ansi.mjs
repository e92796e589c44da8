// node --test tests/js/: static/js/ansi.js, run by tests/test_ansi.py.
import assert from "node:assert/strict";
import {test} from "node:test";

import {applySgr, classesOf, endsInRewrite, nearest256, PALETTE, terminalSegments} from
  "../../static/js/ansi.js";

const show = (text) => terminalSegments(text).map(({text, classes}) =>
  classes ? `<${classes}>${text}</>` : text).join("");

test("plain text is one segment, untouched (newlines and tabs included)", () => {
  assert.deepEqual(terminalSegments("a <b> & \"c\"\n\td"), [{text: "a <b> & \"c\"\n\td", classes: ""}]);
  assert.deepEqual(terminalSegments(""), [{text: "", classes: ""}]);
});

test("the 16 colours, bold and reset", () => {
  assert.equal(show("\x1b[31mred\x1b[0m plain"), "<ansi-fg-1>red</> plain");
  assert.equal(show("\x1b[1;32mok\x1b[m"), "<ansi-fg-2 ansi-bold>ok</>");
  assert.equal(show("\x1b[91;44mx\x1b[39my\x1b[49mz"),
    "<ansi-fg-9 ansi-bg-4>x</><ansi-bg-4>y</>z");
  assert.equal(show("\x1b[1mb\x1b[22mn\x1b[97;103mw"), "<ansi-bold>b</>n<ansi-fg-15 ansi-bg-11>w</>");
  assert.equal(show("\x1b[2;3;4;9md\x1b[23;24;29mx"),
    "<ansi-dim ansi-italic ansi-underline ansi-strike>d</><ansi-dim>x</>");
});

test("256 colours and truecolour, the latter as the nearest of the 256", () => {
  assert.equal(show("\x1b[38;5;208mo\x1b[48;5;17mb"), "<ansi-fg-208>o</><ansi-fg-208 ansi-bg-17>b</>");
  assert.equal(nearest256(255, 0, 0), 196);
  assert.equal(nearest256(0, 0, 0), 16);
  assert.equal(nearest256(128, 128, 128), 244);
  assert.equal(show("\x1b[38;2;255;0;0mr\x1b[48;2;0;0;0;1mb"),
    "<ansi-fg-196>r</><ansi-fg-196 ansi-bg-16 ansi-bold>b</>");
  assert.equal(show("\x1b[38:2::255:0:0mr\x1b[38:5:21mb"), "<ansi-fg-196>r</><ansi-fg-21>b</>");
  assert.equal(show("\x1b[38;5;999mx"), "<ansi-fg-255>x</>", "out of range is clamped");
  assert.equal(PALETTE.length, 256);
  for (let i = 16; i < 256; i++) assert.equal(nearest256(...PALETTE[i]) === i || i >= 232, true);
});

test("inverse swaps the colours, the defaults included", () => {
  assert.equal(classesOf(applySgr({}, "7")), "ansi-fg-inverse ansi-bg-inverse");
  assert.equal(classesOf(applySgr({}, "31;7")), "ansi-fg-inverse ansi-bg-1");
  assert.equal(classesOf(applySgr(applySgr({}, "31;7"), "27")), "ansi-fg-1");
});

test("\\r rewrites the line as a terminal does", () => {
  assert.equal(show("10%\r20%\r30%"), "30%");
  assert.equal(show("downloading 10%\rdownloading 100%"), "downloading 100%");
  assert.equal(show("abcdef\rxy"), "xycdef", "a shorter rewrite leaves the rest");
  assert.equal(show("abcdef\rxy\x1b[K"), "xy", "erase to the end of the line");
  assert.equal(show("abcdef\r\x1b[2Knew"), "new");
  assert.equal(show("50%\r"), "50%", "a trailing \\r leaves the line as it is");
  assert.equal(show("one\r\ntwo"), "one\ntwo");
  assert.equal(show("ab\bc"), "ac");
  assert.equal(show("\x1b[32m 10%\r\x1b[31m 99%\x1b[0m"), "<ansi-fg-1> 99%</>");
  assert.equal(show("first\nsecond 1\rsecond 2"), "first\nsecond 2");
  assert.equal(endsInRewrite("10%\r"), true);
  assert.equal(endsInRewrite("10%\r\n"), false);
});

test("other escape sequences and controls are dropped, never shown", () => {
  assert.equal(show("a\x1b[2Jb\x1b[10;5Hc\x1b[?25ld"), "abcd", "clear, move, hide cursor");
  assert.equal(show("\x1b]0;title\x07text"), "text", "a window title");
  assert.equal(show("\x1b]8;;https://x.example\x1b\\link\x1b]8;;\x1b\\"), "link", "a hyperlink");
  assert.equal(show("\x1b(Bcharset\x1b=\x07bell\x00nul\x7f"), "charsetbellnul");
  assert.equal(show("cut \x1b[31"), "cut 31", "a sequence cut short leaves no escape");
  for (const text of ["\x1b[31mx", "a\x1b]0;t\x07b", "\x1b(0q"]) {
    assert.equal(/[\x00-\x08\x0b-\x1f\x7f]/.test(show(text)), false, JSON.stringify(text));
  }
});
