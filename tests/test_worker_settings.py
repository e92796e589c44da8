"""What a worker class may declare for its jobs, read without running it (worker_settings)."""
import pytest

from jobjoker import workers, worker_settings
from jobjoker.errors import ValidationError

CODE = "from jobjoker import Worker\nclass W(Worker):\n%s\n    def run(self): pass\n"


def settings_of(body):
    return workers.inspect_worker("W", CODE % body)[2]


def test_each_setting_is_read_from_literals():
    assert settings_of("    max_active = 2\n    retries = 3\n    retry_delay = 2 * 5\n"
                       "    retry_backoff = 1.5\n    retry_on_timeout = True") == {
        "max_active": 2, "retries": 3, "retry_delay": 10.0, "retry_backoff": 1.5,
        "retry_on_timeout": True}
    assert settings_of("    retries = None\n    retry_delay = 0") == {"retry_delay": 0.0}


@pytest.mark.parametrize("line, name", [
    ("max_active = 0", "max_active"), ("max_active = 2.5", "max_active"),
    ("max_active = True", "max_active"), ("retries = -1", "retries"),
    ("retries = %d" % (worker_settings.MAX_RETRIES + 1), "retries"),
    ("retry_delay = -1", "retry_delay"), ("retry_backoff = 0.5", "retry_backoff"),
    ("retry_on_timeout = 1", "retry_on_timeout"), ("retries = RETRIES", "retries"),
    ("retry_delay = 'soon'", "retry_delay")])
def test_a_bad_setting_is_an_error_of_the_workers_code(line, name):
    with pytest.raises(ValidationError, match="line 3: %s must be " % name):
        settings_of("    " + line)


def test_a_value_from_json_is_checked_by_the_same_rule():
    assert worker_settings.check("retries", 3) == 3
    assert worker_settings.check("retries", 3.0) == 3
    assert worker_settings.check("retries", None) is None
    for name, bad in (("retries", True), ("retries", "3"), ("max_active", 0),
                      ("retry_backoff", float("nan")), ("retry_on_timeout", "yes")):
        with pytest.raises(ValueError, match="must be|whole number|number|True or False"):
            worker_settings.check(name, bad)
