"""The ``jobjoker`` command. ``jobjoker serve`` runs the server (``run_server.py`` does the same).

Contract: ``main(argv)`` parses the command line, builds the config (flags > environment > config
file > defaults) and runs the chosen subcommand; it returns the process exit code. The first
SIGTERM or SIGINT stops the server gracefully (running jobs keep running and are re-adopted by
the next start); a second one exits at once.

``jobjoker backup PATH`` copies what a restore needs (``jobjoker.backup``); ``jobjoker
reset-admin`` gives an admin a new password on the server's database (``jobjoker.admin_recovery``).
The other
subcommands (``workers``, ``jobs``, ``users``, ``tokens``, ``audit``, ``logs``,
``run``) drive a server through ``jobjoker.client``: ``jobjoker.cli_commands`` adds them to the
parser and turns their failures into exit codes, ``jobjoker.cli_actions`` does what each one
asks, and ``jobjoker.cli_output`` prints it.
"""
import argparse
import asyncio
import logging
import os
import shutil
import signal
import sys

from jobjoker import __version__, logsetup
from jobjoker.cli_commands import add_client_commands
from jobjoker.config import load_config
from jobjoker.config_options import OPTIONS
from jobjoker.errors import StartupError
from jobjoker.least_privilege import startup_warnings

log = logging.getLogger("jobjoker")

