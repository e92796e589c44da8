"""What each client subcommand does: ``(client, args) -> exit code``.

Contract: each action makes its requests through the ``jobjoker.client.Client`` it is given,
prints the result (``jobjoker.cli_output``) and returns an exit code (``EXIT_*``, explained to
users by ``EXIT_CODES_HELP``). A refusal of the server is raised as the client's
``ClientError``, for ``jobjoker.cli_commands`` to turn into a message and an exit code. Passwords
come from ``JOBJOKER_NEW_PASSWORD`` or the terminal, never from the command line. ``--follow``
prints entries as they come and ends with the job: ``EXIT_OK`` only if it ended done; ``run
--follow`` then prints the job's response, apart (``print_outcome``); a followed job's progress
goes to stderr (``cli_progress``). ``run --wait`` prints only the job's result, as JSON, once it
has ended, and exits with its outcome. ``run`` warns on standard
error when the worker declares no parameters and so checks none of those given.
"""
import getpass
import json
import os
import pathlib
import sys

from jobjoker import worker_settings
from jobjoker.cli_output import RESPONSE_HEADER, fail, first_line, format_time, print_entry, \
    print_fields, print_json, print_table, show, warn
from jobjoker.cli_progress import ProgressDisplay, print_result
from jobjoker.client_follow import Event
from jobjoker.client_transport import ClientError
from jobjoker.cli_waiting import WaitNotes, status_cell, waiting_note
from jobjoker.parameters import unchecked_note
from jobjoker.states import describe

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


def workers_ls(client, args):
    show(client.workers(), args, lambda workers: print_table(
        ["NAME", "SIZE", "MODIFIED", "DESCRIPTION"],
        [[w["name"], w["size"], format_time(w["modified"]), first_line(w["description"])]
         for w in workers]))
    return EXIT_OK


def workers_show(client, args):
    # A setting the worker does not declare is left out of the text: only what it sets shows.
    show(client.worker(args.name), args, lambda worker: print_fields(
        {key: value for key, value in worker.items()
         if value is not None or key not in worker_settings.SETTINGS}))
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
             [[j["id"], j["worker"], status_cell(j), format_time(j["created"]),
               "-" if j["duration"] is None else "%.1f s" % j["duration"]] for j in jobs]))
    return EXIT_OK


def jobs_show(client, args):
    show(client.job(args.job), args, print_fields)
    return EXIT_OK


def jobs_start(client, args):
    show(client.start(args.job), args,
         lambda job: print(waiting_note(job) or "job %s started (pid %s)" % (job["id"],
                                                                             job["pid"])))
    return EXIT_OK


def jobs_signal(client, args):
    """``stop`` or ``kill``, and with ``--wait`` until the job has ended."""
    job = getattr(client, args.signal_command)(args.job)
    if args.wait:
        job = client.wait(job["id"])
    if args.json:
        print_json(job)
    elif job["status"] in ("active", "paused"):  # still running: its end comes later
        print("job %s is %s" % (job["id"], "stopping" if args.signal_command == "stop"
                                else "being killed"))
    else:
        print("job %s %s" % (job["id"], describe(job["status"])))
    return EXIT_OK


def jobs_control(client, args):
    """``pause`` or ``resume``: the status follows once the process stopped or continued."""
    job = getattr(client, args.control_command)(args.job)
    show(job, args, lambda job: print("job %s is %s" % (
        job["id"], "pausing" if args.control_command == "pause" else "resuming")))
    return EXIT_OK


def jobs_rm(client, args):
    show(client.delete_job(args.job), args, lambda job: print("job %s deleted" % job["id"]))
    return EXIT_OK


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
        if username == me["username"]:  # admins too: one's own needs the current one
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
    if args.search is not None:
        if args.follow:
            raise ClientError("--search reads what is stored; it cannot --follow")
        for entry in client.search(args.job, args.search, args.ignore_case, stream):
            if not args.json:  # each match with its seq, to read around it (logs --json)
                entry["message"] = "%d: %s" % (entry["seq"], entry["message"])
            print_entry(Event(stream, entry["seq"], entry["message"], entry["time"]), args)
        return EXIT_OK
    if args.follow:
        return follow_job(client, args.job, args, {stream})
    for event in stored_entries(client, args.job, stream):
        print_entry(event, args)
    return EXIT_OK


