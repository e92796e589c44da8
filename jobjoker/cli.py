"""The ``jobjoker`` command. ``jobjoker serve`` runs the server (``run_server.py`` does the same).

Contract: ``main(argv)`` parses the command line, builds the config (flags > environment > config
file > defaults) and runs the chosen subcommand; it returns the process exit code. The first
SIGTERM or SIGINT stops the server gracefully (running jobs keep running and are re-adopted by
the next start); a second one exits at once.

The other subcommands (``workers``, ``jobs``, ``logs``, ``run``) drive a server through
``jobjoker.client``. The server comes from ``--url`` or ``JOBJOKER_URL``, the user from ``--user``
or ``JOBJOKER_USER``, and the password (or an API token) only from ``JOBJOKER_PASSWORD`` (or
``JOBJOKER_TOKEN``): a flag would show it to every user of the machine in ``ps``. They print
tables and plain text, or JSON with ``--json`` (one document, or one JSON object per line for
entries and events); errors go to stderr with the server's message, and the exit code says what
happened (``EXIT_CODES_HELP``).
"""
import argparse
import asyncio
import datetime
import getpass
import json
import logging
import math
import os
import pathlib
import signal
import sys

from jobjoker import __version__
from jobjoker.client import AuthError, Client, ClientError, ConnectionFailed, Event, \
    NotFoundError, ServerError
from jobjoker.config import OPTIONS, load_config
from jobjoker.errors import StartupError

log = logging.getLogger("jobjoker")

HELP = {
    "host": "address to listen on (default 127.0.0.1)",
    "port": "port to listen on (default 8080)",
    "data_dir": "SQLite file, job spools and server state (default: db/ in a checkout)",
    "workers_dir": "folder of worker files (default: workers/ in a checkout)",
    "database": "database URL: sqlite:///PATH, mysql://USER:PASS@HOST:PORT/DB, postgresql://...",
    "stop_grace": "seconds between SIGTERM and SIGKILL when stopping a job (default 10)",
    "max_body_size": "largest request body in bytes (default 10 MiB)",
    "max_worker_size": "largest worker file in bytes (default 1 MiB)",
    "max_parameters_size": "largest job parameters, as JSON, in bytes (default 64 KiB)",
    "max_log_bytes": "cap on one job's stored log (e.g. 512M); past it the first and last "
                     "halves are kept with a marker between (default 1G; 0: no cap)",
    "stream_buffer_bytes": "most bytes queued for one stream subscriber before it is closed "
                           "as too slow (default 8 MiB)",
    "stream_stall_timeout": "seconds a stream subscriber may take no data before it is closed "
                            "as too slow (default 30)",
    "tls_cert": "serve HTTPS with this certificate chain (PEM); needs --tls-key",
    "tls_key": "the private key (PEM) of --tls-cert",
    "allowed_hosts": "host names (comma-separated) accepted in the Host header besides "
                     "localhost, when listening on loopback (DNS-rebinding guard)",
    "allowed_origins": "browser origins (comma-separated, e.g. https://jobs.example.com) "
                       "allowed to open WebSockets besides the server's own",
    "run_as": "when the server runs as root, run jobs as this unprivileged user",
    "trust_proxy": "yes when behind a reverse proxy: take the client's address and scheme "
                   "from X-Forwarded-For/-Proto (only then!)",
    "login_failures": "failed logins allowed per account within --login-window before 429 "
                      "(default 10)",
    "login_failures_per_address": "failed logins allowed per client address within "
                                  "--login-window, all accounts together (default 50)",
    "login_window": "seconds over which failed logins are counted (default 300)",
    "node": "this server's name when several share a database (default: host name)",
    "log_level": "DEBUG, INFO, WARNING or ERROR (default INFO)",
    "slow_callback_seconds": "log a warning with the code that holds the IOLoop this many "
                             "seconds or more (default 0.25; 0: never)",
}


def add_server_options(parser):
    """The server options, each also settable by its environment variable."""
    parser.add_argument("--config", metavar="FILE",
                        help="TOML config file (env JOBJOKER_CONFIG)")
    for name, (variable, kind) in OPTIONS.items():
        parser.add_argument("--" + name.replace("_", "-"), dest=name, default=None,
                            help="%s (env %s)" % (HELP[name], variable))


