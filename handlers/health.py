"""``/health``: is the server ready? Answered to anyone, so load balancers and scripts can ask;
the details only to the signed-in.

Without credentials, ``GET`` and ``HEAD`` say up (200, ``{"status": "ok"}``) or down (503)
and nothing more: what is wrong and what runs is not told to strangers. With credentials
(any role) the reply carries the version, the node, running jobs, the loop's lag, the
supervisors and, when down, the reason. Wrong credentials get 401 as anywhere else; when the
database cannot check them (it is what is down), the caller gets the anonymous answer.
"""
import peewee

from jobjoker import errors
from jobjoker.auth import SESSION_COOKIE
from jobjoker.handlers.base import APIHandler

DOWN = "down: the server cannot serve requests (sign in to see why)"
# Credentials that the database cannot check mean the database is what is down; saying that
# much (and no more) spares the signed-in a "sign in to see why" they cannot follow.
DOWN_UNCHECKED = ("down: the server cannot serve requests, and cannot check your credentials "
                  "(its database does not answer): the server's log says why")


class HealthHandler(APIHandler):
    """Readiness: 200 once the server has its database and supervisor, 503 otherwise."""

    auth_required = False

    async def get(self):
        """``[{"status": "ok", ...}]``, the details for the signed-in."""
        try:
            details = await self.settings["health"]()
        except errors.Unavailable:
            if await self.signed_in():
                raise
            raise errors.Unavailable(DOWN_UNCHECKED if self.unchecked else DOWN)
        self.send_data(details if await self.signed_in() else {"status": "ok"})

    head = get  # Tornado sends HEAD's headers (Content-Length too) without the body

    unchecked = False  # credentials were sent that the database could not check

    async def signed_in(self):
        """Whether the request proves who sent it (401 if it tries and fails)."""
        if self.identity is not None:
            return True
        if not self.request.headers.get("Authorization") and not self.get_cookie(SESSION_COOKIE):
            return False
        try:
            await self.authenticate()
        except (errors.Unavailable, peewee.PeeweeException):
            self.unchecked = True
            return False  # the database cannot say who it is: the anonymous answer
        return True


default_handlers = [
    (r"/health", HealthHandler),
]
