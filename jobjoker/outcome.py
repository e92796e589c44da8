"""How a job ended: the runner's exit codes, and the final status they come to.

Contract: the runner exits with ``EXIT_DONE`` (run() returned), ``EXIT_ERROR`` (an uncaught
exception), the code of a ``sys.exit(N)``, or ``EXIT_STOPPED`` (run() ended after SIGTERM asked
it to stop), and leaves its account in the job's folder (``jobdir.RUN_END``: ``outcome`` done,
error or stopped, ``returncode``, ``error``, ``time``). The supervisor records the process's
exit (``returncode`` or ``signal``, and its ``time``; or ``lost`` with why it is unknown).
``final_outcome`` turns the three (with whether a stop was requested, and why: a time limit's
stop ends ``error``, ``timed out after N s``) into the job's final status, its ``reason`` (one of
``states.REASONS``), its error message and the words of its closing ``ENDED`` entry;
``end_time`` chooses when it ended from the best evidence there is. A SIGTERM from outside
JobJoker that the worker honoured (its runner reports ``stopped``: someone on the machine ran
``kill PID``, a shutdown) ends ``stop`` with reason ``signal``: a deliberate stop, so it is not
retried; a signal that killed the process (the OOM killer's SIGKILL) ends ``error`` with reason
``signal``, and is. Imports nothing of ours but the states.
"""
import signal

from jobjoker.states import JobStatus

EXIT_DONE = 0
EXIT_ERROR = 1
EXIT_STOPPED = 128 + signal.SIGTERM  # the shell's convention for "ended by SIGTERM"
TIMEOUT = "timeout"  # the stop_reason of a stop the job's time limit made
SYS_EXIT = "sys.exit("  # how the runner's error of a worker's sys.exit(N) begins: no exception


def seconds_text(seconds):
    """A number of seconds as a person writes it: ``3600``, ``1.5`` (no useless ``.0``)."""
    seconds = float(seconds)
    return "%d" % seconds if seconds.is_integer() else repr(seconds)


def timed_out_message(timeout):
    """The error of a job its time limit stopped."""
    return "timed out after %s s" % seconds_text(timeout)


def signal_name(signum):
    try:
        return signal.Signals(signum).name
    except ValueError:
        return "signal %d" % signum


def final_outcome(stop_requested, exit_record, run_end, stop_reason=None, timeout=None):
    """``(status, reason, error, how)``: the final status, why it ended (``states.REASONS``),
    its error message (None when there is none) and how the process ended, in words (``exit
    code 0``, ``killed by SIGKILL``). A stop the time limit made (``stop_reason`` ``TIMEOUT``)
    ends ``error``, reason ``timeout``, ``timed out after N s``, however the process took
    it."""
    code, signum = exit_record.get("returncode"), exit_record.get("signal")
    if run_end is not None and code is None and signum is None:
        code = run_end.get("returncode")  # no supervisor saw the exit; the runner said it
    how = "killed by %s" % signal_name(signum) if signum is not None else \
        "exit code %s" % code if code is not None else "exit status unknown"
    if stop_requested and stop_reason == TIMEOUT:
        return JobStatus.ERROR, TIMEOUT, timed_out_message(timeout), how
    return (*_status(stop_requested, code, signum, exit_record, run_end), how)


def _status(stop_requested, code, signum, exit_record, run_end):
    if stop_requested:
        return JobStatus.STOP, "stopped", None
    if signum is not None:
        return JobStatus.ERROR, "signal", "killed by %s" % signal_name(signum)
    if code is None:
        return JobStatus.ERROR, "lost", exit_record.get("lost") or "its exit status is unknown"
    told = run_end if run_end is not None and run_end.get("returncode") == code else {}
    if code == EXIT_DONE:
        return JobStatus.DONE, "completed", None
    if told.get("outcome") == "stopped":
        return JobStatus.STOP, "signal", "stopped by a SIGTERM from outside JobJoker"
    if told.get("error"):
        reason = "exit" if told["error"].startswith(SYS_EXIT) else "exception"
        return JobStatus.ERROR, reason, "%s (the log has the details)" % told["error"]
    return JobStatus.ERROR, "exit", "exit code %s" % code


def end_time(exit_record, run_end, last_output, now):
    """``(when, evidence)``: when the job's process ended, and None when that was seen (the
    supervisor's exit record, or the server watching it) or else which evidence gave the time,
    in words, best first: the time in the runner's run-end record, the last change of its
    files (``last_output``), or, with no evidence at all, ``now`` (when its end was found). A
    job that ended while the server was away keeps its real end, not the restart's time."""
    if exit_record.get("time") is not None:
        return min(exit_record["time"], now), None
    if run_end is not None and isinstance(run_end.get("time"), (int, float)):
        return min(run_end["time"], now), "its run-end record (the exit was not seen)"
    if last_output is not None:
        return min(last_output, now), "its last output (the exit was not seen)"
    return now, "when its end was found (the exit was not seen and it left no trace)"


def ended_message(status, how, duration, evidence=None):
    """The job's closing log entry; ``evidence`` says where its end time came from when the
    exit was not seen (``end_time``)."""
    message = "ENDED %s (%s) after %.3f s" % (status.value, how, duration)
    return message if evidence is None else "%s; end time from %s" % (message, evidence)