HELP = {
    "host": "address to listen on (default 127.0.0.1)",
    "port": "port to listen on (default 8080)",
    "data_dir": "SQLite file, job spools and server state (default: db/ in a checkout)",
    "workers_dir": "folder of worker files (default: workers/ in a checkout)",
    "database": "database URL: sqlite:///PATH, mysql://USER:PASS@HOST:PORT/DB, postgresql://...",
    "stop_grace": "seconds between SIGTERM and SIGKILL when stopping a job (default 10)",
    "default_timeout": "time limit in seconds of a job that sets none and whose worker "
                       "declares none; at the limit it is stopped and ends error (default: "
                       "none; 0: none)",
    "max_body_size": "largest request body in bytes (default 10 MiB)",
    "max_public_body_size": "largest request body before sign-in (POST /session) "
                            "(default 16 KiB)",
    "max_body_memory": "request bodies held in memory at once, all requests together; past "
                       "it a request gets 503 with Retry-After (default 256 MiB)",
    "max_worker_size": "largest worker file in bytes (default 1 MiB)",
    "max_parameters_size": "largest job parameters, as JSON, in bytes (default 64 KiB)",
    "max_log_bytes": "cap on one job's stored log (e.g. 512M); past it the first and last "
                     "halves are kept with a marker between (default 1G; 0: no cap)",
    "max_result_bytes": "largest job result (self.result()), as UTF-8 JSON; a bigger one is "
                        "refused with a log entry (default 1M)",
    "max_batch": "most jobs in one POST /jobs/batch (default 1000)",
    "max_page": "largest page of jobs or audit entries a request may ask for (default 1000)",
    "max_entry_page": "largest page of a job's log or response a request may ask for "
                      "(default 100000)",
    "max_page_bytes": "a page of log or response entries stops at about this many bytes and "
                      "says where to go on (default 8 MiB)",
    "search_seconds": "a log search (GET /jobs/ID/log?search=) answers with what it found "
                      "after about this long and says where to search on (default 0.5; 0: one "
                      "step of about 1 MiB)",
    "stream_buffer_bytes": "most bytes queued for one stream subscriber before it is closed "
                           "as too slow (default 8 MiB)",
    "stream_stall_timeout": "seconds a stream subscriber may take no data before it is closed "
                            "as too slow (default 30)",
    "stream_memory": "bytes queued for all stream subscribers together; past it followers "
                     "read from the database at their pace (default 256 MiB)",
    "max_connections": "open client connections at once; more are closed at once "
                       "(default 0: three quarters of the open-file limit)",
    "max_connections_per_address": "open connections from one client address (default 256; "
                                   "not applied with --trust-proxy)",
    "idle_connection_timeout": "seconds a connection may wait for its next request before it "
                               "is closed (default 60)",
    "tls_cert": "serve HTTPS with this certificate chain (PEM); needs --tls-key",
    "tls_key": "the private key (PEM) of --tls-cert",
    "hsts_seconds": "send Strict-Transport-Security with this max-age on HTTPS replies (under "
                    "--tls-cert, or behind --trust-proxy when the proxy says https); "
                    "default 0: not sent",
    "allowed_hosts": "host names (comma-separated) accepted in the Host header besides "
                     "localhost, when listening on loopback (DNS-rebinding guard)",
    "allowed_origins": "browser origins (comma-separated, e.g. https://jobs.example.com) "
                       "allowed to open WebSockets besides the server's own",
    "base_path": "serve everything under this path prefix, e.g. /jobjoker behind a proxy's "
                 "location /jobjoker/ (default: the root)",
    "run_as": "when the server runs as root, run jobs as this unprivileged user",
    "trust_proxy": "yes when behind a reverse proxy: take the client's address and scheme "
                   "from X-Forwarded-For/-Proto (only then!)",
    "login_failures": "failed logins allowed per account within --login-window before 429 "
                      "(default 10)",
    "login_failures_per_address": "failed logins allowed per client address within "
                                  "--login-window, all accounts together (default 50)",
    "login_window": "seconds over which failed logins are counted (default 300)",
    "session_lifetime": "seconds a browser's sign-in lasts (default 43200: 12 hours)",
    "node": "this server's name when several share a database (default: host name)",
    "node_heartbeat": "seconds between refreshes of this server's node lease in the database "
                      "(default 10)",
    "node_lease_ttl": "seconds after which the node lease of a server on another host that "
                      "stopped refreshing it may be taken over (default 30; at least twice "
                      "--node-heartbeat)",
    "secret_retention": "seconds after a job's end during which entries may still be appended "
                        "to it; then its secret values are erased (default 300)",
    "log_level": "DEBUG, INFO, WARNING or ERROR (default INFO)",
    "log_file": "append the server's log to this file instead of stderr; SIGHUP reopens it "
                "(after logrotate renamed it)",
    "log_format": "text, or json: one JSON object per line (default text)",
    "access_log": "on: a line per request, /health and /metrics probes only at DEBUG; off: "
                  "no request lines (default on)",
    "slow_callback_seconds": "log a warning with the code that holds the IOLoop this many "
                             "seconds or more (default 0.25; 0: never)",
    "usage_interval": "seconds between samples of each running job's CPU time and memory "
                      "(default 1; 0: not sampled)",
    "max_active_jobs": "cap on running (active or paused) jobs, kept in the database for every "
                       "server of it; more starts wait queued (given: stored at start; 0: the "
                       "cap removed; not given: the stored one stays; default: none)",
    "webhook_retries": "times a webhook delivery that failed is tried again before it is "
                       "recorded failed (default 5)",
    "webhook_retry_delay": "seconds before a failed webhook delivery's first retry, doubled "
                           "for each next one, at most an hour (default 10)",
    "webhook_timeout": "seconds a webhook receiver has to accept the connection, and again "
                       "to answer (default 10)",
    "keep_days": "delete finished jobs (with their logs, results and files) that ended more "
                 "than this many days ago (default: kept); see docs/deploy.md, Retention",
    "keep_per_worker": "delete finished jobs beyond the newest this many of each worker "
                       "(default: kept)",
    "keep_audit_days": "delete audit entries older than this many days (default: kept)",
    "prune_interval": "seconds between the server's retention prunes (default 3600; 0: only "
                      "`jobjoker prune`)",
}


def add_server_options(parser):
    """The server options, each also settable by its environment variable."""
    parser.add_argument("--config", metavar="FILE",
                        help="TOML config file (env JOBJOKER_CONFIG)")
    for name, (variable, kind) in OPTIONS.items():
        parser.add_argument("--" + name.replace("_", "-"), dest=name, default=None,
                            help="%s (env %s)" % (HELP[name], variable))


def server_command(commands, name, handler, **texts):
    """A subcommand that takes the server options (it works on the server's data and database)
    and runs ``handler(args)``; ``texts``: its help and description."""
    parser = commands.add_parser(name, **texts)
    add_server_options(parser)
    parser.set_defaults(handler=handler)
    return parser