def stored_entries(client, job_id, stream):
    """The stored entries of a job's ``stream`` as ``Event`` objects, read page by page."""
    read = client.response if stream == "response" else client.log
    offset = 0
    while True:
        page = read(job_id, offset, LOG_PAGE)
        for seq, entry in enumerate(page, offset):
            yield Event(stream, seq, entry["message"], entry["time"])
        if len(page) < LOG_PAGE:
            return
        offset += len(page)


def run_command(client, args):
    if args.wait and args.follow:
        return fail("--wait prints only the result, --follow the log: choose one", EXIT_USAGE)
    parameters = {**(args.params_json or {}), **dict(args.param)}
    job = client.create_job(args.worker, parameters or None, timeout=args.timeout,
                            start_at=args.at)  # --at: created scheduled, no start to send
    if parameters:
        warn_if_unchecked(client, args.worker)
    try:
        job = job if args.at is not None else client.start(job["id"])
    except ClientError as e:
        e.message = "job %s was created but did not start: %s" % (job["id"], e.message)
        raise
    if waiting_note(job) and not args.json:
        print(waiting_note(job), file=sys.stderr)
    if args.wait:
        return wait_for_result(client, job["id"])
    if args.follow:
        # JSON lines are labelled, so they carry the response as it comes; text shows the log
        # as it comes and the response once the job has ended, apart.
        if args.json:
            return follow_job(client, job["id"], args, {"log", "response"})
        return follow_job(client, job["id"], args, {"log"}, then=print_outcome)
    show(job, args, lambda job: print(job["id"]))
    return EXIT_OK


def print_outcome(client, job_id, args):
    """After a followed job's log: its response, under ``RESPONSE_HEADER`` (nothing when it
    has none). A job's structured result, once jobs have one, is printed here too."""
    entries = stored_entries(client, job_id, "response")
    first = next(entries, None)
    if first is None:
        return
    print(RESPONSE_HEADER)
    for event in (first, *entries):
        print_entry(event, args)


def warn_if_unchecked(client, worker):
    """Warn when ``worker`` declares no parameters: a misspelt ``-p`` name is then not refused,
    and is better seen before the job runs."""
    try:
        declared = client.worker(worker)["parameters"]
    except ClientError:  # the job is made: the warning is not worth failing the command for
        return
    if declared is None:
        warn(unchecked_note([worker]))


def wait_for_result(client, job_id):
    """``run --wait``: wait for the job's end without streaming, print only its result (JSON,
    on stdout; nothing when it has none); EXIT_OK only if it ended done, else why on stderr."""
    try:
        job = client.wait(job_id)
    except KeyboardInterrupt:
        return fail("stopped waiting; job %s keeps running (jobjoker jobs stop %s stops it)"
                    % (job_id, job_id), EXIT_INTERRUPTED)
    print_result(job)
    if job["status"] == "done":
        return EXIT_OK
    return fail("job %s %s%s" % (job_id, describe(job["status"]),
                                 ": %s" % job["error"] if job["error"] else ""), EXIT_FAILED)


def follow_job(client, job_id, args, streams, then=None):
    """Print the entries of ``streams`` live until the job ends (with --json, the status,
    progress and end events too, one per line; else its progress on stderr: a bar on a
    terminal, ``cli_progress``), then ``then(client, job_id, args)``; EXIT_OK only if it ends
    done."""
    status = None
    display = ProgressDisplay(sys.stderr)
    waits = WaitNotes()
    try:
        for event in client.follow(job_id, progress=True):
            if event.kind in streams:
                display.clear()
                print_entry(event, args)
                sys.stdout.flush()  # a pipe would hold the lines back; they are news now
                display.redraw()
            elif args.json and event.kind in ("status", "end", "progress"):
                print(json.dumps(event.to_dict(), ensure_ascii=False))
                sys.stdout.flush()
            elif event.kind == "status":
                display.status(event.job)
                note = waits.see(event.job)  # a waiting job: when it waits, when it starts
                if note and not args.json:
                    display.clear()
                    print(note, file=sys.stderr)
            elif event.kind == "progress":
                display.show(event.progress, event.message)
            if event.kind == "end":
                status = event.status
    except KeyboardInterrupt:
        display.close()
        return fail("stopped following; job %s keeps running (jobjoker jobs stop %s stops it)"
                    % (job_id, job_id), EXIT_INTERRUPTED)
    display.close()
    if then is not None:
        then(client, job_id, args)
    if status == "done":
        return EXIT_OK
    error = client.job(job_id)["error"]
    return fail("job %s %s%s" % (job_id, describe(status), ": %s" % error if error else ""),
                EXIT_FAILED)
