// The sign-in form: posts the username and password to /session (which sets the session
// cookie) and goes on to the admin page; shows the server's message when it refuses
// (wrong password, or 429 while too many attempts failed). Public: loaded before sign-in.
// The form is served at BASE + "/login", this file at BASE + "/static/js/login.js" (BASE is
// the server's --base-path; the same rule as api.js, which the form does not load).
const BASE = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
const form = document.getElementById("login-form");
const error = document.getElementById("login-error");
const submit = document.getElementById("login-submit");

function show(message) {
  error.textContent = message; // text, never HTML
  error.hidden = false;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  error.hidden = true;
  submit.disabled = true;
  try {
    const reply = await fetch(BASE + "/session", {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Requested-With": "JobJoker" },
      body: JSON.stringify({
        username: document.getElementById("login-username").value,
        password: document.getElementById("login-password").value,
      }),
      credentials: "same-origin",
    });
    if (reply.ok) {
      window.location.assign(BASE + "/");
      return;
    }
    const body = await reply.json().catch(() => ({}));
    show(body.message || `Sign-in failed (${reply.status})`);
  } catch (e) {
    show("The server cannot be reached: " + e.message);
  } finally {
    submit.disabled = false;
  }
});