def server_config(args):
    """The server's ``Config`` from the server options parsed into ``args`` (environment, file
    and defaults merged in); ``StartupError`` says what is wrong."""
    return load_config({name: getattr(args, name) for name in OPTIONS}, config_file=args.config)


def build_parser():
    parser = argparse.ArgumentParser(prog="jobjoker", description="JobJoker job runner")
    parser.add_argument("--version", action="version", version="jobjoker " + __version__)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    server_command(commands, "serve", serve_command, help="run the server",
                   description="Run the JobJoker server.")
    backup = server_command(
        commands, "backup", backup_command,
        help="copy the database and what a restore needs into a new directory",
        description="Copy the database (consistently, while the server runs), the secret key, "
                    "the running jobs' spools and the workers into the new directory PATH, "
                    "laid out as a data dir. Give the server's options (or --config) so that "
                    "it finds them; see docs/deploy.md, Backups and restores.")
    backup.add_argument("path", metavar="PATH", help="the backup's directory (must not exist)")
    reset = server_command(
        commands, "reset-admin", reset_admin_command,
        help="give an admin a new password when no admin can sign in",
        description="Make USERNAME (default admin) an active admin with a new password, asked "
                    "for (or taken from JOBJOKER_NEW_PASSWORD), creating it if missing, and end "
                    "its sessions. It opens the server's database itself: give the server's "
                    "options (or --config). The server may be running.")
    reset.add_argument("username", nargs="?", default="admin")
    prune = server_command(
        commands, "prune", prune_command,
        help="delete the finished jobs, audit entries and the like that retention lets go",
        description="Delete now what the server's retention deletes every --prune-interval: "
                    "finished jobs beyond --keep-days or --keep-per-worker, audit entries "
                    "beyond --keep-audit-days, spent sessions and tokens, old webhook "
                    "deliveries and schedule runs, unused code versions (docs/deploy.md, "
                    "Retention). It opens the server's database itself: give the server's "
                    "options (or --config). The server may be running.")
    prune.add_argument("--dry-run", action="store_true",
                       help="list what would go (counts per kind, the first job ids); "
                            "change nothing")
    prune.add_argument("--show", type=int, default=50, metavar="N",
                       help="list at most N job ids (default 50)")
    prune.add_argument("--json", action="store_true", help="print the report as JSON")
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
    try:
        config = server_config(args)
    except StartupError as e:
        print("jobjoker: %s" % e.message, file=sys.stderr)
        return 2
    try:
        output = logsetup.configure(config, sys.stderr)
    except OSError as e:
        print("jobjoker: cannot open the log file %s: %s" % (config.log_file, e.strerror),
              file=sys.stderr)
        return 2
    for warning in startup_warnings(config, args.config):
        log.warning("%s", warning)
    try:
        return asyncio.run(serve(config, output))
    except StartupError as e:
        print("jobjoker: %s" % e.message, file=sys.stderr)
        if config.log_file:  # where the operator reads what the server did
            log.error("not started: %s", e.message)
        return 1


def backup_command(args):
    from jobjoker.backup import BackupFailed, make_backup

    try:
        manifest = make_backup(server_config(args), args.path)
    except (StartupError, BackupFailed) as e:
        print("jobjoker: backup failed: %s" % e.message, file=sys.stderr)
        return 1
    print("backed up %s, %d running job folder(s), %d worker(s) and the secret key (%s) "
          "into %s" % (manifest["database"], len(manifest["jobs"]["copied"]),
                       manifest["workers"], manifest["secret_key"] or "none", args.path))
    return 0


def reset_admin_command(args):
    from jobjoker.admin_recovery import reset_admin
    from jobjoker.cli_actions import new_password

    try:
        config = server_config(args)
        password = new_password("new password for %s: " % args.username)
    except StartupError as e:
        print("jobjoker: %s" % e.message, file=sys.stderr)
        return 2
    except ValueError as e:
        print("jobjoker: %s" % e, file=sys.stderr)
        return 2
    try:
        print(reset_admin(config, args.username, password))
    except StartupError as e:
        print("jobjoker: reset-admin failed: %s" % e.message, file=sys.stderr)
        return 1
    return 0


