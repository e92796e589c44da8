"""The entry format shared by job processes, spool files and stored log chunks.

Contract: an entry is one line ``<epoch seconds with ms>\\t<message>\\n`` where the message has
``\\`` written as ``\\\\`` and a newline as ``\\n``, so a multi-line message stays one entry. A
block of entries is just their lines concatenated: the server stores blocks as they are, and only
a reader decodes them. Counting the entries of a block is counting its newlines.

A job's ``log.spool`` is shared by two writers, appending with O_APPEND: the job's entry writer,
which appends each block behind a header (``BLOCK_MARK`` + its length + newline) in one write, and
whatever the job's processes write raw to stdout/stderr. The file order is the write order, so
``print``, ``self.log`` and a child command's output keep their true order. ``parse_log_spool``
turns such bytes back into a block of entries: headed blocks as they are, raw lines stamped with
the time they were read; a raw line ending in CRLF is stored without its ``\\r`` (a bare ``\\r``
stays: it is a progress rewrite, which the page shows as a terminal would), and a raw line still
being rewritten with ``\\r`` is stored up to its last ``\\r`` at once, not when its newline comes.
``response.spool`` has only the entry writer and holds plain blocks.

Control records travel in ``log.spool`` too, so they keep their order with the log, resume
with its offsets after a restart and need no file of their own: ``CONTROL_MARK`` + the length +
newline, then one JSON object (``frame_control``; what it may hold is ``jobjoker.controls``'s).
``parse_log_spool`` hands each record's bytes to the caller (``controls``), unchecked: the job
wrote them, so the server validates them. A record longer than ``control_limit`` is skipped
unread, even when the job has not finished writing it (its length is known from the header),
and noted as ``(length, None)``.
``MAX_ENTRY_BYTES`` bounds an entry, whatever wrote it: a longer one is stored as several.
Imports nothing beyond the standard library (job processes load it).
"""
import json
import re
import time

_UNESCAPE = re.compile(r"\\(.)", re.DOTALL)
_UNESCAPES = {"n": "\n", "\\": "\\"}
MAX_ENTRY_BYTES = 64 * 1024  # a longer entry is split: a page or a message stays bounded


def stamp(when):
    """The time stamp that begins an entry line, with its tab: seconds with milliseconds."""
    return "%.3f\t" % when


def restamp(entry, old_entry):
    """``entry`` (one line, bytes) with the time stamp of ``old_entry``."""
    return old_entry.partition(b"\t")[0] + b"\t" + entry.partition(b"\t")[2]


def escape(message):
    """``message`` with backslashes and newlines escaped (cheap when there are none)."""
    if "\\" in message:
        message = message.replace("\\", "\\\\")
    if "\n" in message:
        message = message.replace("\n", "\\n")
    return message


def unescape(message):
    """The inverse of ``escape``."""
    if "\\" not in message:
        return message
    return _UNESCAPE.sub(lambda m: _UNESCAPES.get(m.group(1), m.group(1)), message)


def encode_entry(message, when=None):
    """One entry line, as bytes."""
    return (stamp(time.time() if when is None else when) + escape(message) + "\n").encode(
        "utf-8", "surrogateescape")


def frame_raw_lines(lines, when):
    """Entry lines for raw output lines (bytes without their newline), stamped ``when``."""
    prefix = stamp(when).encode()
    return b"".join(prefix + line.replace(b"\\", b"\\\\") + b"\n" for line in lines)


def complete_part(data):
    """The longest prefix of ``data`` that ends with a newline (b"" if none)."""
    end = data.rfind(b"\n")
    return data[:end + 1] if end >= 0 else b""


BLOCK_MARK = b"\x1e\x1fJJ"  # ASCII record/unit separators: never in text a program prints
CONTROL_MARK = b"\x1e\x1fJC"  # a control record (progress, result) in a log spool
_MARK = b"\x1e\x1fJ"  # what both marks begin with
_HEADER = re.compile(rb"\x1e\x1fJ([JC])(\d{1,9})\n")


def frame_block(block):
    """``block`` behind the header that marks it as entries in a shared log spool."""
    return BLOCK_MARK + b"%d\n" % len(block) + block


def frame_control(record):
    """``record`` (bytes: one JSON object) behind the header of a control record."""
    return CONTROL_MARK + b"%d\n" % len(record) + record


