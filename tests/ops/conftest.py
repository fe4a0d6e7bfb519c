"""Helpers for the operations tests: free ports, bounded waits, `omnisched` subprocesses."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TypeVar

import pytest

T = TypeVar("T")
OMNISCHED = [sys.executable, "-m", "omnisched_allinone"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(what: str, probe: Callable[[], T | None], timeout_s: float = 30.0) -> T:
    """Poll `probe` until it returns something truthy; fail saying what never happened."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:g}s waiting for {what}")
        time.sleep(0.25)


def clean_env(**overrides: str) -> dict[str, str]:
    """The test process's environment without our settings, plus `overrides`."""
    ours = ("OMNISCHED_", "MONGODB_", "CELERY_", "GRPC_", "LOG_", "FLOWER_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    env.update(overrides)
    return env


def omnisched(
    args: list[str], env: Mapping[str, str], timeout_s: float = 30.0
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*OMNISCHED, *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        stdin=subprocess.DEVNULL,
    )


class Background:
    """An `omnisched …` process whose output is read from a pipe (as Docker reads a container's)
    into a file; stopped with SIGTERM."""

    def __init__(self, args: list[str], env: Mapping[str, str], output: Path) -> None:
        self.output = output
        self._file = output.open("wb")
        self.process = subprocess.Popen(
            [*OMNISCHED, *args],
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        self._reader = threading.Thread(target=self._copy, daemon=True)
        self._reader.start()

    def _copy(self) -> None:
        assert self.process.stdout is not None
        for line in iter(self.process.stdout.readline, b""):
            self._file.write(line)
            self._file.flush()

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def terminate(self, timeout_s: float = 40.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
            raise
        finally:
            self._reader.join(10)
            self._file.close()
        return code


@pytest.fixture
def background(tmp_path: Path) -> Iterator[Callable[..., Background]]:
    started: list[Background] = []

    def start(args: list[str], env: Mapping[str, str], name: str = "out") -> Background:
        process = Background(args, env, tmp_path / f"{name}-{len(started)}.txt")
        started.append(process)
        return process

    yield start
    for process in started:
        if process.process.poll() is None:
            process.process.kill()
            process.process.wait(10)


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A short directory for supervisord's unix socket (paths are limited to ~100 bytes)."""
    import shutil
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="omni-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"
