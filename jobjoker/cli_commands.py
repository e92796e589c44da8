"""The client subcommands on the command line: their parser, and their failures as exit codes.

Contract: ``add_client_commands(parser, commands)`` adds ``workers``, ``jobs``, ``users``,
``tokens``, ``audit``, ``logs``, ``run``, ``rerun`` and ``code`` to the ``jobjoker`` parser, each running an action
of ``jobjoker.cli_actions`` through ``client_command``. The server comes from ``--url`` or
``JOBJOKER_URL`` (the CA of an ``https://`` one from ``--ca-cert`` or ``JOBJOKER_CA_BUNDLE``),
the user from ``--user`` or ``JOBJOKER_USER``, and the password (or an API token) only from
``JOBJOKER_PASSWORD`` (or ``JOBJOKER_TOKEN``): a flag would show it to every user of the machine
in ``ps``. Errors go to stderr with the server's message, and the exit code
says what happened (``EXIT_CODES_HELP``).
"""
import argparse
import json
import logging
import math
import os
import sys

from jobjoker.cli_actions import EXIT_AUTH, EXIT_BROKEN_PIPE, EXIT_CODES_HELP, EXIT_FAILED, \
    EXIT_INTERRUPTED, EXIT_NOT_FOUND, EXIT_UNAVAILABLE, EXIT_USAGE, audit_command, jobs_ls, \
    jobs_control, jobs_rm, jobs_show, jobs_signal, jobs_start, logs_command, run_command, tokens_create, \
    tokens_ls, tokens_revoke, users_able, users_add, users_ls, users_passwd, users_rm, \
    users_role, workers_ls, workers_pull, workers_push, workers_rm, workers_show
from jobjoker.cli_code import code_command, rerun_command, workers_versions
from jobjoker.cli_schedules import add_schedule_commands
from jobjoker.cli_retries import add_retry_commands, add_retry_options
from jobjoker.cli_output import fail
from jobjoker.cli_waiting import parse_at
from jobjoker.cli_webhooks import add_webhook_commands
from jobjoker.client import Client
from jobjoker.client_transport import CA_BUNDLE_VARIABLE, AuthError, ClientError, \
    ConnectionFailed, NotFoundError, ServerError
from jobjoker.roles import ROLES
from jobjoker.states import JobStatus



class RefusePassword(argparse.Action):
    """``--password`` exists only to say where the password goes instead."""

    def __call__(self, parser, namespace, values, option_string=None):
        parser.error("the password is never taken from the command line, where ps shows it "
                     "to every user: set JOBJOKER_PASSWORD instead")