def parse_log_spool(data, final=False, when=None, masker=None, controls=None,
                    control_limit=None):
    """Entries in the bytes of a log spool: ``(bytes consumed, block of entries)``.

    Stops before an incomplete headed block or raw line (more is on its way) unless ``final``
    (the job has ended: take everything). ``masker`` (a ``parameters.Masker``), when given,
    masks the entries made of raw output (the headed blocks come from the runner, which masked
    them already); a raw line cut before its newline is cut where no secret straddles the cut
    (``Masker.safe_cut``), so each part masks whole. ``controls``, a list, gets each control
    record as ``(length, bytes)`` (without ``controls`` they are dropped); one longer than
    ``control_limit`` bytes as ``(length, None)``, skipped whole, so the bytes consumed may then
    pass the end of ``data``.
    """
    masker = masker if masker else None
    mask_raw = masker.block if masker is not None else None
    hold = masker.longest if masker is not None else 0
    when = time.time() if when is None else when
    pieces, raw = [], []
    pos, end = 0, len(data)
    while pos < end:
        if data.startswith(_MARK, pos):
            header = _HEADER.match(data, pos)
            if header is not None:
                length = int(header.group(2))
                stop = header.end() + length
                control = header.group(1) == b"C"
                skipped = control and control_limit is not None and length > control_limit
                if stop > end and not final and not skipped:
                    break  # the rest of this block is still being written
                if raw:
                    pieces.append(_raw_entries(raw, when, mask_raw))
                    raw = []
                if not control:
                    pieces.append(data[header.end():stop])
                elif controls is not None:
                    controls.append((length, None if skipped else data[header.end():stop]))
                pos = stop  # past the end: a record skipped unread (or torn, when final)
                continue
            if end - pos < len(BLOCK_MARK) + 11 and not final:
                break  # maybe a header cut short: wait for the rest
        newline = data.find(b"\n", pos)
        mark = data.find(_MARK, pos + 1, newline if newline >= 0 else end)
        if mark >= 0:  # a block was appended in the middle of a raw line: end the line there
            raw.append(data[pos:mark])
            pos = mark
        elif newline >= 0:
            # CRLF output (Windows tools, network protocols): the line without its \r
            raw.append(data[pos:newline - 1] if data[newline - 1:newline] == b"\r"
                       and newline > pos else data[pos:newline])
            pos = newline + 1
        elif final:
            raw.append(data[pos:])
            pos = end
        elif end - pos >= MAX_ENTRY_BYTES + hold:  # no newline for that long: a line anyway
            cut = end - hold if not hold else masker.safe_cut(data, end - hold)
            if data[cut - 1:cut] == b"\r":  # maybe a CRLF's first half: keep it with its \n
                cut -= 1
            if cut <= pos:
                break
            raw.append(data[pos:cut])
            pos = cut
        else:
            # A progress line that a child rewrites with \r and ends much later (curl, pip,
            # wget): what its last \r completed is stored now, ending in that \r, so the page
            # shows the progress live (it lets the next entry overwrite such a row); the rest
            # waits. At least a byte, and the longest secret, must follow the \r: a CRLF's
            # \r is not cut from its \n, and a secret is never cut in two.
            cut = data.rfind(b"\r", pos, end - max(hold, 1)) + 1
            if cut <= pos or (hold and masker.safe_cut(data, cut) != cut):
                break
            raw.append(data[pos:cut])
            pos = cut
    if raw:
        pieces.append(_raw_entries(raw, when, mask_raw))
    block = b"".join(pieces)
    if block and not block.endswith(b"\n"):  # a headed block torn by SIGKILL mid-write
        block += b"\n"
    return pos, block


def _raw_entries(lines, when, mask):
    block = frame_raw_lines(lines, when)
    return mask(block) if mask is not None else block


def decode_entries(block):
    """The entries of a block as ``{"message", "time"}`` dicts, in order."""
    entries = []
    for line in block.decode("utf-8", "replace").split("\n"):
        if not line:
            continue
        stamp, _, message = line.partition("\t")
        try:
            when = float(stamp)
        except ValueError:  # never written by us; keep the text rather than lose it
            when, message = None, line
        entries.append({"message": unescape(message), "time": when})
    return entries


_CONTROL = bytes(range(32))
_BAD_STAMP = re.compile(rb"\n(?!(?:0|[1-9][0-9]{0,15})\.[0-9]{1,9}\t)")
_BAD_ESCAPE = re.compile(rb"\\[^\\n]")


def entries_json(block):
    """The entries of ``block`` as a JSON array (UTF-8 bytes) of ``{"time", "message"}``.

    Our escapes (``\\\\`` and ``\\n``) are JSON's too, so a block of well-formed entries
    becomes JSON by a few byte replacements, with no Python object per entry: this is what
    lets a subscriber follow a job logging half a million entries a second. Any block that is
    not plainly well-formed (a tab or control character in a message, an odd stamp or escape,
    invalid UTF-8) takes the slow, exact way through ``decode_entries``.
    """
    lines = block.count(b"\n")
    if (lines and block.endswith(b"\n") and block.count(b"\t") == lines
            and len(block) - len(block.translate(None, _CONTROL)) == 2 * lines
            and _BAD_STAMP.search(b"\n" + block[:-1]) is None
            and (b"\\" not in block or _BAD_ESCAPE.search(block.replace(b"\\\\", b"")) is None)):
        try:
            block.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            body = (block[:-1].replace(b'"', b'\\"').replace(b"\t", b',"message":"')
                    .replace(b"\n", b'"},{"time":'))
            return b'[{"time":' + body + b'"}]'
    return json.dumps(decode_entries(block), ensure_ascii=False).encode("utf-8")


def skip_entries(block, count):
    """``block`` without its first ``count`` entries."""
    pos = 0
    for _ in range(count):
        pos = block.find(b"\n", pos) + 1
        if not pos:
            return b""
    return block[pos:]
