"""Who is asking, and may they: authentication, permissions, and the Host and query checks that
every API, page and WebSocket handler makes before it does anything.

Contract: ``AuthMixin.authenticate()`` sets ``self.identity`` from the request's credentials
(HTTP Basic, a Bearer token, or the session cookie, whose unsafe requests must also carry that
session's XSRF token in ``X-XSRFToken``) or raises ``Unauthorized`` (wrong credentials are
audited as a failed login) or ``Forbidden`` (the role lacks the permission the method needs:
the one it declares in ``permissions``, else ``read`` when safe and ``admin`` otherwise, so a
forgotten declaration fails closed). ``check_host()`` refuses, on a server that listens on
loopback only, a Host header naming another host (DNS rebinding); ``check_query()`` refuses a
query parameter the method does not take (``query_names``). ``implements(handler, method)``
tells a method a handler answers itself from Tornado's 405 stand-in. It raises domain errors
only: ``handlers/base.py`` turns them into replies.
"""
import tornado.web

from jobjoker import errors
from jobjoker.audit import Actor
from jobjoker.auth import SESSION_COOKIE, Credentials, failed_attempt, xsrf_matches
from jobjoker.bodies import check_keys
from jobjoker.config import is_loopback

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
ROLE_NEEDED = {"read": "viewer or above", "run": "operator or admin", "admin": "admin"}


def implements(handler, method):
    """Whether ``handler`` answers ``method`` itself, not with Tornado's 405 stand-in."""
    return getattr(type(handler), method.lower(), None) is not \
        getattr(tornado.web.RequestHandler, method.lower(), None)


class AuthMixin:
    """Who is asking, and may they: ``authenticate()`` sets ``self.identity`` or raises.

    Each handler names the permission each method needs in ``permissions`` (``"read"``,
    ``"run"``, ``"admin"``, or ``"self"`` for any signed-in user, the domain checking the rest);
    an undeclared method needs ``read`` when safe and ``admin`` otherwise, so forgetting to
    declare one fails closed. A request authenticated by the session cookie must also carry that
    session's XSRF token (``auth.xsrf_token``) in ``X-XSRFToken`` for any unsafe method.
    """

    identity = None
    permissions = {}
    # The query parameters each method takes; any other is refused (400, with a "did you mean"),
    # so a misspelt filter is never taken for an absent one. None: not checked (pages).
    query_names = {}

    @property
    def actor(self):
        return Actor(self.identity.username if self.identity else None, self.request.remote_ip)

    def required_permission(self):
        method = self.request.method
        return self.permissions.get(method, "read" if method in SAFE_METHODS else "admin")

    def check_host(self):
        """On loopback, refuse a Host header naming another host: a page on a rebound DNS name
        must not reach a server that trusts being local."""
        config = self.settings["config"]
        if not config.loopback_only:
            return
        host = self.request.host_name.lower()
        if not is_loopback(host) and host not in config.allowed_hosts:
            raise errors.Forbidden("Host %r is not served here (the server listens on loopback: "
                                   "use localhost, or add the name to --allowed-hosts)" % host)

    def check_query(self):
        """400 naming each query parameter this method does not take (after authentication:
        what a route takes is not told to strangers)."""
        method = self.request.method
        if self.query_names is None or not implements(self, method):
            return  # not checked, or a method this route lacks: Tornado's 405 says so
        named = {name: value for name, value in self.request.query_arguments.items() if name}
        check_keys(named, self.query_names.get(method, ()),
                   "%s %s" % (method, self.request.path), noun="query parameter")

    async def authenticate(self):
        self.check_host()
        header = self.request.headers.get("Authorization")
        credentials = Credentials(authorization=header,
                                  session_cookie=self.get_cookie(SESSION_COOKIE),
                                  address=self.request.remote_ip)
        self.identity = await self.settings["authenticator"].authenticate(credentials)
        if self.identity is None:
            if header:  # credentials were sent and were wrong: that is worth a trace
                await self.settings["audit"].failure(self.actor, "login.failed",
                                                     *failed_attempt(header))
            raise errors.Unauthorized("authentication required: send HTTP Basic credentials, "
                                      "a Bearer token, or log in")
        if self.identity.scheme == "session" and self.request.method not in SAFE_METHODS:
            self._check_xsrf()
        permission = self.required_permission()
        if permission != "self" and not self.identity.may(permission):
            raise errors.Forbidden("your role (%s) may not %s %s: it needs %s"
                                   % (self.identity.role, self.request.method,
                                      self.request.path, ROLE_NEEDED[permission]))

    def _check_xsrf(self):
        # Only the header, and only this session's token: not Tornado's check, which takes any
        # matching cookie and header pair and the _xsrf argument of a URL or form.
        if not xsrf_matches(self.get_cookie(SESSION_COOKIE),
                            self.request.headers.get("X-XSRFToken")):
            raise errors.Forbidden("missing or wrong XSRF token: send this session's token "
                                   "(the xsrf of GET /session, also in the _xsrf cookie) in an "
                                   "X-XSRFToken header")
