// editor.js — a Python code editor: vendored CodeMirror 5 with this page's settings, and the
// highlight of the line the server refused.
//
// Contract: new CodeEditor(parent, {label, value}) puts an editor in `parent`.
//   value / setValue(text)   the code; setValue also marks it clean
//   isDirty()                edited since the last setValue or markClean()
//   markClean()
//   showErrorAt(line)        1-based: highlights the line, puts the caret there and scrolls to
//                            it; the highlight goes with the next edit
//   refresh()                call when the editor's panel becomes visible: CodeMirror measures
//                            itself and cannot while hidden
//   focus(), onChange(fn)
// Keyboard: Tab indents with four spaces (Python's convention), Shift-Tab dedents; Escape then
// Tab leaves the editor, so it is not a keyboard trap. CodeMirror comes from the plain scripts
// index.html loads before the modules (the global `CodeMirror`).

const ERROR_LINE_CLASS = "cm-error-line";

export class CodeEditor {
  constructor(parent, {label, value = ""}) {
    let escaped = false;
    this.errorLine = null;
    this.cm = window.CodeMirror(parent, {
      value,
      mode: "python",
      lineNumbers: true,
      indentUnit: 4,
      tabSize: 4,
      indentWithTabs: false,
      matchBrackets: true,
      viewportMargin: 50,
      screenReaderLabel: label,
      extraKeys: {
        Tab: (cm) => {
          if (escaped) return window.CodeMirror.Pass; // let the browser move the focus
          if (cm.somethingSelected()) cm.execCommand("indentMore");
          else cm.execCommand("insertSoftTab");
          return undefined;
        },
        "Shift-Tab": (cm) => (escaped ? window.CodeMirror.Pass : cm.execCommand("indentLess")),
        Esc: () => { escaped = true; },
      },
    });
    this.cm.on("keydown", (cm, event) => {
      if (event.key !== "Escape" && event.key !== "Tab" && event.key !== "Shift") escaped = false;
    });
    this.cm.on("blur", () => { escaped = false; });
    this.cm.on("change", () => this.clearError());
    this.generation = this.cm.changeGeneration();
  }

  get value() {
    return this.cm.getValue();
  }

  setValue(text) {
    this.cm.setValue(text);
    this.cm.clearHistory();
    this.markClean();
  }

  markClean() {
    this.generation = this.cm.changeGeneration();
  }

  isDirty() {
    return !this.cm.isClean(this.generation);
  }

  onChange(fn) {
    this.cm.on("change", () => fn(this.value));
  }

  showErrorAt(line) {
    this.clearError();
    const index = Math.min(Math.max(line - 1, 0), this.cm.lineCount() - 1);
    this.errorLine = this.cm.addLineClass(index, "wrap", ERROR_LINE_CLASS);
    this.cm.setCursor({line: index, ch: 0});
    this.cm.scrollIntoView({line: index, ch: 0}, 80);
  }

  clearError() {
    if (this.errorLine) {
      this.cm.removeLineClass(this.errorLine, "wrap", ERROR_LINE_CLASS);
      this.errorLine = null;
    }
  }

  refresh() {
    this.cm.refresh();
  }

  focus() {
    this.cm.focus();
  }
}
