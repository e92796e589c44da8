"""``/session``: browser login and logout (a revocable session cookie, XSRF-protected)."""
from jobjoker import errors
from jobjoker.accounts import LOGIN_KEYS
from jobjoker.auth import SESSION_COOKIE, xsrf_token
from jobjoker.handlers.users import AccountsHandler

XSRF_COOKIE = "_xsrf"  # the page reads it (static/js/api.js)


class SessionHandler(AccountsHandler):
    """POST logs in (no credentials needed, but throttled), GET says who you are, DELETE logs
    out."""

    permissions = {"GET": "self", "DELETE": "self"}

    def needs_authentication(self):
        return self.request.method != "POST"  # the login itself: nobody is signed in yet

    @property
    def cookie_path(self):
        """The cookies belong to this server's path (``--base-path``), not to its neighbours
        on the same host."""
        return self.config.base_path or "/"

    def get(self):
        """``[{"username", "role", "scheme", "xsrf"}]``: who is signed in (``xsrf`` null
        unless by a session)."""
        self.send_data(self._whoami(self.identity.username, self.identity.role,
                                    self.identity.scheme))

    async def post(self):
        """Log in with ``{"username", "password"}``: sets the session and XSRF cookies."""
        user, cookie = await self.accounts.login(self.actor, self.json_body(LOGIN_KEYS))
        if user is None:
            raise errors.Unauthorized("wrong username or password")
        self.set_cookie(SESSION_COOKIE, cookie, httponly=True, samesite="Strict",
                        secure=self.request.protocol == "https", expires_days=None,
                        max_age=int(self.config.session_lifetime), path=self.cookie_path)
        self.send_data(self._whoami(user["username"], user["role"], "session", cookie), 201,
                       "signed in as %s" % user["username"])

    async def delete(self):
        """Log out: the session is revoked on the server, the cookies cleared."""
        await self.accounts.logout(self.identity, self.actor)
        self.clear_cookie(SESSION_COOKIE, path=self.cookie_path)
        self.clear_cookie(XSRF_COOKIE, path=self.cookie_path)
        self.send_data(message="signed out")

    def _whoami(self, username, role, scheme, cookie=None):
        xsrf = None
        if scheme == "session":
            # The page echoes it in X-XSRFToken; the (script-readable) cookie keeps it across
            # reloads. It is derived from the session, so each sign-in has its own.
            xsrf = xsrf_token(cookie or self.get_cookie(SESSION_COOKIE))
            # Secure like the session's: under TLS, or behind a proxy that says https
            # (--trust-proxy, jobjoker.forwarded).
            self.set_cookie(XSRF_COOKIE, xsrf, samesite="Strict", path=self.cookie_path,
                            secure=self.request.protocol == "https")
        return {"username": username, "role": role, "scheme": scheme, "xsrf": xsrf}


default_handlers = [
    (r"/session", SessionHandler),
]
