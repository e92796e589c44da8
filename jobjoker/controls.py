"""Control records: a job's progress and its structured result, as the job writes them and the
server reads them.

Contract: a control record is one JSON object in the job's ``log.spool`` (framed by
``spool.frame_control``), either ``{"type": "progress", "progress": P, "message": M}`` (P a
number from 0 to 1, M text or null) or ``{"type": "result", "value": V}`` (any JSON value).
``check_progress(done, total)`` is the fraction a worker's ``self.progress()`` call means, or
``ValueError`` saying why it is refused (the worker then gets a warning entry, not an
exception); ``result_text(value)`` is a result as compact JSON, or ``TypeError`` saying why it
cannot be one. ``read_record(payload, ...)`` is what the server makes of a record: a
``Progress`` or ``Result`` tuple, or ``Refused(why)`` for anything malformed or over a cap —
the job wrote it, so nothing in it is trusted. ``mask_json`` hides secret values inside a
result's strings. Progress messages are cut to ``MAX_MESSAGE_CHARS``. The caps live here (the
runner and the ingester import them); ``DEFAULT_MAX_RESULT_BYTES`` is ``--max-result-bytes``'s
default. Imports nothing beyond the standard library (job processes load it).
"""
import collections
import json
import math

MAX_MESSAGE_CHARS = 500  # a progress message longer than this is cut
DEFAULT_MAX_RESULT_BYTES = 1024 * 1024  # --max-result-bytes
PROGRESS_INTERVAL = 0.1  # at most ~10 progress records (and events) a second per job
RECORD_SLACK = 1024  # bytes of a record around its result or message

Progress = collections.namedtuple("Progress", "progress message")
Result = collections.namedtuple("Result", "text")
Refused = collections.namedtuple("Refused", "why")


def _number(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("%s must be a number, not %s" % (name, _shown(value)))
    if not math.isfinite(value):
        raise ValueError("%s must be a finite number, not %r" % (name, value))
    return value


def _shown(value):
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_progress(done, total=None):
    """The fraction (0 to 1) that ``progress(done, total)`` means, or ``ValueError`` why not."""
    done = _number(done, "done")
    if total is None:
        if not 0 <= done <= 1:
            raise ValueError("done must be from 0 to 1 when no total is given, not %r" % done)
        return float(done)
    total = _number(total, "total")
    if total <= 0:
        raise ValueError("total must be more than 0, not %r" % total)
    if not 0 <= done <= total:
        raise ValueError("done must be from 0 to total (%r), not %r" % (total, done))
    return done / total


def cut_message(message):
    """A progress message as stored: text (None stays None), at most ``MAX_MESSAGE_CHARS``."""
    if message is None:
        return None
    if not isinstance(message, str):
        message = str(message)
    return message[:MAX_MESSAGE_CHARS]


def result_text(value):
    """``value`` as compact JSON text, or ``TypeError`` saying why it cannot be a result."""
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError) as e:
        raise TypeError("a job's result must be JSON-serializable: %s" % e) from None


def mask_json(value, mask):
    """``value`` (parsed JSON) with ``mask(text)`` applied to every string in it, keys too."""
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, list):
        return [mask_json(item, mask) for item in value]
    if isinstance(value, dict):
        return {mask(key): mask_json(item, mask) for key, item in value.items()}
    return value


def mask_result(text, mask):
    """A result's JSON text with the secrets in its strings masked (``mask``: a ``Masker``,
    which may hold none)."""
    if not mask:
        return text
    return result_text(mask_json(json.loads(text), mask.text))


def refusal_of_size(size, cap):
    """The words of a result refused for its size (the runner's and the server's)."""
    return "result refused: %d bytes, over the cap of %d (--max-result-bytes)" % (size, cap)


def record_limit(max_result_bytes):
    """The longest control record the server reads: a result at its cap, and the JSON around."""
    return max(max_result_bytes, MAX_MESSAGE_CHARS * 4) + RECORD_SLACK


def progress_record(fraction, message):
    return json.dumps({"type": "progress", "progress": fraction, "message": message},
                      ensure_ascii=False).encode("utf-8", "surrogateescape")


def result_record(text):
    return b'{"type":"result","value":' + text.encode("utf-8", "surrogateescape") + b"}"


def read_record(payload, length, max_result_bytes, mask=None):
    """The server's reading of one control record (``payload``: its bytes, or None when it was
    skipped for its ``length``): ``Progress``, ``Result`` (masked with ``mask``) or ``Refused``."""
    if payload is None:
        return Refused("a control record of %d bytes, over the cap of %d (--max-result-bytes)"
                       % (length, record_limit(max_result_bytes)))
    if len(payload) < length:
        return Refused("a control record cut short (%d of %d bytes)" % (len(payload), length))
    try:
        record = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        return Refused("a control record that is not JSON (%s)" % e)
    kind = record.get("type") if isinstance(record, dict) else None
    if kind == "progress":
        try:
            fraction = check_progress(record.get("progress"))
        except ValueError as e:
            return Refused("progress ignored: %s" % e)
        message = record.get("message")
        if message is not None and not isinstance(message, str):
            return Refused("progress ignored: its message must be text or null")
        message = cut_message(message)
        if mask and message:
            message = mask.text(message)
        return Progress(fraction, message)
    if kind == "result" and "value" in record:
        try:
            text = result_text(record["value"])
            if mask:
                text = mask_result(text, mask)
        except TypeError as e:
            return Refused("result refused: %s" % e)
        size = len(text.encode("utf-8", "surrogateescape"))
        if size > max_result_bytes:
            return Refused(refusal_of_size(size, max_result_bytes))
        return Result(text)
    return Refused("a control record of an unknown kind (%s)" % _shown(kind))
