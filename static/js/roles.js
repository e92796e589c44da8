// roles.js — what the signed-in user's role lets the page offer. Cosmetic only: the server
// checks every request and every WebSocket itself, and the page still shows its refusals.
//
// Contract: setRole(role) records the role GET /session gave and sets it on <body> as
// data-role; app.css then hides every element marked data-needs="operator" or
// data-needs="admin" that the role does not reach (and every data-needs element while no role is
// known yet), whether it is in index.html or built later. allows(needed) answers the same
// question for code (which tabs exist); rolesUpTo(role) lists the roles a token may have.

export const ROLES = ["viewer", "operator", "admin"]; // lowest first, as the server orders them

let current = null;

export function setRole(role) {
  current = ROLES.includes(role) ? role : "viewer";
  document.body.dataset.role = current;
}

export function currentRole() {
  return current;
}

/** Whether the current role reaches `needed` (no `needed`: anyone may). */
export function allows(needed) {
  if (!needed) return true;
  return current !== null && ROLES.indexOf(current) >= ROLES.indexOf(needed);
}

export function rolesUpTo(role) {
  return ROLES.slice(0, ROLES.indexOf(role) + 1);
}
