"""How the client subcommands print: tables, fields, times, entries, JSON, and errors.

Contract: everything goes to stdout except the message of ``fail``, which writes ``jobjoker:
message`` to stderr and returns the exit code it is given. With ``--json`` (``args.json``) a command prints one JSON
document (``show``), or one JSON object per line for entries (``print_entry``); otherwise
aligned tables (``print_table``) or one ``key  value`` line per field (``print_fields``), times
in local time. Standard library only.
"""
import datetime
import json
import sys

TIME_FIELDS = {"created", "starttime", "stoptime", "stop_requested", "modified"}
SIZE_FIELDS = {"rss_bytes", "max_rss_bytes"}  # a job's memory, shown in MiB
RESPONSE_HEADER = "--- response ---"  # after a followed job's log, before its response


def fail(message, code):
    print("jobjoker: %s" % message, file=sys.stderr)
    return code


def warn(message):
    """A warning on standard error: the command goes on."""
    print("jobjoker: warning: %s" % message, file=sys.stderr)


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
    if key == "cpu_seconds":
        return "%.2f s" % value
    if key in SIZE_FIELDS:
        return "%.1f MiB" % (value / 1024 / 1024)
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def attempt_text(job, short=False):
    """``attempt 2 of 4`` (``short``: ``2/4``) of a job in a retry chain
    (``jobjoker.retries``); "" for a job made before retries."""
    if job.get("attempt") is None or job.get("retries") is None:
        return ""
    return ("%d/%d" if short else "attempt %d of %d") % (job["attempt"], job["retries"] + 1)


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
