"""omnisched: an all-in-one job scheduler service (gRPC API, Celery workers, store-driven Beat)."""

__version__ = "0.1.0"