def build_parser():
    parser = argparse.ArgumentParser(prog="jobjoker", description="JobJoker job runner")
    parser.add_argument("--version", action="version", version="jobjoker " + __version__)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser("serve", help="run the server",
                                description="Run the JobJoker server.")
    add_server_options(serve)
    serve.set_defaults(handler=serve_command)
    add_client_commands(parser, commands)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    return args.handler(args)


def serve_command(args):
    flags = {name: getattr(args, name) for name in OPTIONS}
    try:
        config = load_config(flags, config_file=args.config)
    except StartupError as e:
        print("jobjoker: %s" % e.message, file=sys.stderr)
        return 2
    logging.basicConfig(level=config.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return asyncio.run(serve(config))
    except StartupError as e:
        print("jobjoker: %s" % e.message, file=sys.stderr)
        return 1


async def serve(config):
    from jobjoker.app import JobJokerServer  # the heavy imports only when serving

    # Whatever the server creates (database, spools, state) is for its own user only.
    os.umask(0o077)
    server = JobJokerServer(config, admin_password=os.environ.get("JOBJOKER_ADMIN_PASSWORD"))
    await server.start()
    announce(server)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(signum):
        if stopping.is_set():
            log.warning("second %s: exiting now", signal.Signals(signum).name)
            os._exit(1)
        log.info("%s: stopping (running jobs keep running)", signal.Signals(signum).name)
        stopping.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    await stopping.wait()
    await server.stop()
    return 0


def announce(server):
    config = server.config
    host = config.host if ":" not in config.host else "[%s]" % config.host
    log.info("JobJoker %s listening on %s://%s:%d/ (data in %s, workers in %s)",
             __version__, "https" if config.tls else "http", host, config.port,
             config.data_dir, config.workers_dir)
    if not config.loopback_only and not config.tls:
        log.warning("!" * 78)
        log.warning("LISTENING ON %s WITHOUT TLS: passwords, tokens and session cookies cross "
                    "the network in clear text.", config.host)
        log.warning("Give --tls-cert and --tls-key, or put a TLS reverse proxy in front and "
                    "listen on 127.0.0.1 (see SECURITY.md).")
        log.warning("!" * 78)
    if server.admin_created:
        password, generated = server.admin_created
        if generated:
            # Printed once, on the console only: it is stored hashed and cannot be shown again.
            print("\n  Created user 'admin' with password: %s\n"
                  "  Log in with it (HTTP Basic); set JOBJOKER_ADMIN_PASSWORD to choose one.\n"
                  % password, file=sys.stderr, flush=True)
        else:
            log.info("created user 'admin' with the password from JOBJOKER_ADMIN_PASSWORD")
    else:
        log.info("log in with an existing user (HTTP Basic)")


# --- the client subcommands ------------------------------------------------------------------

EXIT_OK = 0
EXIT_FAILED = 1  # the job did not end done, or the server refused the request
EXIT_USAGE = 2  # argparse's own code for a bad command line
EXIT_UNAVAILABLE = 3  # the server cannot be reached, or failed (5xx)
EXIT_AUTH = 4
EXIT_NOT_FOUND = 5
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT
EXIT_BROKEN_PIPE = 141  # the reader of our output went away, as shells report SIGPIPE

EXIT_CODES_HELP = """\
exit codes:
  0  success
  1  the job did not end done (run --follow, logs -f), or the server refused the request
  2  usage error (bad command line)
  3  cannot connect to the server, or the server failed (5xx)
  4  not authenticated or not allowed (401, 403, 429 after failed logins)
  5  not found (no such job or worker)

environment:
  JOBJOKER_URL       the server (default http://127.0.0.1:8080)
  JOBJOKER_USER      the user name (default admin)
  JOBJOKER_PASSWORD  the password (never taken from a flag: ps would show it)
  JOBJOKER_TOKEN     an API token, sent instead of the user and password"""

LOG_PAGE = 10000  # entries per request when printing a whole stream
TIME_FIELDS = {"created", "starttime", "stoptime", "stop_requested", "modified"}


class RefusePassword(argparse.Action):
    """``--password`` exists only to say where the password goes instead."""

    def __call__(self, parser, namespace, values, option_string=None):
        parser.error("the password is never taken from the command line, where ps shows it "
                     "to every user: set JOBJOKER_PASSWORD instead")


def add_client_commands(parser, commands):
    """The ``workers``, ``jobs``, ``logs`` and ``run`` subcommands."""
    parser.epilog = EXIT_CODES_HELP
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    server = argparse.ArgumentParser(add_help=False)
    options = server.add_argument_group("server")
    options.add_argument("--url", help="the server (env JOBJOKER_URL, default "
                                       "http://127.0.0.1:8080)")
    options.add_argument("--user", help="user name (env JOBJOKER_USER, default admin); the "
                                        "password comes only from JOBJOKER_PASSWORD")
    options.add_argument("--password", nargs="?", action=RefusePassword, help=argparse.SUPPRESS)
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

    jobs = command_group("jobs", "list, show, start, stop, kill and delete jobs")
    ls = command(jobs, "ls", jobs_ls, "list jobs, newest first")
    ls.add_argument("--status", choices=["idle", "active", "stop", "error", "done"])
    ls.add_argument("--worker", metavar="NAME")
    ls.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    ls.add_argument("--offset", type=int, default=0, help="skip this many (default 0)")
    command(jobs, "show", jobs_show, "show a job").add_argument("job", metavar="ID")
    command(jobs, "start", jobs_start, "start an idle job").add_argument("job", metavar="ID")
    for name, verb in (("stop", "stop a running job (SIGTERM, SIGKILL after the grace period)"),
                       ("kill", "kill a running job (SIGKILL) at once")):
        sub = command(jobs, name, jobs_signal, verb)
        sub.set_defaults(signal_command=name)
        sub.add_argument("job", metavar="ID")
        sub.add_argument("--wait", action="store_true", help="return once the job has ended")
    command(jobs, "rm", jobs_rm, "delete a job that is not running").add_argument(
        "job", metavar="ID")

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

    run = command(commands, "run", run_command, "create and start a job of a worker")
    run.add_argument("worker")
    run.add_argument("-p", "--param", metavar="KEY=VALUE", action="append", default=[],
                     type=parse_parameter,
                     help="a parameter; VALUE is JSON when it parses (3, true, [1, 2], null) "
                          "and a string otherwise; repeat for more")
    run.add_argument("--params-json", metavar="JSON", type=parse_json_object,
                     help="parameters as a JSON object (-p values override its keys)")
    add_follow_options(run, "print the job's log as it comes until the job ends, and exit 0 "
                            "only if it ends done (without it: print the job's id)")


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
            client = Client(args.url, args.user)
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


def fail(message, code):
    print("jobjoker: %s" % message, file=sys.stderr)
    return code


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


# --- output ---------------------------------------------------------------------------------

def print_json(value):
    print(json.dumps(value, indent=2, ensure_ascii=False))


def show(item, args, as_text):
    """``item`` as JSON with --json, else through ``as_text``."""
    if args.json:
        print_json(item)
    else:
        as_text(item)


def print_table(header, rows):
    """Columns aligned on the widest cell; the last column is not padded."""
    rows = [header] + [[str(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    for row in rows:
        print("  ".join([cell.ljust(width) for cell, width in zip(row, widths)] + row[-1:]))


def print_fields(item):
    """One ``key  value`` line per field, times readable, objects as JSON."""
    width = max(len(key) for key in item)
    for key, value in item.items():
        print("%s  %s" % (key.ljust(width), format_value(key, value)))


def format_value(key, value):
    if value is None:
        return "-"
    if key in TIME_FIELDS:
        return format_time(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def format_time(timestamp, precise=False):
    if timestamp is None:
        return "-"
    moment = datetime.datetime.fromtimestamp(timestamp)
    return moment.isoformat(sep=" ", timespec="milliseconds" if precise else "seconds")


def print_entry(event, args):
    """An entry event as --json or text (with its time in front for --timestamps)."""
    if args.json:
        print(json.dumps(event.to_dict(), ensure_ascii=False))
    elif args.timestamps:
        print(format_time(event.time, precise=True), event.message)
    else:
        print(event.message)


def first_line(text, width=60):
    line = text.strip().split("\n")[0]
    return line if len(line) <= width else line[:width - 1] + "…"


# --- the actions: (client, args) -> exit code -----------------------------------------------

def workers_ls(client, args):
    show(client.workers(), args, lambda workers: print_table(
        ["NAME", "SIZE", "MODIFIED", "DESCRIPTION"],
        [[w["name"], w["size"], format_time(w["modified"]), first_line(w["description"])]
         for w in workers]))
    return EXIT_OK


def workers_show(client, args):
    show(client.worker(args.name), args, print_fields)
    return EXIT_OK


def workers_push(client, args):
    if args.file == "-":
        if not args.name:
            return fail("name the worker with --name when its code comes from standard "
                        "input", EXIT_USAGE)
        code = sys.stdin.buffer.read()
    else:
        try:
            code = pathlib.Path(args.file).read_bytes()
        except OSError as e:
            return fail("cannot read %s: %s" % (args.file, e.strerror), EXIT_USAGE)
    name = args.name or pathlib.Path(args.file).stem
    show(client.push_worker(name, code), args, lambda worker: print(
        "worker %s saved (%d bytes, %s)" % (worker["name"], worker["size"], worker["hash"])))
    return EXIT_OK


def workers_pull(client, args):
    code = client.worker_code(args.name)
    if args.output and args.output != "-":
        pathlib.Path(args.output).write_text(code, encoding="utf-8", newline="")
    else:
        sys.stdout.write(code)
    return EXIT_OK


def workers_rm(client, args):
    show(client.delete_worker(args.name), args,
         lambda worker: print("worker %s deleted" % worker["name"]))
    return EXIT_OK


def jobs_ls(client, args):
    show(client.jobs(args.status, args.worker, args.offset, args.limit), args,
         lambda jobs: print_table(
             ["ID", "WORKER", "STATUS", "CREATED", "DURATION"],
             [[j["id"], j["worker"], j["status"], format_time(j["created"]),
               "-" if j["duration"] is None else "%.1f s" % j["duration"]] for j in jobs]))
    return EXIT_OK


def jobs_show(client, args):
    show(client.job(args.job), args, print_fields)
    return EXIT_OK


def jobs_start(client, args):
    show(client.start(args.job), args,
         lambda job: print("job %s started (pid %s)" % (job["id"], job["pid"])))
    return EXIT_OK


def jobs_signal(client, args):
    """``stop`` or ``kill``, and with ``--wait`` until the job has ended."""
    job = getattr(client, args.signal_command)(args.job)
    if args.wait:
        job = client.wait(job["id"])
    if args.json:
        print_json(job)
    elif job["status"] == "active":
        print("job %s is %s" % (job["id"], "stopping" if args.signal_command == "stop"
                                else "being killed"))
    else:
        print("job %s ended %s" % (job["id"], job["status"]))
    return EXIT_OK


def jobs_rm(client, args):
    show(client.delete_job(args.job), args, lambda job: print("job %s deleted" % job["id"]))
    return EXIT_OK


ROLES = ("viewer", "operator", "admin")


def new_password(prompt):
    """A new password from JOBJOKER_NEW_PASSWORD or asked twice on the terminal (never a
    flag: ``ps`` would show it)."""
    password = os.environ.get("JOBJOKER_NEW_PASSWORD")
    if password:
        return password
    if not sys.stdin.isatty():
        raise ValueError("set JOBJOKER_NEW_PASSWORD, or run this in a terminal to be asked")
    first = getpass.getpass(prompt)
    if getpass.getpass("again: ") != first:
        raise ValueError("the two passwords differ")
    return first


def users_ls(client, args):
    show(client.users(), args, lambda users: print_table(
        ["USER", "ROLE", "DISABLED", "CREATED"],
        [[u["username"], u["role"], "yes" if u["disabled"] else "", format_time(u["created"])]
         for u in users]))
    return EXIT_OK


def users_add(client, args):
    try:
        password = new_password("password for %s: " % args.username)
    except ValueError as e:
        return fail(str(e), EXIT_USAGE)
    show(client.create_user(args.username, password, args.role), args,
         lambda user: print("user %s added (%s)" % (user["username"], user["role"])))
    return EXIT_OK


def users_role(client, args):
    show(client.update_user(args.username, role=args.role), args,
         lambda user: print("user %s is now %s" % (user["username"], user["role"])))
    return EXIT_OK


def users_able(client, args):
    user = client.update_user(args.username, disabled=args.disable)
    show(user, args, lambda u: print("user %s %s" % (
        u["username"], "disabled" if u["disabled"] else "enabled")))
    return EXIT_OK


def users_rm(client, args):
    show(client.delete_user(args.username), args,
         lambda user: print("user %s deleted" % user["username"]))
    return EXIT_OK


def users_passwd(client, args):
    me = client.whoami()
    username = args.username or me["username"]
    try:
        current = None
        if username == me["username"] and me["role"] != "admin":
            current = client.password or getpass.getpass("current password: ")
        password = new_password("new password for %s: " % username)
    except ValueError as e:
        return fail(str(e), EXIT_USAGE)
    show(client.set_password(username, password, current), args,
         lambda user: print("password of %s changed" % user["username"]))
    return EXIT_OK


def tokens_ls(client, args):
    show(client.tokens(args.token_user), args, lambda tokens: print_table(
        ["ID", "NAME", "USER", "ROLE", "CREATED", "EXPIRES", "LAST USED", "REVOKED"],
        [[t["id"], t["name"], t["username"], t["role"], format_time(t["created"]),
          format_time(t["expires"]), format_time(t["last_used"]), format_time(t["revoked"])]
         for t in tokens]))
    return EXIT_OK


def tokens_create(client, args):
    token = client.create_token(args.name, args.role, args.expires_in)
    show(token, args, lambda t: print(
        "%s\n(token %s, role %s: copy it now, it is not shown again; use it as "
        "JOBJOKER_TOKEN)" % (t["token"], t["id"], t["role"])))
    return EXIT_OK


def tokens_revoke(client, args):
    show(client.revoke_token(args.token_id), args,
         lambda token: print("token %s revoked" % token["id"]))
    return EXIT_OK


def audit_command(client, args):
    show(client.audit(args.offset, args.limit, args.actor, args.action), args,
         lambda entries: print_table(
             ["TIME", "ACTOR", "ACTION", "TARGET", "ADDRESS", "DETAIL"],
             [[format_time(e["time"]), e["actor"] or "(server)", e["action"], e["target"] or "",
               e["address"] or "", e["detail"] or ""] for e in entries]))
    return EXIT_OK


def logs_command(client, args):
    stream = "response" if args.response else "log"
    if args.follow:
        return follow_job(client, args.job, args, {stream})
    read = client.response if args.response else client.log
    offset = 0
    while True:
        page = read(args.job, offset, LOG_PAGE)
        for seq, entry in enumerate(page, offset):
            print_entry(Event(stream, seq, entry["message"], entry["time"]), args)
        if len(page) < LOG_PAGE:
            return EXIT_OK
        offset += len(page)


def run_command(client, args):
    parameters = {**(args.params_json or {}), **dict(args.param)}
    job = client.create_job(args.worker, parameters or None)
    try:
        job = client.start(job["id"])
    except ClientError as e:
        e.message = "job %s was created but did not start: %s" % (job["id"], e.message)
        raise
    if args.follow:
        # Text shows the log; JSON lines are labelled, so they carry the response too.
        return follow_job(client, job["id"], args, {"log", "response"} if args.json else {"log"})
    show(job, args, lambda job: print(job["id"]))
    return EXIT_OK


def follow_job(client, job_id, args, streams):
    """Print the entries of ``streams`` live until the job ends (with --json, the status and end
    events too, one per line); EXIT_OK only if it ends done."""
    status = None
    try:
        for event in client.follow(job_id):
            if event.kind in streams:
                print_entry(event, args)
            elif args.json and event.kind in ("status", "end"):
                print(json.dumps(event.to_dict(), ensure_ascii=False))
            sys.stdout.flush()  # a pipe would hold the lines back; they are news now
            if event.kind == "end":
                status = event.status
    except KeyboardInterrupt:
        return fail("stopped following; job %s keeps running (jobjoker jobs stop %s stops it)"
                    % (job_id, job_id), EXIT_INTERRUPTED)
    if status == "done":
        return EXIT_OK
    error = client.job(job_id)["error"]
    return fail("job %s ended %s%s" % (job_id, status, ": %s" % error if error else ""),
                EXIT_FAILED)


if __name__ == "__main__":
    sys.exit(main())