def prune_command(args):
    import json

    from jobjoker.prune_command import describe, run_prune
    from jobjoker.retention import Policy

    try:
        config = server_config(args)
    except StartupError as e:
        print("jobjoker: %s" % e.message, file=sys.stderr)
        return 2
    try:
        report = run_prune(config, dry_run=args.dry_run, shown=max(0, args.show))
    except StartupError as e:
        print("jobjoker: prune failed: %s" % e.message, file=sys.stderr)
        return 1
    print(json.dumps(report.to_dict()) if args.json else
          "\n".join(describe(report, Policy.of(config))))
    return 0


async def serve(config, output):
    from jobjoker.app import JobJokerServer  # the heavy imports only when serving

    # Whatever the server creates (database, spools, state) is for its own user only.
    os.umask(0o077)
    loop = asyncio.get_running_loop()
    server = JobJokerServer(config, admin_password=os.environ.get("JOBJOKER_ADMIN_PASSWORD"))
    reopening = set()  # the loop keeps only weak references to tasks

    def on_hangup():
        # logrotate's postrotate sends SIGHUP once it renamed the files: the server writes to a
        # new log file, and so does every supervisor it is connected to (asked, since SIGHUP
        # would end an older one). The default action of SIGHUP would end the server.
        output.reopen()
        if server.processes is not None:
            task = loop.create_task(server.processes.reopen_supervisor_logs())
            reopening.add(task)
            task.add_done_callback(reopening.discard)

    loop.add_signal_handler(signal.SIGHUP, on_hangup)
    await server.start()
    announce(server)
    stopping = asyncio.Event()

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
    url = "%s://%s:%d%s/" % ("https" if config.tls else "http", host, config.port,
                             config.base_path)
    log.info("JobJoker %s listening on %s (data in %s, workers in %s)",
             __version__, url, config.data_dir, config.workers_dir)
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
            show_first_password(password, url, config.data_dir)
        else:
            log.info("created user 'admin' with the password from JOBJOKER_ADMIN_PASSWORD")
    else:
        log.info("sign in at %s with an existing user", url)
    hint = command_line_hint()
    if hint:
        log.info("%s", hint)


FIRST_PASSWORD_FILE = "initial-admin-password"  # in the data dir, when there is no console


def show_first_password(password, url, data_dir, console=None):
    """Give the generated password of the first admin to whoever started the server: on the
    console when it is a terminal, else (a service, output to a file or the journal) in a file
    only the server's user may read, whose path is logged. It never goes into a log: it is
    stored hashed and cannot be shown again."""
    console = console or sys.stderr
    if console.isatty():
        print("\n  Created user 'admin' with password: %s\n"
              "  Sign in with it at %s; set JOBJOKER_ADMIN_PASSWORD to choose one.\n"
              % (password, url), file=console, flush=True)
        return None
    path = os.path.join(data_dir, FIRST_PASSWORD_FILE)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o600)
    try:
        os.fchmod(fd, 0o600)  # a file left there before keeps its mode otherwise
        os.write(fd, (password + "\n").encode())
    finally:
        os.close(fd)
    log.warning("created user 'admin'; its password is in %s (readable by this user only, as "
                "the console is no terminal): sign in at %s, change it, then delete the file",
                path, url)
    return path


def command_line_hint():
    """Where the ``jobjoker`` command of this Python is, when ``PATH`` does not reach it (a
    venv not activated, as after ``make serve``), and how to put it there; else None."""
    bin_dir = os.path.dirname(sys.executable)
    command = os.path.join(bin_dir, "jobjoker")
    activate = os.path.join(bin_dir, "activate")
    found = shutil.which("jobjoker")
    if not os.path.exists(command) or (found and os.path.realpath(found)
                                       == os.path.realpath(command)):
        return None
    if os.path.exists(activate):
        return ("the command line is %s; `. %s` in a shell puts it on PATH"
                % (_shown(command), _shown(activate)))
    return "the command line is %s (not on PATH)" % _shown(command)


def _shown(path):
    """``path`` relative to the working directory when it is inside it (``.venv/bin/...``)."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


if __name__ == "__main__":
    sys.exit(main())
