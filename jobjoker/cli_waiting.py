"""What the command line says of jobs that wait: ``scheduled`` for their ``start_at``, ``queued``
behind a concurrency cap.

Contract: ``parse_at(text)`` turns ``run --at``'s value into a ``start_at`` for the API: ``+N``
(seconds from now, ``+90``, ``+5m``, ``+2h``) as epoch seconds, a number as epoch seconds, any
other text as given (an RFC 3339 time: the server is the one that checks it, and says what is
wrong). ``status_cell(job)`` is a job's status as the jobs list shows it (``queued #2``,
``scheduled 2026-12-24 18:00:00``); ``waiting_note(job)`` the line said on standard error about
a job that waits (None for one that does not); ``WaitNotes().see(job)`` the line to say as a
followed job's status changes: when it waits, and when it starts after waiting. Pure: no
requests.
"""
import argparse
import re
import time

from jobjoker.cli_output import format_time

_RELATIVE = re.compile(r"\+(\d+(?:\.\d+)?)([smhd]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_at(text):
    """``--at``: epoch seconds for ``+N[smhd]`` or a number, else the text as given."""
    relative = _RELATIVE.fullmatch(text.strip())
    if relative:
        return time.time() + float(relative.group(1)) * _UNITS[relative.group(2)]
    try:
        return float(text)
    except ValueError:
        if not text.strip():
            raise argparse.ArgumentTypeError("give a time: +SECONDS (+5m, +2h), epoch seconds "
                                             "or RFC 3339 like 2026-12-24T18:00:00Z")
        return text


parse_at.__name__ = "time"


def status_cell(job):
    if job["status"] == "queued" and job.get("queue_position"):
        return "queued #%d" % job["queue_position"]
    if job["status"] == "scheduled" and job.get("start_at") is not None:
        return "scheduled %s" % format_time(job["start_at"])
    return job["status"]


def waiting_note(job):
    if job["status"] == "queued":
        return ("job %s is queued%s: a concurrency cap is full; it starts when a slot frees"
                % (job["id"], " (place %d)" % job["queue_position"]
                   if job.get("queue_position") else ""))
    if job["status"] == "scheduled":
        return "job %s is scheduled to start at %s" % (job["id"], format_time(job["start_at"]))
    return None


class WaitNotes:
    """The lines a follower says of a job's waits, each once."""

    def __init__(self):
        self.last = None

    def see(self, job):
        status, waited = job["status"], self.last in ("scheduled", "queued")
        if status == self.last:
            return None
        self.last = status
        if status in ("scheduled", "queued"):
            return waiting_note(job)
        return "job %s started" % job["id"] if waited and status == "active" else None
