"""``bench/compare``: this checkout against another, in interleaved rounds.

Contract: ``main(argv)`` runs ``bench/run --only CASE --json`` of the other checkout
(``--baseline PATH``, with its own ``.venv``) and of this one, one after the other, ``--rounds``
times (A B A B ...), so that a machine whose speed drifts during the comparison weighs on both
alike. It prints, for every figure the two share, each side's median over the rounds (a
latency's p50 and p99, a rate's median, a value) and the ratio this/baseline, and writes all the
rounds' reports to ``--json``. Nothing is judged: the figures and their spread are the result.
"""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIGURES = {"latency": ("p50", "p99"), "rate": ("median",), "value": ("value",)}


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="bench/compare", description="This checkout's benchmarks against another "
        "checkout's, in interleaved rounds (see docs/performance.md).")
    parser.add_argument("--baseline", required=True, metavar="PATH",
                        help="the other checkout (it needs its own .venv: make .venv/.bench; "
                        "make .venv/.installed in a checkout older than that)")
    parser.add_argument("--only", action="append", required=True, metavar="CASE",
                        help="a case of bench/run (repeatable)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each (default 3)")
    parser.add_argument("--quick", action="store_true", help="small cases (a trial run)")
    parser.add_argument("--json", default=str(ROOT / "test-output" / "compare.json"),
                        metavar="PATH", help="where to write every round (default: %(default)s)")
    return parser.parse_args(argv)


def run_once(checkout, cases, quick, out):
    argv = [str(pathlib.Path(checkout) / "bench" / "run"), "--json", str(out)]
    for case in cases:
        argv += ["--only", case]
    if quick:
        argv.append("--quick")
    began = time.time()
    result = subprocess.run(argv, capture_output=True, text=True, cwd=checkout)
    if result.returncode not in (0, 1) or not out.exists():
        raise SystemExit("bench/run in %s failed (%s): %s" % (checkout, result.returncode,
                                                            result.stderr[-3000:]))
    report = json.loads(out.read_text())
    report["wall_seconds"] = round(time.time() - began, 1)
    return report


def figures(report):
    """{(case, row name, figure): number} of one report."""
    found = {}
    for case, result in report["cases"].items():
        for row in result.get("rows", []):
            for key in FIGURES.get(row["kind"], ()):
                value = row.get(key)
                if isinstance(value, (int, float)):
                    found[(case, row["name"], key)] = value
    return found


def main(argv=None):
    args = parse_args(argv)
    out_dir = pathlib.Path(args.json).parent
    out_dir.mkdir(parents=True, exist_ok=True)
    sides = {"baseline": os.path.abspath(args.baseline), "this": str(ROOT)}
    rounds = {"baseline": [], "this": []}
    for number in range(args.rounds):
        for side, checkout in sides.items():
            out = out_dir / ("compare-%s-%d.json" % (side, number))
            print("round %d/%d: %s (%s)" % (number + 1, args.rounds, side, checkout),
                  flush=True)
            rounds[side].append(run_once(checkout, args.only, args.quick, out))
    pathlib.Path(args.json).write_text(json.dumps(rounds, indent=2) + "\n")
    per_side = {side: [figures(report) for report in reports]
                for side, reports in rounds.items()}
    keys = [key for key in per_side["this"][0] if all(key in f for side in per_side.values()
                                                       for f in side)]
    print("\n%-60s %-6s %12s %12s %7s" % ("figure", "", "baseline", "this", "ratio"))
    for case, name, key in keys:
        medians = {side: statistics.median(f[(case, name, key)] for f in found)
                   for side, found in per_side.items()}
        ratio = medians["this"] / medians["baseline"] if medians["baseline"] else float("nan")
        print("%-60s %-6s %12.2f %12.2f %7.2f" % (("%s: %s" % (case, name))[:60], key,
                                                  medians["baseline"], medians["this"], ratio))
        spread = {side: sorted(f[(case, name, key)] for f in found)
                  for side, found in per_side.items()}
        print("%-60s %-6s %12s %12s" % ("", "(all)", _short(spread["baseline"]),
                                        _short(spread["this"])))
    print("\nwrote %s" % args.json)
    return 0


def _short(values):
    return "/".join("%.4g" % v for v in values)


if __name__ == "__main__":
    sys.exit(main())
