"""All configuration, read from the environment in this one place.

The seed's variable names (MONGODB_URL, CELERY_BROKER_URL, …) keep their names; everything of ours
has the OMNISCHED_ prefix. `config/env.md` documents each one with its default. Modules receive a
`Settings` object; none reads `os.environ` on its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from omnisched_allinone.core.policies import JobPolicies, OverlapPolicy

MEMORY_MONGODB_URL = "memory://"
MEMORY_BROKER_URL = "memory://"
MEMORY_RESULT_BACKEND = "cache+memory://"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", populate_by_name=True)

    # Seed names.
    mongodb_url: str = Field("mongodb://localhost:27017", validation_alias="MONGODB_URL")
    celery_broker_url: str = Field(
        "amqp://guest:guest@localhost:5672//", validation_alias="CELERY_BROKER_URL"
    )
    celery_result_backend: str = Field(
        "redis://localhost:6379/0", validation_alias="CELERY_RESULT_BACKEND"
    )
    grpc_port: int = Field(50054, validation_alias="GRPC_PORT")
    log_level: str = Field("INFO", validation_alias="LOG_LEVEL")
    log_format: str = Field("text", validation_alias="LOG_FORMAT")
    scraper_service_url: str = Field(
        "scraper-service:50053", validation_alias="SCRAPER_SERVICE_URL"
    )
    pricing_service_url: str = Field(
        "pricing-service:50052", validation_alias="PRICING_SERVICE_URL"
    )

    # Ours.
    mongodb_database: str = Field("omnisched", validation_alias="OMNISCHED_MONGODB_DATABASE")
    grpc_host: str = Field("0.0.0.0", validation_alias="OMNISCHED_GRPC_HOST")
    http_port: int = Field(8054, validation_alias="OMNISCHED_HTTP_PORT")
    targets: str = Field("", validation_alias="OMNISCHED_TARGETS")
    target_descriptor_set: str = Field("", validation_alias="OMNISCHED_TARGET_DESCRIPTOR_SET")
    builtin_jobs_file: str = Field("", validation_alias="OMNISCHED_BUILTIN_JOBS_FILE")
    seed_builtin_jobs: bool = Field(True, validation_alias="OMNISCHED_SEED_BUILTIN_JOBS")

    max_message_bytes: int = Field(4 * 1024 * 1024, validation_alias="OMNISCHED_MAX_MESSAGE_BYTES")
    max_parameters_bytes: int = Field(64 * 1024, validation_alias="OMNISCHED_MAX_PARAMETERS_BYTES")
    max_parameters_depth: int = Field(16, validation_alias="OMNISCHED_MAX_PARAMETERS_DEPTH")
    max_concurrent_rpcs: int = Field(256, validation_alias="OMNISCHED_MAX_CONCURRENT_RPCS")
    max_watch_streams: int = Field(64, validation_alias="OMNISCHED_MAX_WATCH_STREAMS")
    min_interval_s: float = Field(1.0, validation_alias="OMNISCHED_MIN_INTERVAL_S")
    shutdown_grace_s: float = Field(10.0, validation_alias="OMNISCHED_SHUTDOWN_GRACE_S")
    store_timeout_ms: int = Field(3000, validation_alias="OMNISCHED_STORE_TIMEOUT_MS")

    # API security (api/security.py). Tokens are a SecretStr: never in a repr or a log.
    api_tokens: SecretStr = Field(SecretStr(""), validation_alias="OMNISCHED_API_TOKENS")
    tls_cert: str = Field("", validation_alias="OMNISCHED_TLS_CERT")
    tls_key: str = Field("", validation_alias="OMNISCHED_TLS_KEY")
    tls_client_ca: str = Field("", validation_alias="OMNISCHED_TLS_CLIENT_CA")
    reflection: bool = Field(True, validation_alias="OMNISCHED_REFLECTION")

    # Celery (seed "Performance Tuning" defaults).
    worker_prefetch_multiplier: int = Field(1, validation_alias="OMNISCHED_WORKER_PREFETCH")
    worker_max_tasks_per_child: int = Field(
        50, validation_alias="OMNISCHED_WORKER_MAX_TASKS_PER_CHILD"
    )
    worker_concurrency: int = Field(4, validation_alias="OMNISCHED_WORKER_CONCURRENCY")
    worker_pool: str = Field("", validation_alias="OMNISCHED_WORKER_POOL")
    task_time_limit_s: int = Field(30 * 60, validation_alias="OMNISCHED_TASK_TIME_LIMIT_S")
    task_soft_time_limit_s: int = Field(
        25 * 60, validation_alias="OMNISCHED_TASK_SOFT_TIME_LIMIT_S"
    )
    result_expires_s: int = Field(24 * 3600, validation_alias="OMNISCHED_RESULT_EXPIRES_S")
    max_redeliveries: int = Field(3, validation_alias="OMNISCHED_MAX_REDELIVERIES")
    publish_timeout_s: float = Field(5.0, validation_alias="OMNISCHED_PUBLISH_TIMEOUT_S")

    # Beat.
    beat_max_interval_s: float = Field(1.0, validation_alias="OMNISCHED_BEAT_MAX_INTERVAL_S")
    beat_lease_s: float = Field(10.0, validation_alias="OMNISCHED_BEAT_LEASE_S")
    beat_batch_size: int = Field(500, validation_alias="OMNISCHED_BEAT_BATCH_SIZE")

    # Retention and run defaults.
    execution_retention_days: int = Field(30, validation_alias="OMNISCHED_EXECUTION_RETENTION_DAYS")
    default_max_retries: int = Field(3, validation_alias="OMNISCHED_DEFAULT_MAX_RETRIES")
    default_retry_backoff_s: float = Field(
        5.0, validation_alias="OMNISCHED_DEFAULT_RETRY_BACKOFF_S"
    )
    default_retry_backoff_max_s: float = Field(
        300.0, validation_alias="OMNISCHED_DEFAULT_RETRY_BACKOFF_MAX_S"
    )
    default_catchup_window_s: int = Field(
        300, validation_alias="OMNISCHED_DEFAULT_CATCHUP_WINDOW_S"
    )
    default_overlap: OverlapPolicy = Field(
        OverlapPolicy.SKIP, validation_alias="OMNISCHED_DEFAULT_OVERLAP"
    )

    # Operations: supervisord, Flower, metrics, health checks.
    parts: str = Field("", validation_alias="OMNISCHED_PARTS")
    split_parts: bool = Field(False, validation_alias="OMNISCHED_SPLIT_PARTS")
    log_dir: str = Field("logs", validation_alias="OMNISCHED_LOG_DIR")
    log_to_stdout: bool = Field(False, validation_alias="OMNISCHED_LOG_TO_STDOUT")
    supervisor_dir: str = Field("", validation_alias="OMNISCHED_SUPERVISOR_DIR")
    worker_hostname: str = Field("", validation_alias="OMNISCHED_WORKER_HOSTNAME")
    metrics_port: int = Field(0, validation_alias="OMNISCHED_METRICS_PORT")
    flower_port: int = Field(5555, validation_alias="FLOWER_PORT")
    flower_address: str = Field("0.0.0.0", validation_alias="FLOWER_ADDRESS")
    flower_basic_auth: SecretStr = Field(SecretStr(""), validation_alias="FLOWER_BASIC_AUTH")

    @field_validator("log_level")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()

    @property
    def default_policies(self) -> JobPolicies:
        return JobPolicies(
            max_retries=self.default_max_retries,
            retry_backoff_s=self.default_retry_backoff_s,
            retry_backoff_max_s=self.default_retry_backoff_max_s,
            time_limit_s=self.task_time_limit_s,
            soft_time_limit_s=self.task_soft_time_limit_s,
            overlap=self.default_overlap,
            catchup_window_s=self.default_catchup_window_s,
        )

    @property
    def target_services(self) -> dict[str, str]:
        """The target registry: seed services plus `OMNISCHED_TARGETS` ("name=host:port,…")."""
        services = {
            "scraper-service": self.scraper_service_url,
            "pricing-service": self.pricing_service_url,
        }
        for item in filter(None, (part.strip() for part in self.targets.split(","))):
            name, _, address = item.partition("=")
            services[name.strip()] = address.strip()
        return {name: address for name, address in services.items() if address}

    @property
    def uses_memory_store(self) -> bool:
        return self.mongodb_url.startswith(MEMORY_MONGODB_URL)

    @property
    def uses_memory_broker(self) -> bool:
        return self.celery_broker_url.startswith(MEMORY_BROKER_URL)

    def as_dev(self) -> Settings:
        """`--dev`: every backing service in memory, nothing to install, bound to loopback."""
        local = {} if "grpc_host" in self.model_fields_set else {"grpc_host": "127.0.0.1"}
        return self.model_copy(
            update={
                **local,
                "mongodb_url": MEMORY_MONGODB_URL,
                "celery_broker_url": MEMORY_BROKER_URL,
                "celery_result_backend": MEMORY_RESULT_BACKEND,
            }
        )

    def builtin_jobs_path(self) -> Path:
        if self.builtin_jobs_file:
            return Path(self.builtin_jobs_file)
        return config_dir() / "builtin_jobs.toml"


def config_dir() -> Path:
    """`config/` shipped inside the wheel, or the repository's own in a source checkout."""
    package = Path(__file__).resolve().parent
    for candidate in (package / "config", package.parent / "config"):
        if candidate.is_dir():
            return candidate
    return package.parent / "config"


_SECRET_IN_URL = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@\s]*)@")
_BEARER = re.compile(r"(?P<scheme>\b[Bb]earer\s+)[^\s'\",;]+")
_masked_values: set[str] = set()


def add_masked_values(values: Iterable[str]) -> None:
    """Register literal secrets (API tokens, a Flower password) that `mask_secrets` hides too."""
    _masked_values.update(v for v in values if len(v) >= 4)


def mask_secrets(text: str) -> str:
    """Hide passwords in URLs (`amqp://user:secret@host` → `amqp://user:***@host`), bearer
    tokens (`Bearer xyz` → `Bearer ***`) and every value given to `add_masked_values`."""
    text = _SECRET_IN_URL.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    text = _BEARER.sub(lambda m: f"{m['scheme']}***", text)
    for value in sorted(_masked_values, key=len, reverse=True):
        text = text.replace(value, "***")
    return text


@dataclass(frozen=True)
class Endpoints:
    """What the banner prints; kept apart so tests can check it carries no secret."""

    grpc: str
    http: str | None
    mongodb: str
    broker: str
    results: str
