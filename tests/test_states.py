"""The job state machine, as data."""
import itertools

from jobjoker.states import (ACTIONS, COMMANDS, FINAL_STATES, RUNNING_STATES, JobStatus,
                             allowed_sources)


def test_the_moves_are_exactly_idle_active_final_with_paused_beside_active():
    allowed = {(a, b) for a, b in itertools.product(JobStatus, JobStatus)
               if a in allowed_sources(b)}
    assert allowed == {
        (JobStatus.IDLE, JobStatus.ACTIVE),
        (JobStatus.ACTIVE, JobStatus.PAUSED),
        (JobStatus.PAUSED, JobStatus.ACTIVE),
        *((running, final) for running in RUNNING_STATES for final in FINAL_STATES),
    }


def test_commands_narrow_the_moves():
    # A start comes from idle only, a resume from paused only: neither may start a paused job
    # again or resume an idle one, though both make a job active.
    assert ACTIONS["start"] == {JobStatus.IDLE}
    assert ACTIONS["resume"] == {JobStatus.PAUSED}
    assert ACTIONS["pause"] == {JobStatus.ACTIVE}
    assert ACTIONS["stop"] == ACTIONS["kill"] == RUNNING_STATES


def test_nothing_goes_back_to_idle_and_final_states_are_final():
    assert allowed_sources(JobStatus.IDLE) == frozenset()
    for final in FINAL_STATES:
        assert not any(final in allowed_sources(other) for other in JobStatus)


def test_values_are_the_api_words():
    assert [s.value for s in JobStatus] == ["idle", "active", "paused", "stop", "error", "done"]
    assert str(JobStatus.DONE) == "done"
    assert COMMANDS == ("start", "stop", "kill", "pause", "resume")
