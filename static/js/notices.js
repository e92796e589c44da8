// notices.js — the message area at the top of the page.
//
// Contract: showError(text) shows why something the user asked for did not happen (usually the
// server's own message) in the role="alert" region, so screen readers announce it; it stays
// until dismissed or replaced, because it explains a refusal. showInfo(text) confirms a success
// in the role="status" region and fades after a few seconds. clearError() removes the error
// (call it when the user starts something new). Messages are text, never HTML.

import {$, el, replaceContent} from "./dom.js";

const INFO_SECONDS = 6;
let infoTimer = null;

function notice(kind, text, onDismiss) {
  return el("div", {class: `notice notice-${kind}`},
    el("p", {class: "notice-text", text}),
    el("button", {type: "button", class: "notice-close", text: "×",
      attrs: {"aria-label": "Dismiss this message"}, on: {click: onDismiss}}));
}

export function showError(text) {
  const area = $("#alert-area");
  replaceContent(area, notice("error", text, clearError));
}

export function clearError() {
  $("#alert-area").replaceChildren();
}

export function showInfo(text) {
  const area = $("#status-area");
  const clear = () => area.replaceChildren();
  replaceContent(area, notice("info", text, clear));
  clearTimeout(infoTimer);
  infoTimer = setTimeout(clear, INFO_SECONDS * 1000);
}

/**
 * Run an action the user asked for: clear the previous error, and show the error's message if
 * it fails (an ApiError's message is the server's). Resolves to the action's result, or
 * undefined when it failed.
 */
export async function attempt(action) {
  clearError();
  try {
    return await action();
  } catch (error) {
    showError(error.message || String(error));
    return undefined;
  }
}
