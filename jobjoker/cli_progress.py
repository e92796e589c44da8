"""How ``jobjoker run --follow`` and ``jobjoker logs -f`` show a job's progress, and what
``jobjoker run --wait`` prints.

Contract: ``ProgressDisplay(stream)`` shows progress events on ``stream`` (standard error, so
that standard output stays the log). On a terminal it is one line redrawn in place: a bar, the
percentage, the time left (``eta``: from the job's start and its progress; ``—`` while unknown)
and the message, cut to the terminal's width; ``clear()`` takes it away before a log line is
printed and ``redraw()`` brings it back after, and ``close()`` leaves the terminal on a clean
line. Anywhere else (a pipe, a file, CI) each change of the whole percentage or of the message
is a plain line ``progress 42% message``. ``print_result(job)`` prints a job's result as JSON
on standard output (nothing when it has none). Standard library only.
"""
import json
import shutil
import time

BAR_WIDTH = 20


def eta(starttime, progress, now=None):
    """The time left, as ``1:02:03`` or ``4:05``, from the start and the fraction done; ``—``
    when it cannot be told (not started, no progress yet, or already complete)."""
    if starttime is None or not progress or progress >= 1:
        return "—"
    now = time.time() if now is None else now
    left = max((now - starttime) * (1 - progress) / progress, 0)
    minutes, seconds = divmod(int(round(left)), 60)
    hours, minutes = divmod(minutes, 60)
    return "%d:%02d:%02d" % (hours, minutes, seconds) if hours else "%d:%02d" % (minutes,
                                                                                   seconds)


class ProgressDisplay:
    """A job's progress on standard error: a redrawn bar on a terminal, else plain lines."""

    def __init__(self, stream):
        self.stream = stream
        self.tty = stream.isatty()
        self.starttime = None
        self.line = ""  # what the terminal shows now
        self._last_plain = None

    def status(self, job):
        """A copy of the job (a ``status`` event): its start time, and a progress it carries."""
        self.starttime = job.get("starttime") or self.starttime
        if job.get("progress") is not None:  # the last progress, even if no event told it
            self.show(job["progress"], job.get("progress_message"))

    def show(self, progress, message):
        percent = int(progress * 100)
        if not self.tty:
            if (percent, message) != self._last_plain:
                self._last_plain = (percent, message)
                self.stream.write("progress %d%%%s\n" % (percent, " " + message if message
                                                         else ""))
                self.stream.flush()
            return
        filled = int(round(progress * BAR_WIDTH))
        text = "[%s%s] %3d%% left %s%s" % ("#" * filled, "-" * (BAR_WIDTH - filled), percent,
                                         eta(self.starttime, progress),
                                         " " + message.replace("\n", " ") if message else "")
        width = shutil.get_terminal_size((80, 24)).columns - 1
        self.line = text[:width]
        self.redraw()

    def clear(self):
        """Before a log line: take the bar away (a terminal only)."""
        if self.tty and self.line:
            self.stream.write("\r\x1b[K")
            self.stream.flush()

    def redraw(self):
        """After a log line: show the bar again."""
        if self.tty and self.line:
            self.stream.write("\r\x1b[K" + self.line)
            self.stream.flush()

    def close(self):
        """The job ended: leave the bar's last state on a line of its own."""
        if self.tty and self.line:
            self.stream.write("\n")
            self.stream.flush()
            self.line = ""


def print_result(job):
    """The job's result as JSON on standard output, alone (nothing when it has none)."""
    if job.get("result_size") is not None:
        print(json.dumps(job.get("result"), ensure_ascii=False))
