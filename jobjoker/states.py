"""The job state machine: the states and the moves between them, as data.

Contract: a job is ``idle`` when created, ``active`` while its process runs, ``paused`` while
its process is stopped (SIGSTOP: on request, or by a signal from outside that its parent saw),
then exactly one of ``stop`` (stopped or killed on request), ``error`` or ``done``. It goes
idle -> active -> final, with active <-> paused in between, and never back to idle or out of a
final state. ``RUNNING_STATES`` are those whose process exists (active and paused).
``jobjoker.jobstore.transition`` is the only code that writes a job's status, and it asks this
table which states a move may come from; a command narrows that to its own ``ACTIONS`` (a start
comes from idle only, a resume from paused only). Imports nothing of ours.
"""
import enum


class JobStatus(str, enum.Enum):
    """A job's status; the value is what the API shows."""

    IDLE = "idle"
    ACTIVE = "active"
    PAUSED = "paused"
    STOP = "stop"
    ERROR = "error"
    DONE = "done"

    def __str__(self):
        return self.value


# new status -> the statuses a job may be in to move there
RUNNING_STATES = frozenset({JobStatus.ACTIVE, JobStatus.PAUSED})
TRANSITIONS = {
    JobStatus.ACTIVE: frozenset({JobStatus.IDLE, JobStatus.PAUSED}),
    JobStatus.PAUSED: frozenset({JobStatus.ACTIVE}),
    JobStatus.STOP: RUNNING_STATES,
    JobStatus.ERROR: RUNNING_STATES,
    JobStatus.DONE: RUNNING_STATES,
}

FINAL_STATES = frozenset({JobStatus.STOP, JobStatus.ERROR, JobStatus.DONE})

# How each status reads in a sentence about a job ("job X was stopped"), and what moving to it is
# called ("only a job that is idle can start"): every message built from a status says it so.
DESCRIPTIONS = {
    JobStatus.IDLE: "is idle",
    JobStatus.ACTIVE: "is active",
    JobStatus.PAUSED: "is paused",
    JobStatus.STOP: "was stopped",
    JobStatus.ERROR: "ended with an error",
    JobStatus.DONE: "is done",
}
MOVES = {
    JobStatus.IDLE: "become idle again",
    JobStatus.ACTIVE: "start",
    JobStatus.PAUSED: "pause",
    JobStatus.STOP: "stop",
    JobStatus.ERROR: "end with an error",
    JobStatus.DONE: "finish",
}


def describe(status):
    """``status`` (a ``JobStatus`` or its value) as the rest of a sentence about a job:
    ``"job %s %s" % (job_id, describe(status))`` reads "job X was stopped"."""
    return DESCRIPTIONS[JobStatus(status)]


# What a client may ask for with PUT /jobs/ID/status; every other status is the server's to set.
COMMANDS = ("start", "stop", "kill", "pause", "resume")

# What a client may do to a job, by the status it is in: start moves an idle job to active,
# stop and kill a running one to stop, pause an active one to paused and resume a paused one
# back to active; delete takes any job whose process is not running. The admin page enables its
# buttons from a copy of this table (static/js/jobstates.js, checked against it by a test).
ACTIONS = {
    "start": frozenset({JobStatus.IDLE}),
    "stop": TRANSITIONS[JobStatus.STOP],
    "kill": TRANSITIONS[JobStatus.STOP],
    "pause": TRANSITIONS[JobStatus.PAUSED],
    "resume": frozenset({JobStatus.PAUSED}),
    "delete": frozenset(JobStatus) - RUNNING_STATES,
}


def allowed_sources(new_status):
    """The statuses from which a job may move to ``new_status`` (empty if none)."""
    return TRANSITIONS.get(JobStatus(new_status), frozenset())
