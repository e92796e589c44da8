"""What a schedule is made of, checked, and when it runs.

Contract: ``check_fields(body, partial)`` checks the fields of a ``POST /schedules`` body (or,
with ``partial``, of a ``PUT``/``PATCH``: only those given) and returns them cleaned; every
problem is a ``BadRequest`` whose ``field`` names the field and whose message starts with it
(``cron: ...`` carries croniter's own reason). ``run_times(cron, timezone, after, count)`` is
the next ``count`` times (epoch seconds) after ``after``; ``next_run`` the first of them.

Times: the expression is read by croniter (five standard fields, the ``@hourly``, ``@daily``,
``@weekly``, ``@monthly``, ``@yearly``/``@annually`` and ``@midnight`` names, and, as an
extension, a sixth field of seconds), in the local time of the IANA zone (``zoneinfo``).
Daylight saving is handled as croniter with zoneinfo does it: a local time that does not exist
(the hour skipped in spring) runs at the first time after the gap (02:30 on that day runs at
03:00), and a local time that happens twice (the hour repeated in autumn) runs twice, once in
each offset. Every time is stored and shown as epoch seconds, so it names one instant.
Pure: no storage, no I/O.
"""
import datetime
import json
import time
import zoneinfo

from croniter import CroniterBadCronError, CroniterBadDateError, CroniterError, croniter

from jobjoker.errors import BadRequest
from jobjoker.jobspec import check_timeout
from jobjoker.timefmt import rfc3339

SCHEDULE_KEYS = ("name", "worker", "parameters", "timeout", "cron", "timezone", "missed",
                 "overlap")
MISSED_POLICIES = ("skip", "run_once")
OVERLAP_POLICIES = ("skip", "queue", "allow")
DEFAULTS = {"timezone": "UTC", "missed": "skip", "overlap": "skip", "name": None,
            "parameters": None, "timeout": None}
MAX_NAME = 100  # characters (models.Schedule.name)
MAX_CRON = 255  # characters (models.Schedule.cron)
NEXT_SHOWN = 5  # run times a schedule's reply shows


def problem(field, message):
    """A ``BadRequest`` about ``field``, its message starting with the field's name."""
    error = BadRequest("%s: %s" % (field, message))
    error.field = field
    return error


def check_fields(body, partial=False):
    """The schedule fields of ``body``, checked (with defaults unless ``partial``)."""
    if not isinstance(body, dict):
        raise BadRequest('the body must be a JSON object like {"worker": "Name", '
                         '"cron": "0 3 * * *", "timezone": "Europe/Berlin"}')
    fields = {} if partial else dict(DEFAULTS)
    fields.update({key: value for key, value in body.items() if key in SCHEDULE_KEYS})
    for required in ("worker", "cron"):
        if not partial and fields.get(required) is None:
            raise problem(required, "missing: a schedule needs a worker and a cron expression")
    checks = {"name": _check_name, "worker": _check_worker, "cron": check_cron,
              "timezone": check_timezone, "missed": _policy(MISSED_POLICIES),
              "overlap": _policy(OVERLAP_POLICIES), "parameters": _check_parameters,
              "timeout": _check_timeout}
    for key in list(fields):
        fields[key] = checks[key](key, fields[key])
    if "cron" in fields and "timezone" in fields:
        check_matches(fields["cron"], fields["timezone"])
    return fields


def _check_name(field, value):
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > MAX_NAME:
        raise problem(field, "must be text of at most %d characters (or null)" % MAX_NAME)
    return value


def _check_worker(field, value):
    if not isinstance(value, str) or not value:
        raise problem(field, "must be the name of a worker")
    return value


def _check_parameters(field, value):
    if value is not None and not isinstance(value, dict):
        raise problem(field, "must be a JSON object or null")
    return value


def _check_timeout(field, value):
    try:
        return check_timeout(value)
    except BadRequest as e:
        raise problem(field, e.message)


def _policy(choices):
    def check(field, value):
        if value not in choices:
            raise problem(field, "must be one of %s, not %s"
                          % (", ".join(choices), json.dumps(value)[:40]))
        return value
    return check


def check_cron(field, value):
    """A cron expression croniter parses, of 5 fields (6 with seconds last) or an @name."""
    if not isinstance(value, str) or not value.strip():
        raise problem(field, 'must be a cron expression like "0 3 * * *" or "@daily"')
    value = " ".join(value.split())
    if len(value) > MAX_CRON:
        raise problem(field, "is %d characters; at most %d" % (len(value), MAX_CRON))
    if not value.startswith("@") and len(value.split()) not in (5, 6):
        raise problem(field, "%r has %d fields; give five (minute hour day month weekday), or "
                             "six with seconds last" % (value, len(value.split())))
    try:
        croniter(value)
    except (CroniterBadCronError, CroniterError, ValueError, KeyError) as e:
        raise problem(field, "%r does not parse: %s" % (value, e))
    return value


def check_timezone(field, value):
    """An IANA time zone name zoneinfo knows (``Europe/Berlin``, ``UTC``)."""
    if not isinstance(value, str) or not value:
        raise problem(field, 'must be an IANA time zone name like "Europe/Berlin" or "UTC"')
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise problem(field, "unknown time zone %r; use an IANA name like \"Europe/Berlin\" "
                             "or \"UTC\"" % value[:64])
    return value


def check_matches(cron, timezone):
    """``BadRequest`` (cron) when the expression never matches a date."""
    try:
        next_run(cron, timezone)
    except CroniterBadDateError:
        raise problem("cron", "%r never matches a date (such as the 30th of February)" % cron)


def run_times(cron, timezone, after, count=NEXT_SHOWN):
    """The next ``count`` run times (epoch seconds) strictly after ``after`` (epoch seconds)."""
    start = datetime.datetime.fromtimestamp(after, zoneinfo.ZoneInfo(timezone))
    times = croniter(cron, start)
    return [times.get_next(float) for _ in range(count)]


def next_run(cron, timezone, after=None):
    """The first run time after ``after`` (default: now)."""
    return run_times(cron, timezone, time.time() if after is None else after, 1)[0]


def iso_time(epoch):
    """An epoch time as the messages and audit entries of schedules write it (UTC, to the
    millisecond: a seconds field may fire within a second)."""
    return rfc3339(epoch, "milliseconds")
