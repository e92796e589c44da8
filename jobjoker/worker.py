"""The worker author's API: subclass ``jobjoker.Worker`` and implement ``run()``.

Contract: a worker file ``workers/<Name>.py`` defines ``class <Name>(jobjoker.Worker)``. For each
job the runner loads the file afresh, instantiates the class with no arguments and calls ``run()``:
returning means ``done``, an uncaught exception means ``error`` (its traceback lands in the log),
and returning after a stop request means ``stop``. Inside ``run()`` a worker reads ``self.params``
(``self.get_parameter(name, default)``) and ``self.job_id``, writes with ``self.log(value)`` and
``self.response(value)``, and polls ``self.is_active()``, which turns false once a stop is asked
for. The class docstring is the worker's description. Outside a job (in a REPL, in a unit test of
a worker) the same class runs with entries printed to stdout. Lean: standard library only.
"""
import json
import sys

from jobjoker import controls

_INF = float("inf")

# Set by the runner, in the job process, before the worker class is instantiated.
_job_context = None


class JobContext:
    """What a worker instance is bound to: its job and where its entries go."""

    def __init__(self, job_id=None, params=None, log_sink=None, response_sink=None,
                 is_active=None, control_sink=None):
        self.job_id = job_id
        self.params = dict(params or {})
        self.log_sink = log_sink or _ConsoleSink("log")
        self.response_sink = response_sink or _ConsoleSink("response")
        self.is_active = is_active or (lambda: True)
        # progress(fraction, message) and result(json_text): the runner's ControlWriter
        self.control_sink = control_sink or _ConsoleControls()


class _ConsoleSink:
    """Prints entries; what a worker writes to when run outside a job."""

    def __init__(self, kind):
        self.kind = kind

    def write(self, message):
        sys.__stdout__.write("[%s] %s\n" % (self.kind, message))


class _ConsoleControls:
    """Prints progress and results; what a worker reports to when run outside a job."""

    def progress(self, fraction, message):
        sys.__stdout__.write("[progress] %d%%%s\n" % (
            round(fraction * 100), " " + message if message else ""))

    def result(self, text):
        sys.__stdout__.write("[result] %s\n" % text)


def to_text(value):
    """A log or response value as text: str as is, bytes decoded, else JSON, else ``str()``."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        return str(value)


class Worker:
    """Base class of every worker. Override ``run()``; the docstring describes the worker."""

    def __init__(self, params=None, job_id=None):
        context = _job_context or JobContext(job_id=job_id, params=params)
        self._context = context
        self.job_id = context.job_id
        self.params = context.params

    def get_parameter(self, name, default=None):
        """The job parameter ``name``, or ``default`` when the job was not given it."""
        return self.params.get(name, default)

    def log(self, message):
        """Append one entry to the job's log (any value; see ``to_text``)."""
        # On the path of every entry: text (the usual case) goes straight to the sink.
        self._context.log_sink.write(message if type(message) is str else to_text(message))

    def response(self, message):
        """Append one entry to the job's response (any value; see ``to_text``)."""
        self._context.response_sink.write(to_text(message))

    def progress(self, done, total=None, message=None):
        """Tell how far the job is: ``done`` as a fraction from 0 to 1, or ``done`` of ``total``
        when given; ``message`` (text, cut to 500 characters) says what it is doing. Cheap to
        call often: the job writes at most about ten a second, and the last always. A value
        out of range or not a number is ignored with a warning entry in the log."""
        # The common case, checked in a few comparisons (a worker may call this per item): plain
        # numbers in range (NaN fails every comparison, so it takes the careful way).
        kind = type(done)
        if (kind is float or kind is int) and (message is None or (
                type(message) is str and len(message) <= controls.MAX_MESSAGE_CHARS)):
            if total is None:
                if 0 <= done <= 1:
                    self._context.control_sink.progress(done, message)
                    return
            elif (type(total) is int or type(total) is float) and 0 <= done <= total < _INF \
                    and total > 0:
                self._context.control_sink.progress(done / total, message)
                return
        try:
            fraction = controls.check_progress(done, total)
        except ValueError as e:
            self.log("WARNING: progress ignored: %s" % e)
            return
        self._context.control_sink.progress(fraction, controls.cut_message(message))

    def result(self, value):
        """Store ``value`` (any JSON value) as the job's result; the last call wins. Raises
        ``TypeError`` when it is not JSON-serializable. One over the server's cap
        (``--max-result-bytes``) is refused with an entry in the log, without raising."""
        self._context.control_sink.result(controls.result_text(value))

    def is_active(self):
        """False once a stop was requested: long loops should check it and return."""
        return self._context.is_active()

    def run(self):
        """The job's work. Subclasses must implement it."""
        raise NotImplementedError("%s must implement run()" % type(self).__name__)
