"""The job state machine, as data."""
import itertools

from jobjoker.states import COMMANDS, FINAL_STATES, JobStatus, allowed_sources


def test_the_moves_are_exactly_idle_active_final():
    allowed = {(a, b) for a, b in itertools.product(JobStatus, JobStatus)
               if a in allowed_sources(b)}
    assert allowed == {
        (JobStatus.IDLE, JobStatus.ACTIVE),
        (JobStatus.ACTIVE, JobStatus.STOP),
        (JobStatus.ACTIVE, JobStatus.ERROR),
        (JobStatus.ACTIVE, JobStatus.DONE),
    }


def test_nothing_goes_back_to_idle_and_final_states_are_final():
    assert allowed_sources(JobStatus.IDLE) == frozenset()
    for final in FINAL_STATES:
        assert not any(final in allowed_sources(other) for other in JobStatus)


def test_values_are_the_api_words():
    assert [s.value for s in JobStatus] == ["idle", "active", "stop", "error", "done"]
    assert str(JobStatus.DONE) == "done"
    assert COMMANDS == ("start", "stop", "kill")
