"""``bench/run``: run the benchmark cases, print a table, write JSON.

Contract: ``main(argv)`` runs every case (or ``--only CASE``), small with ``--quick``, and writes
``{"machine", "quick", "cases": {name: {"title", "target", "met", "rows", ...}}}`` to ``--json``
(default test-output/bench.json). Each row is one figure: JobJoker's or a baseline's
(``"baseline": true``), a latency (p50/p99/min/max in ms), a rate (median of rounds) or a value;
a figure that cannot be measured in this run is a row of kind ``unavailable`` with the reason.
A case that fails is recorded with its error and the others still run. Exit status: 0 when every
case ran; 1 when one failed, or when a baseline was unavailable although required
(``--require-baselines``, the default when ``CI=true``).
"""
import argparse
import dataclasses
import importlib
import json
import os
import pathlib
import signal
import sys
import time
import traceback

from bench.harness import ROOT, machine

CASES = {
    "start": "bench.case_start",
    "throughput": "bench.case_throughput",
    "logs": "bench.case_logs",
    "fanout": "bench.case_fanout",
    "reads": "bench.case_reads",
    "memory": "bench.case_memory",
    "load": "bench.case_load",
    "abuse": "bench.case_abuse",
    "search": "bench.case_search",
    "usage": "bench.case_usage",
    "progress": "bench.case_progress",
    "queue": "bench.case_queue",
    "prune": "bench.case_prune",
    "schedule": "bench.case_schedule",
}


@dataclasses.dataclass(frozen=True)
class Options:
    quick: bool
    redis_url: str
    require_baselines: bool


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="bench/run", description="JobJoker's benchmark suite: every figure beside its "
        "baselines from the same run (see docs/performance.md).")
    parser.add_argument("--quick", action="store_true",
                        help="every case small (seconds each): what CI runs")
    parser.add_argument("--only", action="append", choices=sorted(CASES), metavar="CASE",
                        help="run only this case (repeatable): %s" % ", ".join(CASES))
    parser.add_argument("--json", default=str(ROOT / "test-output" / "bench.json"),
                        metavar="PATH", help="where to write the results (default: %(default)s)")
    parser.add_argument("--markdown", metavar="PATH",
                        help="also write the table in Markdown (as in docs/performance.md)")
    parser.add_argument("--redis-url", default=os.environ.get("JJ_BENCH_REDIS_URL",
                                                              "redis://127.0.0.1:6379/0"),
                        help="Redis for the RQ and Celery baselines (default: %(default)s)")
    ci = os.environ.get("CI", "").lower() == "true"
    parser.add_argument("--require-baselines", action=argparse.BooleanOptionalAction, default=ci,
                        help="exit 1 when a baseline cannot run (default: on when CI=true)")
    return parser.parse_args(argv)


def format_figure(row):
    kind = row["kind"]
    if kind == "latency":
        return ("p50 %.2f  p99 %.2f  min %.2f  max %.2f ms (n=%d)"
                % (row["p50"], row["p99"], row["min"], row["max"], row["n"]))
    if kind == "rate":
        return "%s %s (median of %d: %s)" % (
            format_number(row["median"]), row["unit"], row["n"],
            ", ".join(format_number(r) for r in row["rounds"]))
    if kind == "value":
        extra = ["%s %s" % (key.replace("_", " "), format_number(value))
                 for key, value in row.items() if key not in ROW_KEYS]
        return "%s %s%s" % (format_number(row["value"]), row["unit"],
                            " (%s)" % ", ".join(extra) if extra else "")
    return "not available: %s" % row["reason"]


ROW_KEYS = {"name", "baseline", "kind", "unit", "value", "info"}


def format_number(value):
    if isinstance(value, float) and value < 100:
        return "%.2f" % value
    return "{:,}".format(round(value))


