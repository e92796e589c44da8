"""The entry format shared by job processes, spool files and stored log chunks.

Contract: an entry is one line ``<epoch seconds with ms>\\t<message>\\n`` where the message has
``\\`` written as ``\\\\`` and a newline as ``\\n``, so a multi-line message stays one entry. A
block of entries is just their lines concatenated: the job appends blocks to its spool files, the
server stores blocks as they are, and only a reader decodes them. Counting the entries of a block
is counting its newlines. Imports nothing beyond the standard library (job processes load it).
"""
import re
import time

_UNESCAPE = re.compile(r"\\(.)", re.DOTALL)
_UNESCAPES = {"n": "\n", "\\": "\\"}


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
    return ("%.3f\t%s\n" % (time.time() if when is None else when, escape(message))).encode(
        "utf-8", "surrogateescape")


def frame_raw_lines(lines, when):
    """Entry lines for raw output lines (bytes without their newline), stamped ``when``."""
    stamp = b"%.3f\t" % when
    return b"".join(stamp + line.replace(b"\\", b"\\\\") + b"\n" for line in lines)


def complete_part(data):
    """The longest prefix of ``data`` that ends with a newline (b"" if none)."""
    end = data.rfind(b"\n")
    return data[:end + 1] if end >= 0 else b""


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
