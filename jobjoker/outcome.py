"""How a job ended: the runner's exit codes, and the final status they come to.

Contract: the runner exits with ``EXIT_DONE`` (run() returned), ``EXIT_ERROR`` (an uncaught
exception), the code of a ``sys.exit(N)``, or ``EXIT_STOPPED`` (run() ended after SIGTERM asked
it to stop), and leaves its account in the job's folder (``jobdir.RUN_END``: ``outcome`` done,
error or stopped, ``returncode``, ``error``). The supervisor records the process's exit
(``returncode`` or ``signal``, or ``lost`` with why it is unknown). ``final_outcome`` turns the
three (with whether a stop was requested) into the job's final status, its error message and
the words of its closing ``ENDED`` entry. Imports nothing of ours but the states.
"""
import signal

from jobjoker.states import JobStatus

EXIT_DONE = 0
EXIT_ERROR = 1
EXIT_STOPPED = 128 + signal.SIGTERM  # the shell's convention for "ended by SIGTERM"


def signal_name(signum):
    try:
        return signal.Signals(signum).name
    except ValueError:
        return "signal %d" % signum


def final_outcome(stop_requested, exit_record, run_end):
    """``(status, error, how)``: the final status, its error message (None when there is none)
    and how the process ended, in words (``exit code 0``, ``killed by SIGKILL``)."""
    code, signum = exit_record.get("returncode"), exit_record.get("signal")
    if run_end is not None and code is None and signum is None:
        code = run_end.get("returncode")  # no supervisor saw the exit; the runner said it
    how = "killed by %s" % signal_name(signum) if signum is not None else \
        "exit code %s" % code if code is not None else "exit status unknown"
    return (*_status(stop_requested, code, signum, exit_record, run_end), how)


def _status(stop_requested, code, signum, exit_record, run_end):
    if stop_requested:
        return JobStatus.STOP, None
    if signum is not None:
        return JobStatus.ERROR, "killed by %s" % signal_name(signum)
    if code is None:
        return JobStatus.ERROR, exit_record.get("lost") or "its exit status is unknown"
    told = run_end if run_end is not None and run_end.get("returncode") == code else {}
    if code == EXIT_DONE:
        return JobStatus.DONE, None
    if told.get("outcome") == "stopped":
        return JobStatus.STOP, "stopped by a SIGTERM from outside JobJoker"
    if told.get("error"):
        return JobStatus.ERROR, "%s (the log has the details)" % told["error"]
    return JobStatus.ERROR, "exit code %s" % code


def ended_message(status, how, duration):
    """The job's closing log entry."""
    return "ENDED %s (%s) after %.3f s" % (status.value, how, duration)
