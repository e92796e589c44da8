"""Searching a job's log or response for a plain substring, in steps that never hold anything long.

Contract: ``search_entries(storage, logstore, job_id, stream, text, ignore_case, offset, limit,
max_bytes, seconds)`` (a coroutine) returns ``(matches, total, following)``: the entries from
``offset`` on whose message holds ``text`` (each with its ``seq``, oldest first), the stream's
entry count, and the ``offset`` to search on from when the scan stopped before the stream's end
(else None). It stops at ``limit`` matches, at about ``max_bytes`` of them (``entry_size``), or
once ``seconds`` have passed (``--search-seconds``; 0: one step), whichever comes first, so that
a 10-million-entry log never holds a request: the client reads on from ``following``.

The scan reads the stored chunks in steps of about ``STEP_BYTES`` (``LogStore.read_blocks``),
each step one ``storage.read`` on a reader thread, so that the decoding and matching never run
on the IOLoop and no reader is held for more than a step. Matching is done here, in Python,
not in SQL: a plain substring must match literally, and SQLite, MariaDB and PostgreSQL differ in
how ``LIKE`` escapes ``%``, ``_`` and ``\\``, in what their case-insensitive collations fold, and
the chunks hold escaped entries (``jobjoker.spool``), not messages. A step first looks for the
text, escaped as stored, in a whole chunk (one scan in C); only a chunk that holds it is decoded
entry by entry, and each message is checked exactly. ``ignore_case`` compares Unicode case-folded
text (``str.casefold``: ``Straße`` finds ``STRASSE``), the same on every database.
"""
import time

from jobjoker import jobstore, spool
from jobjoker.errors import BadRequest
from jobjoker.logstore import entry_size

STEP_BYTES = 1024 * 1024  # stored entries read and matched per step (one reader-thread task)
MAX_SEARCH_CHARS = 1000  # the longest text a search takes
TRUE_WORDS, FALSE_WORDS = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


def parse_search(text, ignore_case):
    """The search text and the ``ignore_case`` flag from a request's query strings, checked."""
    if len(text) > MAX_SEARCH_CHARS:
        raise BadRequest("search may be at most %d characters (got %d)"
                         % (MAX_SEARCH_CHARS, len(text)))
    return text, parse_ignore_case(ignore_case)


def parse_ignore_case(value):
    """The ``ignore_case`` query string as a bool (None or empty: False), checked even without
    a search, so that a wrong value says so rather than being ignored."""
    word = (value or "").strip().lower()
    if word not in TRUE_WORDS + FALSE_WORDS:
        raise BadRequest("ignore_case must be 1 or 0 (true or false), not %r" % value)
    return word in TRUE_WORDS


class Needle:
    """What a search looks for: in a message, and in a stored block as a quick first test."""

    def __init__(self, text, ignore_case):
        self.ignore_case = ignore_case
        self.text = text.casefold() if ignore_case else text
        # Case folding maps no character to a backslash or a newline, so the escaped, folded
        # text is found in the folded block whenever a message holds it (the other way round
        # need not hold: each message is checked).
        self.stored = spool.escape(self.text)

    def in_block(self, block):
        text = block.decode("utf-8", "replace")
        return self.stored in (text.casefold() if self.ignore_case else text)

    def matches(self, message):
        return self.text in (message.casefold() if self.ignore_case else message)


def search_step(logstore, job_id, stream, needle, offset, limit, max_bytes):
    """Reader thread: one step of a search from ``offset``: ``(matches, their size, next
    offset)``, the next offset None when the stream has nothing from ``offset`` on."""
    blocks = logstore.read_blocks(job_id, stream, offset, STEP_BYTES)
    if not blocks:
        return [], 0, None
    matches, size = [], 0
    for first, block, _ in blocks:
        if not needle.in_block(block):
            continue
        for index, entry in enumerate(spool.decode_entries(block)):
            if needle.matches(entry["message"]):
                entry["seq"] = first + index
                matches.append(entry)
                size += entry_size(entry)
                if len(matches) >= limit or size >= max_bytes:
                    return matches, size, first + index + 1
    first, _, count = blocks[-1]
    return matches, size, first + count


async def search_entries(storage, logstore, job_id, stream, text, ignore_case, offset, limit,
                         max_bytes, seconds):
    """The matches from ``offset`` on, the stream's total, and where to search on (see the
    module's contract)."""
    deadline = time.monotonic() + seconds
    job = await storage.read(jobstore.get, job_id)
    total = job.log_count if stream == "log" else job.response_count
    needle = Needle(text, ignore_case)
    matches, size = [], 0
    while offset < total and len(matches) < limit:
        found, found_size, following = await storage.read(
            search_step, logstore, job_id, stream, needle, offset, limit - len(matches),
            max_bytes - size)
        matches += found
        size += found_size
        if following is None:
            return matches, total, None
        offset = following
        if size >= max_bytes or time.monotonic() >= deadline:
            break
    return matches, total, offset if offset < total else None
