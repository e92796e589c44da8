"""The base handler: bodies, the JSON envelope and error mapping, in one place.

Contract: every API handler subclasses ``APIHandler``. Before the body is read, ``prepare()``
authenticates (``handlers/access.py``: 401 with a Basic challenge unless the handler sets
``auth_required = False``, 403 for a role that may not) and
refuses a declared body larger than the limit (413), so an oversized upload is never read whole.
The body is read only after that, at most ``--max-public-body-size`` before sign-in, and every
body held counts against the server-wide ``--max-body-memory`` (503 with Retry-After past it).
``self.body`` is the request body, ``self.json_body(keys)`` it parsed (400 on bad JSON, and on an
object holding a key outside ``keys``: every handler that reads JSON names what it takes, and
``jobjoker.bodies`` says what is wrong, with a "did you mean"). Replies use
``self.send_data(data, status, message)``: ``{"success", "message", "total", "data"}`` with
``data`` always a list. Any domain error raised by a handler becomes that envelope with the status
from ``ERROR_STATUS``; a database that is locked or away becomes a 503; anything unexpected
becomes a 500 whose details go to the server log only.
"""
import asyncio
import json
import logging
import re

import peewee
import tornado.iostream
import tornado.web

from jobjoker import errors, storage
from jobjoker.bodies import check_keys
from jobjoker.handlers.access import AuthMixin, implements

log = logging.getLogger(__name__)

ERROR_STATUS = {
    errors.BadRequest: 400,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.MethodNotAllowed: 405,
    errors.Conflict: 409,
    errors.TooLarge: 413,
    errors.TooManyRequests: 429,
    errors.ValidationError: 422,
    errors.Unavailable: 503,
}


def status_for(exc):
    for cls in type(exc).__mro__:
        if cls in ERROR_STATUS:
            return ERROR_STATUS[cls]
    return 500


def envelope(data=(), success=True, message=""):
    data = list(data)
    return {"success": success, "message": message, "total": len(data), "data": data}


# A strict policy the admin page is written for: no inline script or style, nothing from other
# origins, no framing (clickjacking). WebSockets to this origin are covered by 'self'.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; "
                           "img-src 'self' data:; connect-src 'self'; object-src 'none'; "
                           "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def set_security_headers(handler):
    """The headers every reply carries, REST, page and static files alike."""
    handler.set_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    handler.set_header("X-Content-Type-Options", "nosniff")
    handler.set_header("X-Frame-Options", "DENY")
    handler.set_header("Referrer-Policy", "no-referrer")
    # HSTS only where the browser reached us over HTTPS (our TLS, or a trusted proxy's: see
    # jobjoker.forwarded): sent over plain HTTP it would be ignored, and wrong.
    hsts_seconds = handler.settings["config"].hsts_seconds
    if hsts_seconds and handler.request.protocol == "https":
        handler.set_header("Strict-Transport-Security", "max-age=%d" % hsts_seconds)


def _reject_constant(name):
    # Python's parser accepts NaN and Infinity; they are not JSON, and once stored they would
    # make every later reply that holds them invalid JSON.
    raise errors.BadRequest("the body is not valid JSON: %s is not a JSON value "
                            "(use null, a number or a string)" % name)


# A \uD800-\uDFFF escape: JSON lets one stand alone, but such a string is no text (it cannot
# be stored or encoded as UTF-8), so a body whose escapes leave one alone is refused.
LONE_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _reject_lone_surrogates(value):
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise errors.BadRequest("the body holds a \\u escape of half a UTF-16 surrogate pair "
                                "without its other half: that is not text; send the character "
                                "itself, or both halves")


def reject_nul_in_path(handler):
    """A NUL in a path argument names nothing (a file system would raise on it). The API's
    own names and ids are checked by their services, with their own messages."""
    if any("\x00" in (arg or "") for arg in handler.path_args):
        raise errors.BadRequest("the path holds a NUL character (%%00): no resource has one")


