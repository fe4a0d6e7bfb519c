"""The benchmarks still run: `python -m bench --smoke` (tiny sizes, no speed asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import __main__ as runner

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.services
@pytest.mark.slow
@pytest.mark.timeout(240)
def test_every_benchmark_runs_at_smoke_size(rabbitmq: str, redis_url: str, tmp_path: Path) -> None:
    # Given RabbitMQ and Redis on this machine
    out = tmp_path / "smoke.json"

    # When every benchmark runs at its smoke size
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=200,
        check=False,
    )

    # Then each one reported its rows, and the summary table was printed and written
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads(out.read_text())
    assert not summary["failures"]
    assert {r["benchmark"] for r in summary["reports"]} == set(runner.BENCHMARKS)
    assert all(r["rows"] for r in summary["reports"])
    assert "== summary (smoke" in done.stdout