def add_client_commands(parser, commands):
    """The ``workers``, ``jobs``, ``users``, ``tokens``, ``audit``, ``logs`` and ``run``
    subcommands."""
    parser.epilog = EXIT_CODES_HELP
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    server = argparse.ArgumentParser(add_help=False)
    options = server.add_argument_group("server")
    options.add_argument("--url", help="the server (env JOBJOKER_URL, default "
                                       "http://127.0.0.1:8080)")
    options.add_argument("--user", help="user name (env JOBJOKER_USER, default admin); the "
                                        "password comes only from JOBJOKER_PASSWORD")
    options.add_argument("--password", nargs="?", action=RefusePassword, help=argparse.SUPPRESS)
    options.add_argument("--ca-cert", metavar="PATH",
                         help="trust an https:// server whose certificate is signed by the CA "
                              "certificate(s) in this PEM file (for a self-signed server, its "
                              "own certificate), instead of the system's (env %s)"
                              % CA_BUNDLE_VARIABLE)
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--json", action="store_true", help="print JSON for scripts")
    both = [server, output]

    def command(group, name, action, summary, parents=both):
        sub = group.add_parser(name, help=summary, description=summary[0].upper() + summary[1:]
                               + ".", parents=parents, epilog=EXIT_CODES_HELP,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
        sub.set_defaults(handler=client_command(action))
        return sub

    def command_group(name, summary):
        sub = commands.add_parser(name, help=summary, description=summary[0].upper()
                                  + summary[1:] + ".")
        sub.set_defaults(handler=lambda args: sub.print_help() or EXIT_USAGE)
        return sub.add_subparsers(metavar="COMMAND")

    workers = command_group("workers", "list, show, push, pull and delete workers")
    command(workers, "ls", workers_ls, "list the workers")
    command(workers, "show", workers_show, "show a worker").add_argument("name")
    push = command(workers, "push", workers_push, "create or replace a worker from its file")
    push.add_argument("file", help="the worker's Python file, or - for standard input")
    push.add_argument("--name", help="the worker's name (default: the file's name without .py)")
    pull = command(workers, "pull", workers_pull, "print or save a worker's code", [server])
    pull.add_argument("name")
    pull.add_argument("-o", "--output", metavar="FILE", help="write the code to FILE")
    command(workers, "rm", workers_rm, "delete a worker").add_argument("name")
    versions = command(workers, "versions", workers_versions,
                       "list a worker's kept versions, newest first")
    versions.add_argument("name")
    versions.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    versions.add_argument("--offset", type=int, default=0, help="skip this many (default 0)")

    jobs = command_group("jobs", "list, show, start, stop, kill, pause, resume and delete jobs")
    ls = command(jobs, "ls", jobs_ls, "list jobs, newest first")
    ls.add_argument("--status", choices=[status.value for status in JobStatus])
    ls.add_argument("--worker", metavar="NAME")
    ls.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    ls.add_argument("--offset", type=int, default=0, help="skip this many (default 0)")
    command(jobs, "show", jobs_show, "show a job").add_argument("job", metavar="ID")
    command(jobs, "start", jobs_start, "start an idle job, or a scheduled one now (beyond a "
                                       "concurrency cap it waits queued)").add_argument(
        "job", metavar="ID")
    for name, verb in (("stop", "stop a running job (SIGTERM, SIGKILL after the grace period), "
                                "or cancel a scheduled or queued one"),
                       ("kill", "kill a running job (SIGKILL) at once, or cancel a waiting one")):
        sub = command(jobs, name, jobs_signal, verb)
        sub.set_defaults(signal_command=name)
        sub.add_argument("job", metavar="ID")
        sub.add_argument("--wait", action="store_true", help="return once the job has ended")
    command(jobs, "rm", jobs_rm, "delete a job that is not running").add_argument(
        "job", metavar="ID")
    # jobjoker pause ID and jobjoker jobs pause ID alike (and resume)
    for group in (jobs, commands):
        for name, verb in (("pause", "pause an active job (SIGSTOP to its process group); "
                                     "its time limit runs on"),
                           ("resume", "resume a paused job (SIGCONT to its process group)")):
            sub = command(group, name, jobs_control, verb)
            sub.set_defaults(control_command=name)
            sub.add_argument("job", metavar="ID")

    users = command_group("users", "list, add, change and delete users (admins)")
    command(users, "ls", users_ls, "list the users")
    add = command(users, "add", users_add, "add a user; the password is asked for (or taken "
                                           "from JOBJOKER_NEW_PASSWORD)")
    add.add_argument("username")
    add.add_argument("--role", choices=ROLES, default="viewer", help="default viewer")
    role = command(users, "role", users_role, "change a user's role")
    role.add_argument("username")
    role.add_argument("role", choices=ROLES)
    for name, summary in (("disable", "disable a user: no login, sessions and tokens stop"),
                          ("enable", "enable a disabled user")):
        able = command(users, name, users_able, summary)
        able.add_argument("username")
        able.set_defaults(disable=name == "disable")
    command(users, "rm", users_rm, "delete a user with their tokens").add_argument("username")
    passwd = command(users, "passwd", users_passwd, "change a password (yours by default); the "
                                                    "new one is asked for (or taken from "
                                                    "JOBJOKER_NEW_PASSWORD)")
    passwd.add_argument("username", nargs="?")

    tokens = command_group("tokens", "list, create and revoke API tokens")
    tls = command(tokens, "ls", tokens_ls, "list your tokens")
    tls.add_argument("--of", dest="token_user", metavar="NAME",
                     help="another user's tokens (admins; * for all)")
    create = command(tokens, "create", tokens_create, "create a token; its secret is printed "
                                                      "once")
    create.add_argument("name", help="what the token is for")
    create.add_argument("--role", choices=ROLES, help="at most your own (default: yours)")
    create.add_argument("--expires-in", type=finite_float, metavar="SECONDS")
    command(tokens, "revoke", tokens_revoke, "revoke a token").add_argument("token_id",
                                                                            metavar="ID")

    audit = command(commands, "audit", audit_command, "print the audit trail, newest first "
                                                      "(admins)")
    audit.add_argument("--limit", type=int, default=50)
    audit.add_argument("--offset", type=int, default=0)
    audit.add_argument("--actor", metavar="USER")
    audit.add_argument("--action", metavar="ACTION", help="e.g. job.start, login.failed")

    logs = command(commands, "logs", logs_command, "print a job's log (or its response)")
    logs.add_argument("job", metavar="JOB")
    add_follow_options(logs, "follow: print new entries as they come until the job ends; "
                             "exit 0 only if it ends done")
    logs.add_argument("--response", action="store_true",
                      help="the response instead of the log")
    logs.add_argument("--search", metavar="TEXT",
                      help="only the entries that hold TEXT (a plain substring), with their seq")
    logs.add_argument("-i", "--ignore-case", action="store_true",
                      help="with --search: match in any case")

    run = command(commands, "run", run_command, "create and start a job of a worker")
    run.add_argument("worker")
    run.add_argument("-p", "--param", metavar="KEY=VALUE", action="append", default=[],
                     type=parse_parameter,
                     help="a parameter; VALUE is JSON when it parses (3, true, [1, 2], null) "
                          "and a string otherwise; repeat for more")
    run.add_argument("--params-json", metavar="JSON", type=parse_json_object,
                     help="parameters as a JSON object (-p values override its keys)")
    run.add_argument("--timeout", metavar="SECONDS", type=positive_float,
                     help="stop the job after this many seconds, ending it error (default: "
                          "its worker's timeout, else the server's --default-timeout)")
    run.add_argument("--at", metavar="TIME", type=parse_at,
                     help="start it then, waiting scheduled: +SECONDS (+90, +5m, +2h), epoch "
                          "seconds or RFC 3339 (2026-12-24T18:00:00Z)")
    add_retry_options(run)
    add_follow_options(run, "print the job's log as it comes until the job ends, then its "
                            "response after a '--- response ---' line, and exit 0 only if it "
                            "ends done (without it: print the job's id); its progress goes "
                            "to stderr")
    run.add_argument("-w", "--wait", action="store_true",
                     help="wait for the job's end without streaming its log, print only its "
                          "result (self.result()) as JSON on stdout (nothing when it has none) "
                          "and exit 0 only if it ends done: run W --wait | jq")
    add_code_commands(commands, command)
    add_schedule_commands(command_group, command, add_parameter_options, finite_float)
    add_webhook_commands(commands, command)
    add_retry_commands(commands, command)


def add_code_commands(commands, command):
    """``rerun`` and ``code``."""
    rerun = command(commands, "rerun", rerun_command, "run a job again: a new job of its "
                    "worker with its parameters (secret ones must be given again with -p)")
    rerun.add_argument("job", metavar="ID")
    add_parameter_options(rerun, "a parameter to change")
    rerun.add_argument("--no-start", action="store_true", help="create the job idle")
    rerun.add_argument("--timeout", type=finite_float, metavar="SECONDS",
                       help="its time limit (default: the old job's)")
    add_retry_options(rerun)  # (default: the old job's)
    add_follow_options(rerun, "print the new job's log as it comes until it ends, like run "
                              "--follow")
    code = command(commands, "code", code_command, "print the worker code a job ran")
    code.add_argument("job", metavar="ID")
    code.add_argument("--diff", action="store_true",
                      help="print a unified diff from it to today's worker instead")


def add_parameter_options(parser, what="a parameter"):
    parser.add_argument("-p", "--param", metavar="KEY=VALUE", action="append", default=[],
                        type=parse_parameter,
                        help="%s; VALUE is JSON when it parses (3, true, [1, 2], null) and a "
                             "string otherwise; repeat for more" % what)
    parser.add_argument("--params-json", metavar="JSON", type=parse_json_object,
                        help="parameters as a JSON object (-p values override its keys)")


def add_follow_options(parser, follow_help):
    parser.add_argument("-f", "--follow", action="store_true", help=follow_help)
    parser.add_argument("-t", "--timestamps", action="store_true",
                        help="put each entry's time in front of it")


def client_command(action):
    """The handler that runs ``action(client, args)`` and turns failures into exit codes."""
    def handler(args):
        # The client's warnings (a stream resumed after a drop) go to stderr like our errors.
        logging.basicConfig(level=logging.WARNING, format="jobjoker: %(message)s")
        try:
            client = Client(args.url, args.user, ca_cert=args.ca_cert)
        except ValueError as e:
            return fail(str(e), EXIT_USAGE)
        try:
            return action(client, args)
        except ClientError as e:
            message = e.message
            if isinstance(e, AuthError):
                message += (" (check JOBJOKER_TOKEN)" if client.token else
                            " (user %s; check JOBJOKER_PASSWORD)" % client.username
                            if client.password else " (set JOBJOKER_PASSWORD or JOBJOKER_TOKEN)")
            return fail(message, exit_code_for(e))
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED
        except BrokenPipeError:
            # The reader (head, less) went away: stop quietly, like cat. Point stdout at
            # /dev/null so that the flush at exit does not fail again.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return EXIT_BROKEN_PIPE
    return handler


def exit_code_for(error):
    if isinstance(error, AuthError):
        return EXIT_AUTH
    if isinstance(error, NotFoundError):
        return EXIT_NOT_FOUND
    if isinstance(error, (ConnectionFailed, ServerError)):
        return EXIT_UNAVAILABLE
    return EXIT_FAILED


def parse_parameter(text):
    """``key=value`` -> (key, value), the value parsed by ``parse_value``."""
    key, equals, value = text.partition("=")
    if not equals or not key:
        raise argparse.ArgumentTypeError("expected KEY=VALUE, got %r" % text)
    return key, parse_value(value)


def parse_value(text):
    """The JSON value ``text`` spells (``3``, ``true``, ``[1, 2]``, ``"3"``), else ``text``."""
    try:
        return json.loads(text, parse_constant=refuse_non_finite, parse_float=finite_float)
    except ValueError:
        return text


def finite_float(text):
    value = float(text)
    if not math.isfinite(value):  # 1e400: the server would refuse Infinity, so keep the text
        raise ValueError(text)
    return value


def positive_float(text):
    value = finite_float(text)
    if value <= 0:
        raise ValueError(text)
    return value


positive_float.__name__ = "positive number of seconds"  # what argparse calls a bad value


def refuse_non_finite(name):
    raise ValueError("%s is not JSON" % name)  # NaN, Infinity: kept as strings


def parse_json_object(text):
    try:
        value = json.loads(text, parse_constant=refuse_non_finite)
    except ValueError as e:
        raise argparse.ArgumentTypeError("not valid JSON: %s" % e) from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object like {\"count\": 3}")
    return value
