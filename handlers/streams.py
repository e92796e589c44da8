"""WebSocket streams: ``/jobs/ID/stream`` follows one job, ``/events`` every change.

Authentication, the origin check (Tornado's own: same host as the page) and the job lookup all
happen before the upgrade, so a bad id is a real 404 and bad credentials a real 401. An open
socket is closed with 4401 once its credentials no longer hold (``jobjoker.credential_watch``). The
streaming itself lives in ``jobjoker.streams``; these handlers only wire a socket to it.
"""
import time

import tornado.websocket

from jobjoker import errors, storage
from jobjoker.handlers.base import AuthMixin, ErrorEnvelopeMixin, JobPathMixin, \
    set_security_headers
from jobjoker.paging import MAX_OFFSET
from jobjoker.streams import EventsFollower, JobFollower, Outbox


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
        in the envelope like any other."""
        if super().check_origin(origin) or origin in self.settings["config"].allowed_origins:
            return True
        raise errors.Forbidden("WebSockets from the origin %r are not allowed (add it to "
                               "--allowed-origins if it is yours)" % origin)

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


default_handlers = [
    (r"/jobs/([^/]+)/stream", JobStreamHandler),
    (r"/events", EventsHandler),
]
