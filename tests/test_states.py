"""The job state machine, as data."""
import itertools

from jobjoker.states import (ACTIONS, COMMANDS, FINAL_STATES, RUNNING_STATES, WAITING_STATES,
                             JobStatus, allowed_sources)


def test_the_moves_are_exactly_idle_waiting_active_final_with_paused_beside_active():
    allowed = {(a, b) for a, b in itertools.product(JobStatus, JobStatus)
               if a in allowed_sources(b)}
    assert allowed == {
        (JobStatus.IDLE, JobStatus.SCHEDULED),
        (JobStatus.IDLE, JobStatus.QUEUED),
        (JobStatus.SCHEDULED, JobStatus.QUEUED),
        (JobStatus.IDLE, JobStatus.ACTIVE),
        (JobStatus.SCHEDULED, JobStatus.ACTIVE),
        (JobStatus.QUEUED, JobStatus.ACTIVE),
        (JobStatus.ACTIVE, JobStatus.PAUSED),
        (JobStatus.PAUSED, JobStatus.ACTIVE),
        *((running, final) for running in RUNNING_STATES for final in FINAL_STATES),
        # a waiting job is cancelled (stop) or cannot start at its time (error); it never ran,
        # so it is never done
        *((waiting, final) for waiting in WAITING_STATES
          for final in (JobStatus.STOP, JobStatus.ERROR)),
    }


def test_commands_narrow_the_moves():
    # A start comes from idle (or scheduled: start it now) only, a resume from paused only:
    # neither may start a paused job again or resume an idle one, though both make a job
    # active; a queued job is started by the server when a slot frees, never by a command.
    assert ACTIONS["start"] == {JobStatus.IDLE, JobStatus.SCHEDULED}
    assert ACTIONS["resume"] == {JobStatus.PAUSED}
    assert ACTIONS["pause"] == {JobStatus.ACTIVE}
    assert ACTIONS["stop"] == ACTIONS["kill"] == RUNNING_STATES | WAITING_STATES


def test_nothing_goes_back_to_idle_and_final_states_are_final():
    assert allowed_sources(JobStatus.IDLE) == frozenset()
    for final in FINAL_STATES:
        assert not any(final in allowed_sources(other) for other in JobStatus)


def test_values_are_the_api_words():
    assert [s.value for s in JobStatus] == ["idle", "scheduled", "queued", "active", "paused",
                                            "stop", "error", "done"]
    assert str(JobStatus.DONE) == "done"
    assert COMMANDS == ("start", "stop", "kill", "pause", "resume")
