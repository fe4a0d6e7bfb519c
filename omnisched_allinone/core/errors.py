"""Domain errors.

Every failure a client can cause or observe is one of these. The API edge maps each class to one
gRPC status (and HTTP status) in a single place, so no handler invents its own mapping and a
client's mistake never surfaces as INTERNAL.
"""

from __future__ import annotations


class OmnischedError(Exception):
    """Base of every error the service reports to a client."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(OmnischedError):
    """A request field is wrong; `field` names it (dotted path, e.g. ``schedule_config.config.hour``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message


class NotFound(OmnischedError):
    """The job or execution named by the request does not exist."""


class AlreadyExists(OmnischedError):
    """A job with the same unique name already exists."""


class FailedPrecondition(OmnischedError):
    """The request is valid but the system is not in a state to honour it."""


class Unavailable(OmnischedError):
    """A backing service (store, broker) cannot be reached; the client may retry."""


class PermissionDenied(OmnischedError):
    """The caller is authenticated but may not perform this operation."""


class ResourceExhausted(OmnischedError):
    """A limit (concurrent streams, request size) was reached."""


class Conflict(OmnischedError):
    """An optimistic-concurrency check failed: the job changed since it was read."""


class Unauthenticated(OmnischedError):
    """The caller presented no valid credentials (a missing or unknown bearer token)."""
