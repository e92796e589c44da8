"""The job state machine: the states and the moves between them, as data.

Contract: a job is ``idle`` when created, ``active`` while its process runs, then exactly one of
``stop`` (stopped or killed on request), ``error`` or ``done``. It goes idle -> active -> final and
never back. ``jobjoker.jobstore.transition`` is the only code that writes a job's status, and it
asks this table which states a move may come from. Imports nothing of ours.
"""
import enum


class JobStatus(str, enum.Enum):
    """A job's status; the value is what the API shows."""

    IDLE = "idle"
    ACTIVE = "active"
    STOP = "stop"
    ERROR = "error"
    DONE = "done"

    def __str__(self):
        return self.value


# new status -> the statuses a job may be in to move there
TRANSITIONS = {
    JobStatus.ACTIVE: frozenset({JobStatus.IDLE}),
    JobStatus.STOP: frozenset({JobStatus.ACTIVE}),
    JobStatus.ERROR: frozenset({JobStatus.ACTIVE}),
    JobStatus.DONE: frozenset({JobStatus.ACTIVE}),
}

FINAL_STATES = frozenset({JobStatus.STOP, JobStatus.ERROR, JobStatus.DONE})

# How each status reads in a sentence about a job ("job X was stopped"), and what moving to it is
# called ("only a job that is idle can start"): every message built from a status says it so.
DESCRIPTIONS = {
    JobStatus.IDLE: "is idle",
    JobStatus.ACTIVE: "is active",
    JobStatus.STOP: "was stopped",
    JobStatus.ERROR: "ended with an error",
    JobStatus.DONE: "is done",
}
MOVES = {
    JobStatus.IDLE: "become idle again",
    JobStatus.ACTIVE: "start",
    JobStatus.STOP: "stop",
    JobStatus.ERROR: "end with an error",
    JobStatus.DONE: "finish",
}


def describe(status):
    """``status`` (a ``JobStatus`` or its value) as the rest of a sentence about a job:
    ``"job %s %s" % (job_id, describe(status))`` reads "job X was stopped"."""
    return DESCRIPTIONS[JobStatus(status)]


# What a client may ask for with PUT /jobs/ID/status; every other status is the server's to set.
COMMANDS = ("start", "stop", "kill")

# What a client may do to a job, by the status it is in: start moves it to active, stop and kill
# to stop, and delete takes any job whose process is not running. The admin page enables its
# buttons from a copy of this table (static/js/jobstates.js, checked against it by a test).
ACTIONS = {
    "start": TRANSITIONS[JobStatus.ACTIVE],
    "stop": TRANSITIONS[JobStatus.STOP],
    "kill": TRANSITIONS[JobStatus.STOP],
    "delete": frozenset(JobStatus) - {JobStatus.ACTIVE},
}


def allowed_sources(new_status):
    """The statuses from which a job may move to ``new_status`` (empty if none)."""
    return TRANSITIONS.get(JobStatus(new_status), frozenset())
