"""Pages of lists: how big they are by default and at most, in one place.

Contract: ``parse_page(offset, limit, kind, config)`` turns a request's ``offset`` and ``limit``
(query strings, or None) into numbers, or raises ``BadRequest`` saying what to fix. ``kind`` is
``jobs``, ``entries`` (a log or a response) or ``audit``: each has its default size here and its
largest size as a setting (``--max-page``, ``--max-entry-page``), so ``largest(kind, config)``
is what the server allows and what its OpenAPI document states (``config`` may be the ``Config``
class itself for the defaults). Offsets stop at ``MAX_OFFSET``.
"""
from jobjoker.errors import BadRequest

# Past the databases' integers (2**63 - 1, with the limit added) a query fails; 2**53 is also
# the largest whole number a JSON client can be sure to hold.
MAX_OFFSET = 2 ** 53
DEFAULT_SIZES = {"jobs": 50, "entries": 1000, "audit": 100}
LARGEST = {"jobs": "max_page", "entries": "max_entry_page", "audit": "max_page"}


def largest(kind, config):
    """The largest page of ``kind`` that ``config`` allows."""
    return getattr(config, LARGEST[kind])


def parse_page(offset, limit, kind, config):
    """Validated ``(offset, limit)`` from a request's query strings."""
    try:
        offset = int(offset) if offset not in (None, "") else 0
        limit = int(limit) if limit not in (None, "") else DEFAULT_SIZES[kind]
    except ValueError:
        raise BadRequest("offset and limit must be whole numbers")
    if offset < 0 or limit < 0:
        raise BadRequest("offset and limit must not be negative")
    if limit > largest(kind, config):
        raise BadRequest("limit may be at most %d" % largest(kind, config))
    if offset > MAX_OFFSET:
        raise BadRequest("offset may be at most %d" % MAX_OFFSET)
    return offset, limit


def page_bytes(config):
    """About the most bytes of messages in one page of entries."""
    return config.max_page_bytes
