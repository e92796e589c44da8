"""The client subcommands and options about retries.

Contract: ``add_retry_options(parser)`` gives a command that creates jobs (``run``, ``rerun``)
``--retries N``, ``--retry-delay S``, ``--retry-backoff F`` and ``--retry-on-timeout`` /
``--no-retry-on-timeout``; ``retry_settings(args)`` is what of them was given, as the client's
``retry=`` takes it (the server checks each: a 400 naming the field). ``add_retry_commands``
adds ``jobjoker attempts ID``, which prints a job's retry chain, first attempt first
(``attempts_command``). Each command returns an exit code of ``jobjoker.cli_actions``.
"""
from jobjoker.cli_actions import EXIT_OK
from jobjoker.cli_output import attempt_text, format_time, print_table, show


def add_retry_options(parser):
    """The options of a job's own retry policy (else its worker's)."""
    group = parser.add_argument_group("retries (default: the worker's)")
    group.add_argument("--retries", type=int, metavar="N",
                       help="attempts after the first when the job ends error")
    group.add_argument("--retry-delay", type=float, metavar="SECONDS",
                       help="from a failed attempt's end to its retry's start")
    group.add_argument("--retry-backoff", type=float, metavar="FACTOR",
                       help="each retry's delay is the one before times this")
    group.add_argument("--retry-on-timeout", action="store_true", default=None,
                       help="retry an attempt that its time limit ended too")
    group.add_argument("--no-retry-on-timeout", dest="retry_on_timeout", action="store_false")


def retry_settings(args):
    """The retry settings given on the command line (None when none was)."""
    given = {name: getattr(args, name, None) for name in
             ("retries", "retry_delay", "retry_backoff", "retry_on_timeout")}
    return {name: value for name, value in given.items() if value is not None} or None


def add_retry_commands(commands, command):
    """``attempts``."""
    attempts = command(commands, "attempts", attempts_command,
                       "list the attempts of a job's retry chain, first first")
    attempts.add_argument("job", metavar="ID")


def attempts_command(client, args):
    show(client.attempts(args.job), args, lambda jobs: print_table(
        ["ATTEMPT", "ID", "STATUS", "REASON", "STARTS/STARTED", "ERROR"],
        [[attempt_text(job) or "-", job["id"], job["status"], job["reason"] or "-",
          format_time(job["starttime"] or job["start_at"]),
          job["error"] or ""] for job in jobs]))
    return EXIT_OK
