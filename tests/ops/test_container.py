"""The Dockerfile and docker-compose.yml: what they declare, and the image's own commands run in
this venv exactly as the Dockerfile runs them (its ENV, its CMD, its HEALTHCHECK). There is no
Docker engine here; `docker compose config` validates the compose file where the plugin exists."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from omnisched_allinone.ops_cli import LOG_FILES, PROGRAMS, supervisor_env, supervisord_conf
from omnisched_allinone.settings import Settings
from tests.ops.conftest import OMNISCHED, clean_env, free_port, omnisched, unique, wait_for

ROOT = Path(__file__).resolve().parents[2]
OURS = ("omnisched", "worker", "flower")
SEED_ENV = (
    "MONGODB_URL",
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
    "GRPC_PORT",
    "LOG_LEVEL",
    "SCRAPER_SERVICE_URL",
    "PRICING_SERVICE_URL",
)


def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) pairs, continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text()
    text = re.sub(r"\\\n", " ", text)
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1].strip())
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def exec_form(arguments: str) -> list[str]:
    return json.loads(arguments) if arguments.startswith("[") else shlex.split(arguments)


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction, arguments in dockerfile():
        if instruction == "ENV":
            env.update(item.split("=", 1) for item in shlex.split(arguments))
    return env


def image_cmd() -> list[str]:
    return exec_form([a for i, a in dockerfile() if i == "CMD"][-1])


def image_healthcheck() -> list[str]:
    arguments = [a for i, a in dockerfile() if i == "HEALTHCHECK"][-1]
    return exec_form(arguments.split("CMD", 1)[1].strip())


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


# -- what the files declare ------------------------------------------------------------------------


def test_dockerfile_builds_a_wheel_then_runs_supervise_as_a_non_root_user():
    instructions = dockerfile()
    stages = [a for i, a in instructions if i == "FROM"]
    assert len(stages) == 2 and all(re.match(r"python:3\.1[1-9]-slim", s) for s in stages)
    assert "build --wheel" in " ".join(a for i, a in instructions if i == "RUN")
    users = [a for i, a in instructions if i == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert set([a for i, a in instructions if i == "EXPOSE"][-1].split()) == {
        "50054",
        "8054",
        "5555",
    }
    assert image_cmd() == ["omnisched", "supervise"]
    assert image_healthcheck() == ["omnisched", "check"]
    assert image_env()["OMNISCHED_LOG_TO_STDOUT"] == "1"


def test_compose_has_the_servers_the_all_in_one_scalable_workers_and_flower():
    services = compose()["services"]
    assert {"rabbitmq", "redis", "mongodb", "omnisched", "worker", "flower"} <= set(services)
    assert {"5672:5672", "15672:15672"} <= set(services["rabbitmq"]["ports"])
    assert "management" in services["rabbitmq"]["image"]
    assert any(v.endswith(":/data/db") for v in services["mongodb"]["volumes"])
    assert {"50054:50054", "8054:8054"} <= set(services["omnisched"]["ports"])
    assert "5555:5555" in services["flower"]["ports"]
    # --scale needs a service with no fixed host port and no container name
    assert "ports" not in services["worker"] and "container_name" not in services["worker"]
    parts = {name: services[name]["environment"]["OMNISCHED_PARTS"] for name in OURS}
    assert parts["omnisched"] == "grpc,http,worker,beat"
    assert parts["worker"] == "worker"
    assert parts["flower"] == "flower"
    assert "FLOWER_BASIC_AUTH" in services["flower"]["environment"]
    for name in OURS:
        env = services[name]["environment"]
        assert set(SEED_ENV) <= set(env), name
        assert env["MONGODB_URL"] == "mongodb://admin:password123@mongodb:27017"
        assert env["CELERY_BROKER_URL"] == "amqp://guest:guest@rabbitmq:5672//"
        assert env["CELERY_RESULT_BACKEND"] == "redis://redis:6379/0"
        # Settings reads every variable compose sets (a typo would be silently ignored)
        known = {f.validation_alias for f in Settings.model_fields.values()}
        assert set(env) <= known, set(env) - known


def test_compose_file_is_valid_for_docker_compose():
    docker = shutil.which("docker")
    probe = subprocess.run([docker, "compose", "version"], capture_output=True) if docker else None
    if probe is None or probe.returncode != 0:
        pytest.skip("the docker compose plugin is not installed here")
    result = subprocess.run(
        [docker, "compose", "-f", str(ROOT / "docker-compose.yml"), "config", "--quiet"],
        capture_output=True,
        text=True,
        env={"OMNISCHED_API_TOKENS": "t" * 32, "FLOWER_BASIC_AUTH": "admin:pw", "PATH": "/usr/bin"},
    )
    assert result.returncode == 0, result.stderr


def test_supervisord_conf_ships_in_the_package_and_every_variable_it_expands_is_set():
    conf = supervisord_conf()
    assert conf.is_file()
    assert (ROOT / "supervisord.conf").resolve() == (ROOT / "config" / "supervisord.conf")
    text = conf.read_text()
    env = supervisor_env(Settings(), ("grpc", "http", "worker", "beat"), split=False, base_env={})
    assert set(re.findall(r"%\(ENV_(\w+)\)s", text)) <= set(env)
    for program in PROGRAMS:
        assert f"[program:{program}]" in text
    assert set(LOG_FILES.values()) >= {
        "scheduler_service.log",
        "celery_worker.log",
        "celery_beat.log",
        "flower.log",
    }
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"config" = "omnisched_allinone/config"' in pyproject  # the wheel carries it


# -- the image's commands, run here ----------------------------------------------------------------


@pytest.mark.services
@pytest.mark.slow
def test_the_image_command_serves_and_its_healthcheck_passes(
    rabbitmq, redis_url, mongo_wire_url, background, short_dir, tmp_path
):
    # Given: the Dockerfile's environment and compose's variables, pointed at this machine's
    # servers (ports picked free so that nothing here clashes)
    token = unique("token-")
    env = clean_env(**image_env())
    env.update(
        OMNISCHED_SUPERVISOR_DIR=str(short_dir),
        OMNISCHED_LOG_DIR=str(tmp_path / "logs"),
        GRPC_PORT=str(free_port()),
        OMNISCHED_HTTP_PORT=str(free_port()),
        MONGODB_URL=mongo_wire_url,
        OMNISCHED_MONGODB_DATABASE=unique("image_"),
        CELERY_BROKER_URL=rabbitmq,
        CELERY_RESULT_BACKEND=redis_url,
        OMNISCHED_API_TOKENS=token,
        OMNISCHED_WORKER_HOSTNAME=unique("image-") + "@test",
        OMNISCHED_SEED_BUILTIN_JOBS="false",
        OMNISCHED_SHUTDOWN_GRACE_S="3",
    )
    command = image_cmd()
    assert command[0] == "omnisched"
    container = background([*command[1:]], env, "container")

    # Then: the HEALTHCHECK command passes once the parts are up, one line per part
    health = image_healthcheck()
    wait_for(
        "the image's HEALTHCHECK to pass",
        lambda: omnisched([*health[1:], "--timeout", "2"], env).returncode == 0,
        45,
    )
    report = omnisched(health[1:], env)
    assert [line.split(":")[0] for line in report.stdout.splitlines()] == [
        "grpc",
        "http",
        "worker",
        "beat",
    ]

    # When: the container is stopped (SIGTERM to supervisord)
    code = container.terminate()

    # Then: it drains and exits 0; output went to stdout (nothing under the log dir but
    # supervisord's socket dir), and no secret was printed
    output = container.text()
    assert code == 0, output[-3000:]
    assert "stopped: allinone (exit status 0)" in output
    assert "omnisched running parts: grpc, http, worker, beat" in output
    assert "shutdown requested" in output
    assert not (tmp_path / "logs").exists()
    assert token not in output
    assert OMNISCHED[0]  # the venv's python ran it: `omnisched supervise` execs supervisord


def test_healthcheck_fails_with_one_line_per_part_when_nothing_runs(short_dir):
    env = clean_env(
        GRPC_PORT=str(free_port()),
        OMNISCHED_HTTP_PORT=str(free_port()),
        MONGODB_URL="memory://",
        CELERY_BROKER_URL="memory://",
        OMNISCHED_PARTS="grpc,http,worker,beat",
    )
    result = omnisched(["check", "--timeout", "1"], env)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["grpc", "http", "worker", "beat"]
    assert all(": FAILED (" in line for line in lines), lines
