"""Where the server's log goes, what each line looks like, and which requests it records.

Contract: ``configure(config, stream)`` gives the root logger one handler, at
``config.log_level``: the file ``config.log_file`` (appended; created ``LOG_FILE_MODE`` whatever the umask, while
one already there keeps its mode)
or else ``stream`` (stderr); each record as a text line, or with ``log_format = "json"`` as one
JSON object per line with ``time`` (ISO 8601, UTC), ``level``, ``logger``, ``message`` and, when
the record carries one, ``exception`` (the traceback's text). It returns the handler; its
``reopen()`` opens the file anew, which is what SIGHUP does after logrotate renamed it (a
handler on a stream has nothing to reopen). ``access_log(config)`` is the Tornado
``log_function``: off, it records no request; on, a line per request at INFO (4xx WARNING,
5xx ERROR, as Tornado does), except the successful probes of ``PROBE_PATHS`` (under
``--base-path``), which go at DEBUG so that a load balancer asking every few seconds does not
fill the log. Every line, whoever
logs it (Tornado's own "uncaught exception" line repeats the URL), passes ``redact``: the value
of a query parameter with a secret-looking name (``SECRET_WORDS``) and the password of a URL
(``scheme://user:password@``) become ``***``, so whatever a client puts in a URL or a driver
puts in a message, the log holds no password or token from it.
"""
import json
import logging
import os
import re

from jobjoker.timefmt import rfc3339

log = logging.getLogger(__name__)
access = logging.getLogger("tornado.access")

# The owner writes, its group reads (logrotate's `create 0640 jobjoker adm` gives rotated files
# the same), others nothing; not left to the umask of whoever starts the server.
LOG_FILE_MODE = 0o640
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
PROBE_PATHS = ("/health", "/metrics")
SECRET_WORDS = "pass|token|secret|key|auth|session|cookie|xsrf"
MASK = "***"
# ?name=value or &name=value where the name holds a secret word: the value goes.
SECRET_PARAMETER = re.compile(r"([?&;][^=&\s#]*?(?:%s)[^=&\s#]*=)[^&\s#'\"]*" % SECRET_WORDS,
                              re.IGNORECASE)
URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s/]+@", re.IGNORECASE)


def redact(text):
    """``text`` without secret query values nor URL passwords (each replaced by ``MASK``)."""
    if "=" in text:
        text = SECRET_PARAMETER.sub(r"\1" + MASK, text)
    if "://" in text:
        text = URL_PASSWORD.sub(r"\1" + MASK + "@", text)
    return text


class TextFormatter(logging.Formatter):
    """``TEXT_FORMAT`` lines, redacted."""

    def __init__(self):
        super().__init__(TEXT_FORMAT)

    def format(self, record):
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines in a message stay escaped)."""

    def format(self, record):
        entry = {
            "time": rfc3339(record.created, "milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            entry["exception"] = redact(record.exc_text)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False)


class ReopenableFileHandler(logging.StreamHandler):
    """Appends to a file that ``reopen()`` opens again by name (the old one may be renamed)."""

    def __init__(self, path):
        self.path = os.fspath(path)
        super().__init__(self._open())

    def _open(self):
        flags = os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC
        try:
            fd = os.open(self.path, flags | os.O_CREAT | os.O_EXCL, LOG_FILE_MODE)
        except FileExistsError:  # made by logrotate's `create`, or by an earlier start
            fd = os.open(self.path, flags)
        else:
            try:
                os.fchmod(fd, LOG_FILE_MODE)  # the umask took bits off: give them back
            except BaseException:
                os.close(fd)
                raise
        return os.fdopen(fd, "a", encoding="utf-8", errors="backslashreplace")

    def reopen(self):
        """Switch to a freshly opened file of the same name; on failure keep the old one."""
        try:
            stream = self._open()
        except OSError as e:
            log.error("cannot reopen the log file %s (%s); logging on to the file as it was",
                      self.path, e)
            return
        self.acquire()
        try:
            old, self.stream = self.stream, stream
        finally:
            self.release()
        old.close()
        log.info("reopened the log file %s", self.path)

    def close(self):
        self.acquire()
        try:
            if self.stream is not None:
                self.stream.close()
                self.stream = None
        finally:
            self.release()
        super().close()

    def emit(self, record):
        if self.stream is not None:  # closed at exit: nothing to write to
            super().emit(record)


class StreamOutput(logging.StreamHandler):
    """The console: a stream, nothing to reopen."""

    def reopen(self):
        log.info("SIGHUP: the log goes to a stream (no --log-file), nothing to reopen")


def configure(config, stream):
    """Send every record at ``config.log_level`` and above to the log file or ``stream``."""
    if config.log_file:
        handler = ReopenableFileHandler(config.log_file)
    else:
        handler = StreamOutput(stream)
    handler.setFormatter(JsonFormatter() if config.log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(config.log_level.upper())
    return handler


def access_log(config):
    """Tornado's ``log_function`` for ``config.access_log``."""
    if not config.access_log:
        return lambda handler: None
    probes = frozenset(config.base_path + path for path in PROBE_PATHS)  # where they are served

    def log_request(handler):
        status = handler.get_status()
        request = handler.request
        if status < 400:
            level = logging.DEBUG if request.path in probes else logging.INFO
        else:
            level = logging.WARNING if status < 500 else logging.ERROR
        if not access.isEnabledFor(level):
            return
        access.log(level, "%d %s %s (%s) %.2fms", status, request.method,
                   request.uri, request.remote_ip, 1000.0 * request.request_time())
    return log_request
