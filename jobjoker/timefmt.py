"""How JobJoker writes a moment for people and machines alike: RFC 3339 in UTC.

Contract: ``rfc3339(epoch, timespec="seconds")`` is ``2026-12-24T18:00:00Z`` (or, with
``timespec="milliseconds"``, ``2026-12-24T18:00:00.000Z``): the one form of a time in messages,
audit entries and JSON log records. Imports nothing of ours.
"""
import datetime


def rfc3339(epoch, timespec="seconds"):
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).isoformat(
        timespec=timespec).replace("+00:00", "Z")
