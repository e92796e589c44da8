"""Inside a job's process: the worker's progress and result, written as control records.

Contract: ``ControlWriter(log, flusher, mask, max_result_bytes, log_entry)`` is the worker's
``control_sink`` (``jobjoker.worker``). ``progress(fraction, message)`` is coalesced: a record
goes out at once when the last one went out ``controls.PROGRESS_INTERVAL`` ago or more, else
it is held (a newer one replaces it) and the flusher writes it when that interval is over; so a
worker calling it in a tight loop costs a dictionary store per call and at most ~10 records a
second, and ``close`` writes the one still held: the last is never lost. ``result(text)`` masks
the secrets in its strings, refuses a result over ``max_result_bytes`` with a log entry
(``controls.refusal_of_size``) without raising, and writes it at once. Records go through the
log's ``BlockWriter.write_control``, behind the entries logged before them; one the disk refuses
is kept and tried again at the next flush. Safe from any thread.
"""
import threading
import time

from jobjoker import controls, spool


class ControlWriter:
    """The job's progress and result records, from the worker to its log spool."""

    def __init__(self, log, flusher, mask, max_result_bytes, log_entry):
        self._log = log
        self._flusher = flusher
        self._mask = mask
        self.max_result_bytes = max_result_bytes
        self._log_entry = log_entry  # writes one entry in the job's log
        self._lock = threading.Lock()
        self._pending = {}  # "result" -> framed record; "progress" -> (fraction, message)
        self._next_progress = 0.0  # time.monotonic() before which progress is held
        self.due = None  # for the flusher: when the held progress record may go out

    holding = False  # a record waits for disk space: the flusher retries now and then

    def progress(self, fraction, message):
        with self._lock:
            # Held as it was given: the record is made (masked, encoded) only when written.
            self._pending["progress"] = (fraction, message)
            now = time.monotonic()
            if now >= self._next_progress:
                self._write_locked(now)
            elif self.due is None:
                self.due = self._next_progress
                self._flusher.wake()  # so that it sleeps until then, not until woken

    def result(self, text):
        text = controls.mask_result(text, self._mask)
        size = len(text.encode("utf-8", "surrogateescape"))
        if size > self.max_result_bytes:
            self._log_entry(controls.refusal_of_size(size, self.max_result_bytes))
            return
        with self._lock:
            self._pending["result"] = spool.frame_control(controls.result_record(text))
            self._write_locked(time.monotonic())

    def flush(self):
        """The flusher's turn: write what is held and due."""
        with self._lock:
            if self._pending:
                self._write_locked(time.monotonic())

    def close(self):
        """The job ends: write everything held, due or not."""
        with self._lock:
            self._next_progress = 0.0
            self._write_locked(time.monotonic())

    def _progress_record(self, fraction, message):
        if message and self._mask:
            message = self._mask.text(message)
        return spool.frame_control(controls.progress_record(fraction, message))

    def _write_locked(self, now):
        for kind in ("progress", "result"):
            record = self._pending.get(kind)
            if record is None or (kind == "progress" and now < self._next_progress):
                continue
            if kind == "progress":
                record = self._progress_record(*record)
            if not self._log.write_control(record):
                self.holding = True  # the disk refuses: kept for the next flush
                return
            self.holding = False
            del self._pending[kind]
            if kind == "progress":
                self._next_progress = now + controls.PROGRESS_INTERVAL
        self.due = self._next_progress if "progress" in self._pending else None