class ErrorEnvelopeMixin:
    """Renders any error as the envelope with the right status (REST and WebSocket handlers)."""

    def write_error(self, status_code, **kwargs):
        exc = kwargs.get("exc_info", (None, None, None))[1]
        extra = {}
        if isinstance(exc, errors.JobJokerError):
            status_code, message = status_for(exc), exc.message
            # The admin page marks its requests: it shows its own sign-in form, and a Basic
            # challenge would make the browser pop up its dialog instead.
            if isinstance(exc, errors.Unauthorized) and \
                    "X-Requested-With" not in self.request.headers:
                self.set_header("WWW-Authenticate", 'Basic realm="JobJoker", charset="UTF-8"')
            if getattr(exc, "retry_after", None) is not None:
                self.set_header("Retry-After", str(exc.retry_after))
            if getattr(exc, "line", None) is not None:
                extra["line"] = exc.line
        elif isinstance(exc, (peewee.OperationalError, peewee.InterfaceError)):
            # Locked, restarting, unreachable or full: the request may succeed if tried again.
            status_code, message = 503, "the database is unavailable; try again shortly"
            if errors.is_disk_full(exc):
                message = "the database's disk is full: nothing can be stored until there " \
                          "is room; try again later"
            self.set_header("Retry-After", "1")
        elif isinstance(exc, tornado.web.HTTPError):
            status_code = exc.status_code
            message = exc.log_message if exc.log_message and status_code < 500 \
                else self._reason
            if status_code == 405:
                message = "%s is not allowed on %s" % (self.request.method, self.request.path)
        else:
            message = "internal error; the server log has the details"
        if status_code == 405:  # RFC 9110 15.5.6: a 405 must say what is allowed
            self.set_header("Allow", ", ".join(self.allowed_methods()))
        self.clear_header("Content-Disposition")
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.set_status(status_code)
        body = envelope([extra] if extra else [], False, message)
        self.finish(json.dumps(body))

    def allowed_methods(self):
        """The methods this resource answers: those the handler implements itself (not
        Tornado's 405 stand-ins), less the one just refused."""
        return [method for method in self.SUPPORTED_METHODS if method != self.request.method
                and implements(self, method)]

    def log_exception(self, typ, value, tb):
        if isinstance(value, errors.JobJokerError):
            log.debug("%s %s: %s", self.request.method, self.request.path, value.message)
        elif errors.is_disk_full(value):  # /health says so; a traceback each time says no more
            log.warning("%s %s: 503, the disk is full: %s", self.request.method,
                        self.request.path, value)
        else:
            super().log_exception(typ, value, tb)


class JobPathMixin:
    """For the routes whose first path argument names a job (REST and streams): a short id
    there (the id's last characters, as the page shows them) is replaced by the job's id before
    the method runs, in this one place (``JobService.resolve_id``: 404 when no job has it, 409
    naming the jobs when several do). It comes after authentication: ids are not told to
    strangers."""

    async def prepare(self):
        await super().prepare()
        self.path_args[0] = await self.settings["jobs"].resolve_id(self.path_args[0])


LARGE_REPLY = 1024 * 1024  # a reply past this is written in pieces of this size
CHUNKED_SLACK = 2 * 65536  # twice Tornado's default chunk_size
BUSY_MESSAGE = ("the server holds as many request bodies as it may at once (--max-body-memory); "
                "send it again shortly")
BUSY_RETRY_AFTER = 1  # seconds


