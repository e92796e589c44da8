// jsoncheck.js — reads JSON the way the server will, and says precisely what is wrong.
//
// Contract: checkJSON(text) returns {ok: true, value} or {ok: false, message, offset, line,
// column}, where line and column are 1-based and message says what was expected in words a
// person can act on ("expected ',' or '}' after a property value", "strings need double quotes",
// "Python's True is written true in JSON"...). Browsers' own JSON.parse messages differ from one
// engine to the next and often give no position, hence this small strict parser of RFC 8259
// JSON (no NaN/Infinity, no comments, no trailing commas: what the server refuses too).
// MAX_DEPTH matches the server's limit for parameters.

export const MAX_DEPTH = 32;

class Problem extends Error {
  constructor(message, offset) {
    super(message);
    this.offset = offset;
  }
}

function describe(character) {
  if (character === undefined) return "the end of the text";
  if (character === "\n") return "a line break";
  if (character.trim() === "") return "a space";
  return `'${character}'`;
}

const WORDS = {true: true, false: false, null: null};
const PYTHON_WORDS = {True: "true", False: "false", None: "null"};
const NOT_JSON = {NaN: "null, a number or a string", Infinity: "a number",
  undefined: "null"};

class Reader {
  constructor(text) {
    this.text = text;
    this.at = 0;
  }

  peek() { return this.text[this.at]; }

  fail(message, offset = this.at) { throw new Problem(message, offset); }

  skipSpace() {
    while (this.at < this.text.length) {
      const c = this.text[this.at];
      if (c === " " || c === "\t" || c === "\n" || c === "\r") this.at++;
      else if (c === "/" && (this.text[this.at + 1] === "/" || this.text[this.at + 1] === "*")) {
        this.fail("comments are not allowed in JSON");
      } else break;
    }
  }

  value(depth) {
    this.skipSpace();
    const c = this.peek();
    if (c === "{") return this.object(depth + 1);
    if (c === "[") return this.array(depth + 1);
    if (c === '"') return this.string();
    if (c === "'") this.fail("strings need double quotes (\"), not single quotes");
    if (c === "-" || (c >= "0" && c <= "9")) return this.number();
    const word = /^[A-Za-z_]+/.exec(this.text.slice(this.at, this.at + 20));
    if (word) return this.word(word[0]);
    if (c === undefined) this.fail("expected a value, but the text ends here");
    return this.fail(`unexpected ${describe(c)}: expected a value (an object, array, string, ` +
      "number, true, false or null)");
  }

  word(word) {
    if (word in WORDS) {
      this.at += word.length;
      return WORDS[word];
    }
    if (word in PYTHON_WORDS) {
      this.fail(`${word} is Python; JSON writes it ${PYTHON_WORDS[word]}`);
    }
    if (word in NOT_JSON) this.fail(`${word} is not JSON (use ${NOT_JSON[word]})`);
    return this.fail(`unexpected word '${word}': text must be a string in double quotes`);
  }

  nest(depth) {
    if (depth > MAX_DEPTH) this.fail(`nested more than ${MAX_DEPTH} levels deep`);
  }

  object(depth) {
    this.nest(depth);
    const result = {};
    this.at++; // {
    this.skipSpace();
    if (this.peek() === "}") {
      this.at++;
      return result;
    }
    for (;;) {
      this.skipSpace();
      const c = this.peek();
      if (c === "'") this.fail("property names need double quotes (\"), not single quotes");
      if (c === "}") this.fail("trailing comma: remove the ',' before '}'", this.lastComma);
      if (c !== '"') {
        this.fail(c === undefined ? "the object is not closed: expected '}'"
          : `expected a property name in double quotes, not ${describe(c)}`);
      }
      const key = this.string();
      this.skipSpace();
      if (this.peek() !== ":") {
        this.fail(`expected ':' after the property name "${key}", not ${describe(this.peek())}`);
      }
      this.at++;
      result[key] = this.value(depth);
      this.skipSpace();
      const next = this.peek();
      if (next === "}") {
        this.at++;
        return result;
      }
      if (next !== ",") {
        this.fail(next === undefined ? "the object is not closed: expected '}'"
          : `expected ',' or '}' after a property value, not ${describe(next)}`);
      }
      this.lastComma = this.at;
      this.at++;
    }
  }

  array(depth) {
    this.nest(depth);
    const result = [];
    this.at++; // [
    this.skipSpace();
    if (this.peek() === "]") {
      this.at++;
      return result;
    }
    for (;;) {
      this.skipSpace();
      if (this.peek() === "]") {
        this.fail("trailing comma: remove the ',' before ']'", this.lastComma);
      }
      result.push(this.value(depth));
      this.skipSpace();
      const next = this.peek();
      if (next === "]") {
        this.at++;
        return result;
      }
      if (next !== ",") {
        this.fail(next === undefined ? "the array is not closed: expected ']'"
          : `expected ',' or ']' after an array item, not ${describe(next)}`);
      }
      this.lastComma = this.at;
      this.at++;
    }
  }

  string() {
    const start = this.at;
    this.at++; // opening quote
    for (;;) {
      const c = this.text[this.at];
      if (c === undefined) this.fail("the string is not closed: a '\"' is missing", start);
      if (c === '"') break;
      if (c < " ") {
        this.fail(c === "\n" ? "a line break inside a string (write \\n, or close the string)"
          : "a control character inside a string (escape it, e.g. \\t)");
      }
      if (c === "\\") {
        const e = this.text[this.at + 1];
        if (e === "u") {
          if (!/^[0-9a-fA-F]{4}$/.test(this.text.slice(this.at + 2, this.at + 6))) {
            this.fail("\\u must be followed by four hexadecimal digits");
          }
          this.at += 6;
          continue;
        }
        if (e === undefined || !'"\\/bfnrt'.includes(e)) {
          this.fail(`unknown escape \\${e ?? ""}: use \\", \\\\, \\/, \\b, \\f, \\n, ` +
            "\\r, \\t or \\uXXXX");
        }
        this.at += 2;
        continue;
      }
      this.at++;
    }
    this.at++; // closing quote
    return JSON.parse(this.text.slice(start, this.at));
  }

  number() {
    const match = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(this.text.slice(this.at));
    const rest = this.text[this.at + (match ? match[0].length : 0)];
    if (!match || match[0] === "-" || (rest !== undefined && /[0-9.eE]/.test(rest))) {
      const shown = /^[-+0-9.eE]+/.exec(this.text.slice(this.at))[0];
      this.fail(`'${shown}' is not a JSON number (no leading zeros, a digit on both sides ` +
        "of '.', e.g. 0.5)");
    }
    this.at += match[0].length;
    return Number(match[0]);
  }
}

function position(text, offset) {
  const before = text.slice(0, offset);
  const line = before.split("\n").length;
  return {line, column: offset - before.lastIndexOf("\n")};
}

export function checkJSON(text) {
  const reader = new Reader(text);
  try {
    const value = reader.value(0);
    reader.skipSpace();
    if (reader.at < text.length) {
      reader.fail(`unexpected ${describe(reader.peek())} after the end of the JSON value`);
    }
    return {ok: true, value};
  } catch (error) {
    if (!(error instanceof Problem)) throw error;
    return {ok: false, message: error.message, offset: error.offset,
      ...position(text, error.offset)};
  }
}