def print_case(name, result, out=sys.stdout):
    target = result.get("target") or ""
    met = result.get("met")
    verdict = "error" if "error" in result else \
        "n/a" if met is None else "met" if met else "NOT met"
    out.write("\n== %s (%s): target %s -> %s   [%.0f s, load %s]\n" % (
        name, result.get("title", ""), target, verdict, result.get("seconds", 0),
        " -> ".join("%.1f" % load for load in result.get("load_average", []))))
    if "error" in result:
        out.write("   ERROR: %s\n" % result["error"].strip().splitlines()[-1])
    for row in result.get("rows", []):
        label = ("baseline  " if row["baseline"] else
                 "  (info)  " if row.get("info") else "JobJoker  ")
        out.write("   %s %-60s %s\n" % (label, row["name"][:60], format_figure(row)))
    for note in result.get("notes", []):
        out.write("   note: %s\n" % note)
    out.flush()


def markdown_table(report):
    """The results as a Markdown table: one line per figure, the target on the case's first."""
    lines = ["| Case | Measured | Figure | Target | Met |", "|---|---|---|---|---|"]
    for name, result in report["cases"].items():
        met = result.get("met")
        verdict = "error" if "error" in result else "n/a" if met is None else \
            "yes" if met else "**no**"
        rows = result.get("rows") or [{"name": "(failed)", "baseline": False,
                                       "kind": "unavailable", "reason": "see the error"}]
        for index, row in enumerate(rows):
            who = "baseline: " if row["baseline"] else "(info) " if row.get("info") else ""
            lines.append("| %s | %s%s | %s | %s | %s |" % (
                name if index == 0 else "", who, row["name"].strip().replace("|", "\\|"),
                format_figure(row).replace("|", "\\|"),
                result.get("target", "") if index == 0 else "", verdict if index == 0 else ""))
    return "\n".join(lines) + "\n"


def run_case(name, options):
    module = importlib.import_module(CASES[name])
    load_before = os.getloadavg()[0]
    began = time.perf_counter()
    try:
        result = module.run(options)
    except Exception:
        result = {"title": getattr(module, "TITLE", name), "target": getattr(module, "TARGET", ""),
                  "met": None, "rows": [], "error": traceback.format_exc()}
    result["seconds"] = round(time.perf_counter() - began, 1)
    # Other work on a two-core machine shows up in every figure: keep the load beside them.
    result["load_average"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    if options.quick and result.get("met") is not None:
        result["met_at_quick_scale"] = result["met"]
        result["met"] = None  # the targets speak of full-size runs
    return result


def on_sigterm(signum, frame):
    raise KeyboardInterrupt  # unwinds every case's cleanup, as Ctrl-C does


def main(argv=None):
    args = parse_args(argv)
    options = Options(quick=args.quick, redis_url=args.redis_url,
                      require_baselines=args.require_baselines)
    os.environ["JJ_BENCH_REDIS_URL"] = args.redis_url  # read by bench.baseline_celery
    signal.signal(signal.SIGTERM, on_sigterm)
    names = [name for name in CASES if not args.only or name in args.only]
    report = {"machine": machine(), "quick": args.quick, "started": time.time(), "cases": {}}
    print("JobJoker benchmarks%s on %d cores (%s)" % (
        " (quick)" if args.quick else "", report["machine"]["cpus"],
        report["machine"]["cpu_model"]))
    try:
        failed = run_cases(names, options, report)
    except KeyboardInterrupt:
        print("\ninterrupted: every process this run started has been stopped")
        return 130
    report["seconds"] = round(time.time() - report["started"], 1)
    path = pathlib.Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    if args.markdown:
        pathlib.Path(args.markdown).write_text(markdown_table(report))
    print("\nwrote %s (%.0f s)" % (path, report["seconds"]))
    return 1 if failed else 0


def run_cases(names, options, report):
    """Run the cases in turn, printing each; True when one failed or lacked a baseline."""
    failed = False
    for name in names:
        result = run_case(name, options)
        report["cases"][name] = result
        print_case(name, result)
        if "error" in result:
            failed = True
            sys.stderr.write(result["error"])
        missing = [row for row in result["rows"]
                   if row["baseline"] and row["kind"] == "unavailable"]
        if missing and options.require_baselines:
            failed = True
            sys.stderr.write("%s: required baseline(s) unavailable: %s\n" % (
                name, "; ".join("%s: %s" % (row["name"], row["reason"]) for row in missing)))
    return failed
