"""The rate-limited logger and the memory budget: small leaves, tested directly."""
import logging

from jobjoker.budget import MemoryBudget
from jobjoker.logthrottle import LogThrottle


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


def test_a_budget_refuses_past_its_limit_and_takes_again_once_given_back():
    budget = MemoryBudget(100)
    assert budget.take(60) and not budget.take(50) and budget.used == 60
    budget.give_back(60)
    assert budget.take(50) and budget.take(50) and not budget.take(1)
    budget.give_back(100)
    assert budget.take(500)  # alone, one holder larger than the limit still goes through
    assert not budget.take(1)
