// ansi.js — a log message as a terminal would show it: colours, bold, and \r rewrites.
//
// Contract: terminalSegments(text) returns [{text, classes}] for the message `text`, in order;
// `classes` is a space-separated list of CSS class names (static/ansi.css) or "". What is
// understood:
//   SGR (ESC [ ... m)  0 reset; 1 bold, 2 dim, 3 italic, 4 underline, 7 inverse, 9 strike, and
//                      their ends (22, 23, 24, 27, 29); 30–37/90–97 and 40–47/100–107 the 16
//                      colours; 38;5;N and 48;5;N the 256; 38;2;R;G;B and 48;2;R;G;B truecolour,
//                      shown as the nearest of the 256 (ansi-fg-N / ansi-bg-N: the page's
//                      Content-Security-Policy allows no inline style, so every colour is a
//                      class); 39 and 49 the default colours. Colon forms (38:2::R:G:B) too.
//   \r                 back to the line's start: what follows overwrites, as on a terminal, so
//                      a progress bar shows its last state ("10%\r20%" shows "20%")
//   \b                 one column back;  ESC [ K (0, 1, 2) erases to the end, the start, all
//   \n                 a new line within the one entry (a multi-line message)
// Any other escape sequence (cursor moves, titles, OSC hyperlinks' markers, charset switches)
// and any other control character is dropped, never shown as garbage. Text stays text: the
// caller puts each segment in a span with textContent, so no markup can come from a log.
//
// endsInRewrite(text) says whether a message ends with a bare \r (a progress line that was
// flushed before its newline): the log view lets the next entry overwrite it, as a terminal
// would. nearest256(r, g, b) and PALETTE are exported for the tests and static/ansi.css.

