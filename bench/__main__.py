"""`python -m bench`: every benchmark, each in its own process, then one summary table.

The table is printed at the end and written as JSON to bench/results/latest.json
(bench/results/smoke.json for --smoke, which only checks that every benchmark still runs).
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.common import RESULTS_DIR, environment, format_table, need_services

BENCHMARKS = ("latency", "throughput", "beat", "api", "footprint")
# Each benchmark's own time bound (it also caps its slow steps); the runner enforces it.
TIMEOUT_S = {"full": 900, "quick": 300, "smoke": 120}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="smaller sizes (a few minutes)")
    size.add_argument("--smoke", action="store_true", help="tiny sizes, well under a minute")
    p.add_argument(
        "--only", default=",".join(BENCHMARKS), help=f"comma-separated: {', '.join(BENCHMARKS)}"
    )
    p.add_argument("--out", type=Path, default=None, help="JSON summary path")
    args = p.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(BENCHMARKS))
    if unknown:
        p.error(f"unknown benchmark(s): {', '.join(unknown)}")
    need_services()
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    out = args.out or RESULTS_DIR / ("smoke.json" if args.smoke else "latest.json")
    flags = [f"--{mode}"] if mode != "full" else []

    reports, failures = [], []
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for name in chosen:
            path = Path(tmp) / f"{name}.json"
            command = [sys.executable, "-m", f"bench.{name}", *flags, "--json", str(path)]
            print(f"\n== {name}: {shlex.join(command[1:])}", flush=True)
            t0 = time.perf_counter()
            try:
                code = subprocess.run(command, timeout=TIMEOUT_S[mode], check=False).returncode
            except subprocess.TimeoutExpired:
                code = "timeout"
            took = time.perf_counter() - t0
            if code != 0 or not path.exists():
                failures.append(f"{name}: exit {code} after {took:.0f}s")
                continue
            report = json.loads(path.read_text())
            report["seconds"] = round(took, 1)
            reports.append(report)

    rows = [row for report in reports for row in report["rows"]]
    summary = {
        "command": shlex.join(
            ["python", "-m", "bench", *(argv if argv is not None else sys.argv[1:])]
        ),
        "mode": mode,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - began, 1),
        "environment": environment(),
        "rows": rows,
        "reports": reports,
        "failures": failures,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2, default=str))
    print(f"\n== summary ({mode}, {summary['seconds']:.0f}s) -> {out}")
    print(format_table(rows))
    for report in reports:
        for note in report["notes"]:
            print(f"  {report['benchmark']}: {note}")
    for failure in failures:
        print(f"  FAILED {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
