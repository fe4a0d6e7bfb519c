"""Settings: one place, every variable documented, secrets masked."""

from __future__ import annotations

from pathlib import Path

import pytest

from omnisched_allinone.app import banner, parse_parts
from omnisched_allinone.settings import Settings, config_dir, mask_secrets

ROOT = Path(__file__).resolve().parent.parent


def test_every_variable_is_documented_in_config_env_md():
    documented = (ROOT / "config" / "env.md").read_text()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        assert isinstance(alias, str), name
        assert f"`{alias}`" in documented, f"{alias} is missing from config/env.md"


def test_seed_variable_names_are_read(monkeypatch):
    monkeypatch.setenv("MONGODB_URL", "mongodb://db:27017")
    monkeypatch.setenv("GRPC_PORT", "6000")
    monkeypatch.setenv("SCRAPER_SERVICE_URL", "scraper:1")
    monkeypatch.setenv("OMNISCHED_TARGETS", "inventory-service=inv:2, search-service=search:3")
    settings = Settings()
    assert settings.mongodb_url == "mongodb://db:27017"
    assert settings.grpc_port == 6000
    assert settings.target_services == {
        "scraper-service": "scraper:1",
        "pricing-service": "pricing-service:50052",
        "inventory-service": "inv:2",
        "search-service": "search:3",
    }


def test_dev_is_all_memory_and_loopback():
    dev = Settings().as_dev()
    assert (dev.mongodb_url, dev.celery_broker_url, dev.celery_result_backend) == (
        "memory://",
        "memory://",
        "cache+memory://",
    )
    assert dev.grpc_host == "127.0.0.1"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("amqp://guest:guest@rabbitmq:5672//", "amqp://guest:***@rabbitmq:5672//"),
        ("mongodb://admin:password123@mongodb:27017", "mongodb://admin:***@mongodb:27017"),
        ("redis://:s3cret@redis:6379/0", "redis://:***@redis:6379/0"),
        ("redis://redis:6379/0", "redis://redis:6379/0"),
        ("two: amqp://a:b@h// and mongodb://c:d@h", "two: amqp://a:***@h// and mongodb://c:***@h"),
    ],
)
def test_passwords_in_urls_are_masked(text, masked):
    assert mask_secrets(text) == masked


def test_banner_carries_no_secret():
    settings = Settings(
        MONGODB_URL="mongodb://admin:password123@db:27017",
        CELERY_BROKER_URL="amqp://user:hunter2@mq:5672//",
        CELERY_RESULT_BACKEND="redis://:r3dis@cache:6379/0",
    )
    text = banner(settings, parse_parts("grpc"), 50054, dev=False)
    for secret in ("password123", "hunter2", "r3dis"):
        assert secret not in text
    assert "nothing survives a restart" not in text


def test_config_dir_has_the_builtin_jobs():
    assert (config_dir() / "builtin_jobs.toml").is_file()
