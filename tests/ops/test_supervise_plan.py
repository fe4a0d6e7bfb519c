"""What `omnisched supervise` asks of supervisord, given the parts (no processes started)."""

from __future__ import annotations

import pytest

from omnisched_allinone.ops_cli import OpsError, plan_programs, supervisor_env
from omnisched_allinone.settings import Settings

REAL = {
    "MONGODB_URL": "mongodb://db:27017",
    "CELERY_BROKER_URL": "amqp://guest:guest@mq:5672//",
}


@pytest.mark.parametrize(
    ("parts", "split", "programs"),
    [
        (("grpc", "http", "worker", "beat"), False, {"allinone": "grpc,http,worker,beat"}),
        (("worker",), False, {"worker": "worker"}),
        (("flower",), False, {"flower": ""}),
        (("grpc", "beat", "flower"), False, {"allinone": "grpc,beat", "flower": ""}),
        (("grpc", "worker", "beat"), True, {"grpc": "grpc", "worker": "worker", "beat": "beat"}),
    ],
)
def test_programs_for_parts(parts, split, programs):
    assert plan_programs(parts, split) == programs


def test_separate_processes_refuse_an_in_memory_store():
    settings = Settings(MONGODB_URL="memory://", CELERY_BROKER_URL=REAL["CELERY_BROKER_URL"])
    with pytest.raises(OpsError, match="memory://"):
        supervisor_env(settings, ("grpc", "worker"), split=True, base_env={})
    # one all-in-one process may keep it in memory
    env = supervisor_env(settings, ("grpc", "worker"), split=False, base_env={})
    assert env["OMNISCHED_AUTOSTART_ALLINONE"] == "true"


def test_flower_refuses_an_in_memory_broker():
    settings = Settings(MONGODB_URL=REAL["MONGODB_URL"], CELERY_BROKER_URL="memory://")
    with pytest.raises(OpsError, match="Flower"):
        supervisor_env(settings, ("flower",), split=False, base_env={})


def test_container_output_goes_to_stdout_and_metrics_ports_are_per_program(tmp_path):
    settings = Settings(**REAL, OMNISCHED_LOG_TO_STDOUT="1", OMNISCHED_METRICS_PORT="9100")
    env = supervisor_env(settings, ("grpc", "http", "worker", "beat"), split=True, base_env={})
    assert env["OMNISCHED_LOG_FILE_WORKER"] == "/dev/stdout"
    assert env["OMNISCHED_LOG_MAXBYTES"] == "0"
    ports = [env[f"OMNISCHED_METRICS_PORT_{p}"] for p in ("GRPC", "HTTP", "WORKER", "BEAT")]
    assert ports == ["9100", "9101", "9102", "9103"]
    assert [env[f"OMNISCHED_AUTOSTART_{p}"] for p in ("ALLINONE", "GRPC", "FLOWER")] == [
        "false",
        "true",
        "false",
    ]


def test_logs_go_to_the_seed_file_names(tmp_path):
    settings = Settings(**REAL, OMNISCHED_LOG_DIR=str(tmp_path))
    env = supervisor_env(settings, ("worker",), split=False, base_env={})
    assert env["OMNISCHED_LOG_FILE_GRPC"] == str(tmp_path / "scheduler_service.log")
    assert env["OMNISCHED_LOG_FILE_WORKER"] == str(tmp_path / "celery_worker.log")
    assert env["OMNISCHED_LOG_FILE_BEAT"] == str(tmp_path / "celery_beat.log")
    assert env["OMNISCHED_LOG_FILE_FLOWER"] == str(tmp_path / "flower.log")
    assert env["OMNISCHED_METRICS_PORT_WORKER"] == "0"
