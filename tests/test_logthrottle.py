"""The rate-limited logger, the failure log and the memory budget: small leaves, tested
directly."""
import logging

from jobjoker.budget import MemoryBudget
from jobjoker.logthrottle import FailureLog, LogThrottle


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_a_repeated_message_is_logged_once_per_interval_with_a_count(caplog):
    clock = Clock()
    throttle = LogThrottle(logging.getLogger("test.throttle"), interval=60, clock=clock)
    with caplog.at_level(logging.INFO, logger="test.throttle"):
        for _ in range(7400):  # a second of the accept loop's tracebacks, as reported
            throttle.log("accept", logging.ERROR, "cannot accept: %s", "Too many open files")
        throttle.log("other", logging.WARNING, "another kind")
        clock.now += 61
        throttle.log("accept", logging.ERROR, "cannot accept: %s", "Too many open files")
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["cannot accept: Too many open files", "another kind",
                        "cannot accept: Too many open files (and 7399 more like it in the "
                        "last 61 s)"]


def test_a_failure_is_logged_when_it_begins_and_when_it_is_over_with_the_count(caplog):
    failures = FailureLog(logging.getLogger("test.failures"))
    with caplog.at_level(logging.INFO, logger="test.failures"):
        for attempt in range(500):
            for job in ("a", "b"):
                failures.failed("storing (OperationalError)", job, "job %s: storing failed", job)
        failures.failed("recording its end (OSError)", "a", "job a: recording failed")
        failures.over("a")  # b still fails so: not over yet
        failures.failed("storing (OperationalError)", "a", "job a: storing failed")
        failures.over("a")
        failures.over("b")
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("ERROR", "job a: storing failed"),
        ("ERROR", "job a: recording failed"),
        ("WARNING", "recording its end (OSError) works again (0 more failures since it was "
                    "logged)"),
        ("WARNING", "storing (OperationalError) works again (1000 more failures since it was "
                    "logged)")]


def test_a_budget_refuses_past_its_limit_and_takes_again_once_given_back():
    budget = MemoryBudget(100)
    assert budget.take(60) and not budget.take(50) and budget.used == 60
    budget.give_back(60)
    assert budget.take(50) and budget.take(50) and not budget.take(1)
    budget.give_back(100)
    assert budget.take(500)  # alone, one holder larger than the limit still goes through
    assert not budget.take(1)
