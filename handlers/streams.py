"""WebSocket streams: ``/jobs/ID/stream`` follows one job, ``/events`` every change.

Authentication, the origin check (Tornado's own: same host as the page) and the job lookup all
happen before the upgrade, so a bad id is a real 404 and bad credentials a real 401. An open
socket is closed with 4401 once its credentials no longer hold (``jobjoker.credential_watch``). The
streaming itself lives in ``jobjoker.streams``; these handlers only wire a socket to it.

A refused origin stays a refused handshake (403: a foreign page never gets a socket), and is
logged (once a minute) with the origin, the Host it was compared with and the option that
allows it. A browser does not show a page why its handshake failed, so the page asks
``GET /streams/origin?origin=ITS_ORIGIN``, which applies the same rule to the same Host and
says why not.
"""
import logging
import re
import time
import urllib.parse

import tornado.websocket

from jobjoker import errors, storage
from jobjoker.handlers.access import AuthMixin
from jobjoker.handlers.base import APIHandler, ErrorEnvelopeMixin, JobPathMixin, \
    set_security_headers
from jobjoker.paging import MAX_OFFSET
from jobjoker.streams import EventsFollower, JobFollower, Outbox

log = logging.getLogger(__name__)
# What a browser sends as Origin: a scheme, a host (a name, an IPv4 or a bracketed IPv6 address)
# and maybe a port; the API document states the same pattern.
ORIGIN_PATTERN = r"^https?://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?$"


def origin_allowed(origin, host, allowed_origins):
    """Whether a browser page at ``origin`` may open a stream of a server it reaches by the
    ``Host`` header ``host``: Tornado's rule for a handshake (the ``Origin`` names that very
    host and port), or the origin is one of ``--allowed-origins``. Tornado 6.6 also lets a
    request through on ``Sec-Fetch-Site: same-origin``, but Chromium's handshakes are not let
    through by it (tests/test_proxy.py: refused behind ``$host`` over HTTPS), while its fetches
    carry it: so the page's own request's header is not asked here."""
    try:
        netloc = urllib.parse.urlsplit(origin).netloc
    except ValueError:  # brackets around no IPv6 address: no host to compare
        netloc = None
    if netloc is not None and netloc.lower() == (host or "").lower():
        return True
    return origin in allowed_origins


def origin_refusal(origin, host):
    """What a refused page (and the log) is told: the origin, the host, and what to change."""
    return ("WebSockets from the origin %r are not allowed: this server was reached as %r "
            "(the Host header). If the page is yours: behind a proxy, pass the Host header "
            "with its port (nginx: proxy_set_header Host $http_host); or add the origin to "
            "--allowed-origins" % (origin, host))


class StreamHandler(ErrorEnvelopeMixin, AuthMixin, tornado.websocket.WebSocketHandler):
    """Base of the stream handlers: authenticated before the upgrade, bounded output."""

    follower = None

    def set_default_headers(self):
        set_security_headers(self)  # for the refusals sent before an upgrade

    async def prepare(self):
        # Before the upgrade a locked database gets a prompt 503, as for any request; once open
        # (``open``), the stream's own reads wait for the database rather than fail.
        storage.answer_within(storage.ANSWER_SECONDS)
        self.authenticated_at = time.monotonic()  # a change announced after it is re-checked
        await self.authenticate()
        self.check_query()

    def check_origin(self, origin):
        """Tornado's same-origin check, plus the origins the admin allowed; a refusal is a 403
        in the envelope like any other, and a line in the log."""
        # Tornado asks only about a request it could not see to be same-origin itself.
        if super().check_origin(origin) or origin in self.settings["config"].allowed_origins:
            return True
        message = origin_refusal(origin, self.request.headers.get("Host"))
        self.settings["refusal_log"].log("origin", logging.WARNING, "%s %s refused: %s",
                                         self.request.method, self.request.path, message)
        raise errors.Forbidden(message)

    def make_outbox(self):
        config = self.settings["config"]
        return Outbox(self.write_message, self.close, config.stream_buffer_bytes,
                      config.stream_stall_timeout, self.settings["stream_budget"])

    def on_message(self, message):
        """Subscribers have nothing to say; anything they send is ignored."""

    def open(self, *args):
        storage.answer_within(None)
        self.settings["open_streams"].add(self)  # so a stopping server can say goodbye
        # Closed (4401) once the credentials that opened it are revoked or changed.
        self.settings["credential_watch"].add(self, self.identity, self.authenticated_at)

    def on_close(self):
        self.settings["open_streams"].discard(self)
        self.settings["credential_watch"].discard(self)
        if self.follower is not None:
            self.follower.stop()


class JobStreamHandler(JobPathMixin, StreamHandler):
    """``GET /jobs/ID/stream?log_from=K&response_from=M``: one job (ID or its short id), live."""

    query_names = {"GET": ("log_from", "response_from")}

    async def prepare(self):
        await super().prepare()  # a short id becomes the job's id
        await self.settings["jobs"].get_job(self.path_args[0])  # 404 before the upgrade
        self.offsets = {"log": self._offset("log_from"),
                        "response": self._offset("response_from")}

    def _offset(self, name):
        raw = self.get_query_argument(name, "0")
        if not (raw.isascii() and raw.isdigit()) or len(raw) > len(str(MAX_OFFSET)) or \
                int(raw) > MAX_OFFSET:
            raise errors.BadRequest("%s must be a whole number of entries, at most %d "
                                    "(got %r)" % (name, MAX_OFFSET, raw[:40]))
        return int(raw)

    def open(self, job_id):
        """Start with the status and the backlog, then go live."""
        super().open()
        self.follower = JobFollower(job_id, self.offsets, self.settings["storage"],
                                    self.settings["logstore"], self.settings["hub"],
                                    self.make_outbox())
        self.follower.start()


class EventsHandler(StreamHandler):
    """``GET /events``: every job and worker change."""

    def open(self):
        """Forward each change as it happens."""
        super().open()
        self.follower = EventsFollower(self.settings["hub"], self.make_outbox())
        self.follower.start()


class StreamOriginHandler(APIHandler):
    """``GET /streams/origin?origin=O``: may a page at origin ``O`` open streams here?"""

    query_names = {"GET": ("origin",)}

    def get(self):
        """``[{"origin", "host", "allowed"}]``; the message says why not."""
        origin = self.get_query_argument("origin", None)
        if not re.fullmatch(ORIGIN_PATTERN, origin or ""):
            raise errors.BadRequest("origin must be a page's origin, like "
                                    "https://jobs.example.com:8443 (got %r)" % origin)
        host = self.request.headers.get("Host")  # the one its socket reaches the server by
        allowed = origin_allowed(origin, host, self.config.allowed_origins)
        self.send_data({"origin": origin, "host": host, "allowed": allowed},
                       message="" if allowed else origin_refusal(origin, host))


default_handlers = [
    (r"/jobs/([^/]+)/stream", JobStreamHandler),
    (r"/events", EventsHandler),
    (r"/streams/origin", StreamOriginHandler),
]
