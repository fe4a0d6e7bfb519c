"""supervisord from `config/supervisord.conf`, the way `omnisched supervise` runs it: separate
grpc, worker and beat programs on the real RabbitMQ and Redis and a shared MongoDB (the test wire
server), restarted after a crash, stopped cleanly by SIGTERM, logging where the seed says."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pytest

from tests.ops.conftest import clean_env, free_port, omnisched, unique, wait_for

pytestmark = [pytest.mark.services, pytest.mark.slow]


def _status(env: dict[str, str]) -> dict[str, tuple[str, int | None]]:
    """`supervisorctl status` as {program: (state, pid)}."""
    result = omnisched(["supervisorctl", "status"], env)
    programs: dict[str, tuple[str, int | None]] = {}
    for line in result.stdout.splitlines():
        match = re.match(r"omnisched:(\w+)\s+(\w+)(?:\s+pid (\d+))?", line)
        if match:
            pid = int(match[3]) if match[3] else None
            programs[match[1]] = (match[2], pid)
    return programs


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_separate_programs_come_up_restart_after_a_crash_and_stop_on_sigterm(
    rabbitmq, redis_url, mongo_wire_url, background, short_dir: Path, tmp_path: Path
):
    # Given: supervise with one program per part (grpc, worker, beat) on shared servers
    logs = tmp_path / "logs"
    node = unique("ops-worker-") + "@test"
    env = clean_env(
        OMNISCHED_PARTS="grpc,worker,beat",
        OMNISCHED_SPLIT_PARTS="1",
        OMNISCHED_LOG_DIR=str(logs),
        OMNISCHED_SUPERVISOR_DIR=str(short_dir),
        OMNISCHED_GRPC_HOST="127.0.0.1",
        GRPC_PORT=str(free_port()),
        MONGODB_URL=mongo_wire_url,
        OMNISCHED_MONGODB_DATABASE=unique("ops_"),
        CELERY_BROKER_URL=rabbitmq,
        CELERY_RESULT_BACKEND=redis_url,
        OMNISCHED_WORKER_HOSTNAME=node,
        OMNISCHED_WORKER_CONCURRENCY="1",
        OMNISCHED_SEED_BUILTIN_JOBS="false",
        OMNISCHED_SHUTDOWN_GRACE_S="3",
    )
    supervisor = background(["supervise"], env, "supervisord")

    # Then: every part comes up and answers its health check
    wait_for(
        "grpc, worker and beat RUNNING",
        lambda: all(_status(env).get(p, ("",))[0] == "RUNNING" for p in ("grpc", "worker", "beat")),
        40,
    )
    assert _status(env)["http"][0] == "STOPPED"  # not named: not started
    wait_for(
        "omnisched check to pass",
        lambda: omnisched(["check", "--timeout", "2"], env).returncode == 0,
        40,
    )
    report = omnisched(["check", "--timeout", "2"], env)
    assert [line.split(":")[0] for line in report.stdout.splitlines()] == [
        "grpc",
        "worker",
        "beat",
    ], report.stdout
    assert "SERVING" in report.stdout and f"{node} answered ping" in report.stdout

    # When: the worker is killed
    _, old_pid = _status(env)["worker"]
    assert old_pid is not None
    os.kill(old_pid, signal.SIGKILL)

    # Then: supervisord starts a new one
    def restarted() -> int | None:
        state, pid = _status(env)["worker"]
        return pid if state == "RUNNING" and pid != old_pid else None

    new_pid = wait_for("the worker to be restarted", restarted, 30)
    assert new_pid != old_pid
    pids = [pid for _, pid in _status(env).values() if pid]

    # When: supervisord gets SIGTERM
    code = supervisor.terminate(timeout_s=40)

    # Then: it stops every program and exits cleanly
    assert code == 0, supervisor.text()[-3000:]
    assert not [pid for pid in pids if _alive(pid)]
    text = supervisor.text()
    for program in ("grpc", "worker", "beat"):
        assert re.search(rf"stopped: {program} \(exit status 0\)", text), text[-3000:]

    # And: the logs are where the seed says
    service_log = (logs / "scheduler_service.log").read_text()
    worker_log = (logs / "celery_worker.log").read_text()
    beat_log = (logs / "celery_beat.log").read_text()
    assert "api health changed to SERVING" in service_log
    assert "shutdown requested" in service_log
    assert node in worker_log
    assert "beat lease acquired" in beat_log
    assert (logs / "supervisord.log").exists()
    assert not (logs / "scheduler_http.log").exists()