const SEQUENCE = /\x1b\[([0-?]*)[ -/]*([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[ -/]*[0-~]?|[\x00-\x1f\x7f]/g;
const NEEDS_TERMINAL = /[\x00-\x08\x0b-\x1f\x7f]/;
const CUBE = [0, 95, 135, 175, 215, 255];

// The 256 colours as [r, g, b]: 0–15 as static/ansi.css gives them (readable on the log's dark
// background), then xterm's 6×6×6 cube and 24 greys.
export const PALETTE = [
  [0, 0, 0], [205, 49, 49], [13, 188, 121], [229, 229, 16], [36, 114, 200], [188, 63, 188],
  [17, 168, 205], [229, 229, 229], [102, 102, 102], [241, 76, 76], [35, 209, 139],
  [245, 245, 67], [59, 142, 234], [214, 112, 214], [41, 184, 219], [255, 255, 255],
];
for (let i = 0; i < 216; i++) {
  PALETTE.push([CUBE[Math.floor(i / 36)], CUBE[Math.floor(i / 6) % 6], CUBE[i % 6]]);
}
for (let i = 0; i < 24; i++) PALETTE.push([8 + 10 * i, 8 + 10 * i, 8 + 10 * i]);

/** The index (16–255) of the colour of the 256 nearest to (r, g, b). */
export function nearest256(r, g, b) {
  let best = 16;
  let bestDistance = Infinity;
  for (let i = 16; i < 256; i++) {
    const [pr, pg, pb] = PALETTE[i];
    const distance = (pr - r) ** 2 + (pg - g) ** 2 + (pb - b) ** 2;
    if (distance < bestDistance) [best, bestDistance] = [i, distance];
  }
  return best;
}

export function endsInRewrite(text) {
  return text.endsWith("\r");
}

export function terminalSegments(text) {
  if (!NEEDS_TERMINAL.test(text)) return [{text, classes: ""}]; // most lines: plain text
  const screen = new Screen();
  let at = 0;
  for (const match of text.matchAll(SEQUENCE)) {
    screen.write(text.slice(at, match.index));
    at = match.index + match[0].length;
    const [sequence, parameters, final] = match;
    if (sequence === "\r") screen.column = 0;
    else if (sequence === "\n") screen.newLine();
    else if (sequence === "\t") screen.write("\t");
    else if (sequence === "\b") screen.column = Math.max(0, screen.column - 1);
    else if (final === "m") screen.style = applySgr(screen.style, parameters);
    else if (final === "K") screen.erase(Number(parameters) || 0);
  }
  screen.write(text.slice(at));
  return screen.segments();
}

/** The rows of cells one message draws: each cell a character and its classes. */
class Screen {
  constructor() {
    this.rows = [[]];
    this.column = 0;
    this.style = {};
    this.classes = "";
  }

  get row() {
    return this.rows[this.rows.length - 1];
  }

  write(text) {
    if (!text) return;
    const classes = classesOf(this.style);
    const row = this.row;
    for (const character of text) {
      while (row.length < this.column) row.push({character: " ", classes: ""});
      row[this.column++] = {character, classes};
    }
  }

  newLine() {
    this.rows.push([]);
    this.column = 0;
  }

  erase(mode) {
    const row = this.row;
    if (mode === 0) row.length = Math.min(row.length, this.column);
    else if (mode === 1) row.fill({character: " ", classes: ""}, 0, this.column + 1);
    else row.length = 0;
  }

  segments() {
    const segments = [];
    const add = (character, classes) => {
      const last = segments[segments.length - 1];
      if (last && last.classes === classes) last.text += character;
      else segments.push({text: character, classes});
    };
    this.rows.forEach((row, index) => {
      if (index > 0) add("\n", "");
      for (const cell of row) add(cell.character, cell.classes);
    });
    return segments.length ? segments : [{text: "", classes: ""}];
  }
}

const ATTRIBUTES = {1: ["bold", true], 2: ["dim", true], 3: ["italic", true],
  4: ["underline", true], 7: ["inverse", true], 9: ["strike", true], 22: ["bold", false],
  23: ["italic", false], 24: ["underline", false], 27: ["inverse", false],
  29: ["strike", false]};

/** The style after the SGR sequence with these parameters ("1;31", "38;2;255;0;0", ""). */
export function applySgr(style, parameters) {
  const next = {...style};
  const codes = parameters === "" ? ["0"] : parameters.split(";");
  for (let i = 0; i < codes.length; i++) {
    const parts = codes[i].split(":");
    const code = Number(parts[0]) || 0;
    if (code === 38 || code === 48) {
      // 38;5;N / 38;2;R;G;B, or the colon forms 38:5:N / 38:2:[space]:R:G:B in one parameter
      const rest = parts.length > 1 ? parts.slice(1) : codes.slice(i + 1);
      const kind = Number(rest[0]);
      let colour = null;
      let used = 0;
      if (kind === 5) {
        colour = clamp(Number(rest[1]));
        used = 2;
      } else if (kind === 2) {
        const rgb = parts.length > 1 && rest.length > 4 ? rest.slice(2, 5) : rest.slice(1, 4);
        colour = nearest256(...rgb.map((value) => clamp(Number(value) || 0)));
        used = 4;
      }
      if (parts.length === 1) i += used;
      if (colour !== null) next[code === 38 ? "fg" : "bg"] = colour;
    } else if (code === 0) {
      for (const key of Object.keys(next)) delete next[key];
    } else if (code === 22) {
      next.bold = next.dim = false;
    } else if (ATTRIBUTES[code]) {
      const [name, on] = ATTRIBUTES[code];
      next[name] = on;
    } else if (code >= 30 && code <= 37) next.fg = code - 30;
    else if (code >= 90 && code <= 97) next.fg = code - 90 + 8;
    else if (code >= 40 && code <= 47) next.bg = code - 40;
    else if (code >= 100 && code <= 107) next.bg = code - 100 + 8;
    else if (code === 39) delete next.fg;
    else if (code === 49) delete next.bg;
  }
  return next;
}

function clamp(value) {
  return Math.min(255, Math.max(0, Math.round(value) || 0));
}

/** The CSS classes of a style ("ansi-fg-1 ansi-bold"). */
export function classesOf(style) {
  const names = [];
  let {fg, bg} = style;
  if (style.inverse) {
    [fg, bg] = [bg, fg];
    if (fg === undefined) names.push("ansi-fg-inverse");
    if (bg === undefined) names.push("ansi-bg-inverse");
  }
  if (fg !== undefined) names.push(`ansi-fg-${fg}`);
  if (bg !== undefined) names.push(`ansi-bg-${bg}`);
  for (const name of ["bold", "dim", "italic", "underline", "strike"]) {
    if (style[name]) names.push(`ansi-${name}`);
  }
  return names.join(" ");
}
