"""The job state machine: the states and the moves between them, as data.

Contract: a job is ``idle`` when created, ``scheduled`` while it waits for its start time
(``start_at``, a retry's delay), ``queued`` while it waits for a free slot under a concurrency
cap, ``active`` while its process runs, ``paused`` while its process is stopped (SIGSTOP: on
request, or by a signal from outside that its parent saw), then exactly one of ``stop``
(stopped or killed on request, or cancelled while it waited), ``error`` or ``done``. It goes
idle [-> scheduled] [-> queued] -> active -> final, with active <-> paused in between, and never
back to idle or out of a final state. ``RUNNING_STATES`` are those whose process exists (active
and paused; a paused job keeps its slot under a cap), ``WAITING_STATES`` those that will start
by themselves (scheduled and queued).
``jobjoker.jobstore.transition`` is the only code that writes a job's status, and it asks this
table which states a move may come from; a command narrows that to its own ``ACTIONS`` (a start
comes from idle only, a resume from paused only). Imports nothing of ours.
"""
import enum


class JobStatus(str, enum.Enum):
    """A job's status; the value is what the API shows."""

    IDLE = "idle"
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    ACTIVE = "active"
    PAUSED = "paused"
    STOP = "stop"
    ERROR = "error"
    DONE = "done"

    def __str__(self):
        return self.value


# new status -> the statuses a job may be in to move there
RUNNING_STATES = frozenset({JobStatus.ACTIVE, JobStatus.PAUSED})
WAITING_STATES = frozenset({JobStatus.SCHEDULED, JobStatus.QUEUED})
TRANSITIONS = {
    JobStatus.SCHEDULED: frozenset({JobStatus.IDLE}),
    JobStatus.QUEUED: frozenset({JobStatus.IDLE, JobStatus.SCHEDULED}),
    JobStatus.ACTIVE: frozenset({JobStatus.IDLE, JobStatus.PAUSED}) | WAITING_STATES,
    JobStatus.PAUSED: frozenset({JobStatus.ACTIVE}),
    # a waiting job is cancelled (stop), or ends error when it cannot start at its time
    JobStatus.STOP: RUNNING_STATES | WAITING_STATES,
    JobStatus.ERROR: RUNNING_STATES | WAITING_STATES,
    JobStatus.DONE: RUNNING_STATES,
}

FINAL_STATES = frozenset({JobStatus.STOP, JobStatus.ERROR, JobStatus.DONE})

# How each status reads in a sentence about a job ("job X was stopped"), and what moving to it is
# called ("only a job that is idle can start"): every message built from a status says it so.
DESCRIPTIONS = {
    JobStatus.IDLE: "is idle",
    JobStatus.SCHEDULED: "is scheduled",
    JobStatus.QUEUED: "is queued",
    JobStatus.ACTIVE: "is active",
    JobStatus.PAUSED: "is paused",
    JobStatus.STOP: "was stopped",
    JobStatus.ERROR: "ended with an error",
    JobStatus.DONE: "is done",
}
MOVES = {
    JobStatus.IDLE: "become idle again",
    JobStatus.SCHEDULED: "be scheduled",
    JobStatus.QUEUED: "join the queue",
    JobStatus.ACTIVE: "start",
    JobStatus.PAUSED: "pause",
    JobStatus.STOP: "stop",
    JobStatus.ERROR: "end with an error",
    JobStatus.DONE: "finish",
}


# Why a job ended, for machines (its ``reason``, beside its ``error`` for people): value ->
# what it means. Every move to a final status sets one.
REASONS = {
    "completed": "run() returned (status done)",
    "exit": "its process exited with a nonzero code, without an exception",
    "exception": "run() raised an exception",
    "signal": "a signal from outside JobJoker ended it: status error when it killed the process "
              "(the OOM killer's SIGKILL), stop when the worker honoured a SIGTERM (kill PID)",
    "timeout": "its time limit ran out",
    "stopped": "stopped or killed through JobJoker",
    "cancelled": "stopped or deleted while it waited (scheduled or queued)",
    "start_failed": "it could not start (its worker gone, a fork refused)",
    "lost": "its process vanished where nothing could see how it ended",
}


def describe(status):
    """``status`` (a ``JobStatus`` or its value) as the rest of a sentence about a job:
    ``"job %s %s" % (job_id, describe(status))`` reads "job X was stopped"."""
    return DESCRIPTIONS[JobStatus(status)]


# What a client may ask for with PUT /jobs/ID/status; every other status is the server's to set.
COMMANDS = ("start", "stop", "kill", "pause", "resume")

# What a client may do to a job, by the status it is in: start moves an idle job to active (or
# queued, beyond a cap) and starts a scheduled one now, stop and kill a running one to stop and
# cancel a waiting one, pause an active one to paused and resume a paused one back to active;
# delete takes any job whose process is not running. The admin page enables its
# buttons from a copy of this table (static/js/jobstates.js, checked against it by a test).
ACTIONS = {
    "start": frozenset({JobStatus.IDLE, JobStatus.SCHEDULED}),
    "stop": TRANSITIONS[JobStatus.STOP],
    "kill": TRANSITIONS[JobStatus.STOP],
    "pause": TRANSITIONS[JobStatus.PAUSED],
    "resume": frozenset({JobStatus.PAUSED}),
    "delete": frozenset(JobStatus) - RUNNING_STATES,
}


def allowed_sources(new_status):
    """The statuses from which a job may move to ``new_status`` (empty if none)."""
    return TRANSITIONS.get(JobStatus(new_status), frozenset())