@tornado.web.stream_request_body
class APIHandler(ErrorEnvelopeMixin, AuthMixin, tornado.web.RequestHandler):
    """Base of every REST handler."""

    auth_required = True

    def needs_authentication(self):
        return self.auth_required

    @property
    def config(self):
        return self.settings["config"]

    @property
    def jobs(self):
        return self.settings["jobs"]

    @property
    def workers(self):
        return self.settings["workers"]

    def set_default_headers(self):
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        set_security_headers(self)

    async def prepare(self):
        # A database that does not answer in time gets the client a 503, not a hung request.
        storage.answer_within(storage.ANSWER_SECONDS)
        self._chunks = []
        self._received = 0
        self._too_large = False
        self._held = 0  # bytes of the body budget this request holds
        self._over_budget = False
        if self.needs_authentication():
            await self.authenticate()
        else:
            self.check_host()
        self.check_query()
        # The body is read only once prepare() is done, so after the credentials and the
        # permission are known; and not far past this request's own limit: a chunked body
        # that passes it is answered 413 at once (data_received) and its connection closed.
        # Tornado gathers small chunks up to its read size before handing them over: the
        # slack lets them reach us (a bare 400 otherwise), and costs at most that much.
        self.request.connection.set_max_body_size(self.max_body_size + CHUNKED_SLACK)
        declared = self.request.headers.get("Content-Length")
        if declared is not None:
            try:
                declared = int(declared)
            except ValueError:
                raise errors.BadRequest("Content-Length must be a number")
            if declared > self.max_body_size:
                raise errors.TooLarge("the body is %d bytes; the limit is %d"
                                      % (declared, self.max_body_size))
            self._hold(declared)
            if self._over_budget:
                raise errors.Unavailable(BUSY_MESSAGE, retry_after=BUSY_RETRY_AFTER)

    @property
    def max_body_size(self):
        """This request's largest body: small until someone is signed in."""
        if not self.needs_authentication():
            return self.config.max_public_body_size
        return self.config.max_body_size

    def _hold(self, size):
        """Reserve ``size`` bytes of the server-wide body budget (``--max-body-memory``)."""
        if self._over_budget:
            return
        if self.settings["body_budget"].take(size):
            self._held += size
        else:
            self._over_budget = True
            self._chunks = []

    def _release_body(self):
        self._chunks = []
        if getattr(self, "_held", 0):
            self.settings["body_budget"].give_back(self._held)
            self._held = 0

    def on_finish(self):
        self._release_body()

    def on_connection_close(self):
        self._release_body()
        super().on_connection_close()

    def data_received(self, chunk):
        self._received += len(chunk)
        if self._too_large or self._over_budget:
            return
        if self._received > self.max_body_size:
            self._too_large = True  # chunked upload past the limit: answer now, keep nothing
            self._release_body()
            self._refuse_body(errors.TooLarge("the body is over the limit of %d bytes"
                                              % self.max_body_size))
            return
        if self.request.headers.get("Content-Length") is None:
            self._hold(len(chunk))  # chunked: held as it comes
        if self._over_budget:
            self._refuse_body(errors.Unavailable(BUSY_MESSAGE, retry_after=BUSY_RETRY_AFTER))
        else:
            self._chunks.append(chunk)

    def _refuse_body(self, error):
        """Answer ``error`` while the body still streams in: Tornado then reads no more of it
        and closes the connection once the reply is sent."""
        if not self._finished:
            self.send_error(status_for(error), exc_info=(type(error), error, None))

    @property
    def body(self):
        if self._too_large:
            raise errors.TooLarge("the body is over the limit of %d bytes" % self.max_body_size)
        if self._over_budget:
            raise errors.Unavailable(BUSY_MESSAGE, retry_after=BUSY_RETRY_AFTER)
        return b"".join(self._chunks)

    def json_body(self, keys, hint=""):
        """The body parsed as JSON (400 with the position of the mistake when it is not, or
        when it is an object holding a key outside ``keys``)."""
        body = self.body
        if not body.strip():
            raise errors.BadRequest("the body is empty; send JSON")
        try:
            value = json.loads(body, parse_constant=_reject_constant)
        except UnicodeDecodeError:
            raise errors.BadRequest("the body must be UTF-8 JSON")
        except json.JSONDecodeError as e:
            raise errors.BadRequest("the body is not valid JSON: %s (line %d, column %d)"
                                    % (e.msg, e.lineno, e.colno))
        except RecursionError:
            raise errors.BadRequest("the body's JSON is nested too deeply")
        except ValueError as e:  # Python's limit on the digits of an integer (4300)
            raise errors.BadRequest("the body holds a number too long to read: %s" % e)
        if LONE_SURROGATE_ESCAPE.search(body):
            _reject_lone_surrogates(value)
        check_keys(value, keys, hint=hint)
        return value

    def send_data(self, data=(), status=200, message=""):
        """Finish with the envelope around ``data`` (a list, or one item)."""
        if isinstance(data, dict):
            data = [data]
        self.set_status(status)
        self.finish(json.dumps(envelope(data, True, message)))

    async def send_large(self, text):
        """Finish with ``text``, which may be megabytes: a small one at once (with its ETag),
        a large one held against the server-wide budget (``--max-body-memory``; 503 when
        it is spent) and written piece by piece at the pace the client reads."""
        if len(text) <= LARGE_REPLY:
            self.finish(text)
            return
        if not self.settings["body_budget"].take(len(text)):
            raise errors.Unavailable(BUSY_MESSAGE, retry_after=BUSY_RETRY_AFTER)
        self._held += len(text)  # given back when the request ends, however it ends
        if await self.write_paced(text):
            self.finish()

    async def write_paced(self, text):
        """Write ``text`` in pieces, each once the client took the one before; a client that
        takes nothing for ``--stream-stall-timeout`` seconds is disconnected (False)."""
        for start in range(0, len(text), LARGE_REPLY):
            self.write(text[start:start + LARGE_REPLY])
            try:
                await asyncio.wait_for(self.flush(), self.config.stream_stall_timeout)
            except (asyncio.TimeoutError, tornado.iostream.StreamClosedError):
                self.request.connection.close()
                return False
        return True

    def send_text(self, text):
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        self.finish(text)


class NotFoundHandler(APIHandler):
    """Any path no route matches: 404 in the envelope (after authentication)."""

    permissions = {method: "self" for method in ("GET", "POST", "PUT", "DELETE", "PATCH")}

    def prepare_path(self):
        raise errors.NotFound("no such resource: %s" % self.request.path)

    async def get(self, *args):
        self.prepare_path()

    post = put = delete = patch = get
