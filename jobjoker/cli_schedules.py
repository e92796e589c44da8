"""The ``jobjoker schedules`` subcommands: list, show, add, edit, pause, resume, delete and
run-now cron schedules through ``jobjoker.client``.

Contract: ``add_schedule_commands(command_group, command, add_parameter_options,
finite_float)`` adds them to the parser (the helpers are ``jobjoker.cli_commands``'); each
action prints a table or the schedule's id (``--json``: the server's data) and returns an exit
code of ``jobjoker.cli_actions``. ``add`` and ``edit`` take parameters as ``run`` does (``-p
KEY=VALUE``, ``--params-json``).
"""
from jobjoker.cli_actions import EXIT_FAILED, EXIT_OK
from jobjoker.cli_output import format_time, print_fields, print_table, show
from jobjoker.schedulespec import MISSED_POLICIES, OVERLAP_POLICIES

RUN_FIELDS = ("name", "worker", "cron", "timezone", "timeout", "missed", "overlap")


def add_schedule_commands(command_group, command, add_parameter_options, finite_float):
    """``jobjoker schedules list|show|add|edit|pause|resume|delete|run-now``."""
    group = command_group("schedules", "list, add, edit, pause, resume, delete and run cron "
                                       "schedules of jobs")
    listing = command(group, "list", schedules_list, "list the schedules with their next run "
                                                     "and last outcome")
    listing.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    listing.add_argument("--offset", type=int, default=0, help="skip this many (default 0)")
    command(group, "show", schedules_show, "show a schedule, its next five times and its "
                                           "last runs").add_argument("schedule", metavar="ID")
    add = command(group, "add", schedules_add, "create a schedule; prints its id")
    add.add_argument("worker")
    add.add_argument("cron", help='a cron expression: five fields ("0 3 * * *"), an @name '
                                  '(@hourly, @daily...), or six with seconds last')
    _add_fields(add, add_parameter_options, finite_float, creating=True)
    edit = command(group, "edit", schedules_edit, "change a schedule's fields (those given)")
    edit.add_argument("schedule", metavar="ID")
    edit.add_argument("--worker")
    edit.add_argument("--cron", help="a new cron expression")
    _add_fields(edit, add_parameter_options, finite_float, creating=False)
    for name, action, summary in (
            ("pause", schedules_pause, "pause a schedule: it fires no more until resumed"),
            ("resume", schedules_resume, "resume a paused schedule from its next time"),
            ("delete", schedules_delete, "delete a schedule (its jobs stay)"),
            ("run-now", schedules_run_now, "fire a schedule once now; prints the job's id")):
        command(group, name, action, summary).add_argument("schedule", metavar="ID")


def _add_fields(parser, add_parameter_options, finite_float, creating):
    parser.add_argument("--tz", "--timezone", dest="timezone", metavar="ZONE",
                        help="an IANA time zone%s" % (" (default UTC)" if creating else ""))
    parser.add_argument("--name")
    parser.add_argument("--timeout", type=finite_float, metavar="SECONDS",
                        help="each job's time limit")
    parser.add_argument("--missed", choices=MISSED_POLICIES,
                        help="times missed while no server ran%s" % (
                            " (default skip)" if creating else ""))
    parser.add_argument("--overlap", choices=OVERLAP_POLICIES,
                        help="a previous job still runs%s" % (
                            " (default skip)" if creating else ""))
    add_parameter_options(parser)


def _fields(args):
    fields = {key: getattr(args, key, None) for key in RUN_FIELDS}
    fields = {key: value for key, value in fields.items() if value is not None}
    if args.params_json is not None or args.param:
        fields["parameters"] = {**(args.params_json or {}), **dict(args.param)}
    return fields


def _last(schedule):
    runs = schedule["runs"]
    if not runs:
        return "-"
    run = runs[0]
    return "%s %s" % (run["outcome"], run["job_status"] or run["detail"] or "")


def schedules_list(client, args):
    show(client.schedules(args.offset, args.limit), args, lambda schedules: print_table(
        ["ID", "NAME", "WORKER", "CRON", "ZONE", "NEXT RUN", "LAST RUN"],
        [[s["id"], s["name"] or "-", s["worker"], s["cron"], s["timezone"],
          "paused" if s["paused"] else format_time(s["next_run"]), _last(s)]
         for s in schedules]))
    return EXIT_OK


def schedules_show(client, args):
    show(client.schedule(args.schedule), args, print_schedule)
    return EXIT_OK


def print_schedule(schedule):
    print_fields({key: value for key, value in schedule.items()
                  if key not in ("next_runs", "runs")})
    print("\nnext runs:")
    for when in schedule["next_runs"] or ["- (paused)"]:
        print("  %s" % (format_time(when) if isinstance(when, float) else when))
    print("\nlast runs:")
    print_table(["SCHEDULED FOR", "OUTCOME", "JOB", "STATUS", "DETAIL"], [
        [format_time(r["scheduled_for"]), r["outcome"], r["job"] or "-",
         r["job_status"] or "-", r["detail"] or ""] for r in schedule["runs"]])


def schedules_add(client, args):
    fields = _fields(args)
    fields.pop("cron")
    schedule = client.create_schedule(fields.pop("worker"), args.cron,
                                      fields.pop("timezone", "UTC"),
                                      fields.pop("parameters", None), **fields)
    show(schedule, args, lambda schedule: print(schedule["id"]))
    return EXIT_OK


def schedules_edit(client, args):
    show(client.update_schedule(args.schedule, **_fields(args)), args, print_schedule)
    return EXIT_OK


def schedules_pause(client, args):
    show(client.pause_schedule(args.schedule), args,
         lambda s: print("schedule %s paused" % s["id"]))
    return EXIT_OK


def schedules_resume(client, args):
    show(client.resume_schedule(args.schedule), args, lambda s: print(
        "schedule %s resumed; next run %s" % (s["id"], format_time(s["next_run"]))))
    return EXIT_OK


def schedules_delete(client, args):
    show(client.delete_schedule(args.schedule), args,
         lambda s: print("schedule %s deleted" % s["id"]))
    return EXIT_OK


def schedules_run_now(client, args):
    schedule = client.run_schedule(args.schedule)
    run = schedule["runs"][0]
    show(schedule, args, lambda s: print(run["job"] if run["job"] else "%s: %s" % (
        run["outcome"], run["detail"])))
    return EXIT_FAILED if run["outcome"] == "failed" else EXIT_OK
