"""The launcher: useful help, and `run --dev` starts serving and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import grpc
import pytest
from click.testing import CliRunner
from grpc_health.v1 import health_pb2, health_pb2_grpc

from omnisched_allinone.cli import main


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("args", [["--help"], ["run", "--help"]])
def test_help_is_useful(args):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0
    assert "omnisched" in result.output or "--dev" in result.output
    if args == ["run", "--help"]:
        assert "--parts" in result.output and "memory://" in result.output


def test_version():
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and "omnisched" in result.output


def test_unknown_part_is_a_usage_error():
    result = CliRunner().invoke(main, ["run", "--parts", "grpc,teleporter"])
    assert result.exit_code == 2
    assert "unknown part 'teleporter'" in result.output


def wait_serving(port: int, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            try:
                answer = health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if answer.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.1)
    raise AssertionError(f"not SERVING on {port} within {timeout_s}s")


def test_run_dev_serves_then_stops_cleanly_on_sigterm(tmp_path):
    port = free_port()
    env = {**os.environ, "GRPC_PORT": str(port)}
    process = subprocess.Popen(
        [sys.executable, "-m", "omnisched_allinone", "run", "--dev", "--parts", "grpc"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    try:
        wait_serving(port)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    assert f"127.0.0.1:{port}" in output
    assert "nothing survives a restart" in output
    assert "stopped" in output
