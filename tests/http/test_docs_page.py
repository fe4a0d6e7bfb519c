"""The interactive page at /docs renders in a real browser (headless Chromium, when installed)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.http.conftest import ThreadedApi

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)"
)


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-dev-shm-usage",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--window-size=1280,1600",
            "--virtual-time-budget=10000",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


@needs_chromium
def test_docs_page_renders_every_operation(tmp_path):
    with ThreadedApi() as running:
        url = f"{running.base_url}/docs"
        dom = chromium("--dump-dom", url, profile=tmp_path / "profile-dom")
        screenshot = tmp_path / "docs.png"
        shot = chromium(f"--screenshot={screenshot}", url, profile=tmp_path / "profile-shot")
    assert dom.returncode == 0, dom.stderr[-2000:]
    # Swagger UI drew the document (an OpenAPI 3.1 one) into the page: operations are listed.
    assert "omnisched job API" in dom.stdout
    assert "/v1/schedules:preview" in dom.stdout
    assert "Unable to render this definition" not in dom.stdout
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert screenshot.stat().st_size > 10_000
