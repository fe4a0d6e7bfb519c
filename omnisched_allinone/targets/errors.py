"""The one error a target call raises, with the retry decision the worker needs (DESIGN §5)."""

from __future__ import annotations

import grpc

TRANSIENT_CODES = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "ABORTED"})


class TargetCallError(Exception):
    """A failed target call; `transient` tells the worker whether a retry can help (DESIGN §5)."""

    def __init__(self, code: str, message: str, *, transient: bool | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.transient = code in TRANSIENT_CODES if transient is None else transient


def permanent(code: str, message: str) -> TargetCallError:
    return TargetCallError(code, message, transient=False)


def from_rpc_error(error: grpc.aio.AioRpcError, target: str) -> TargetCallError:
    code = error.code().name if error.code() is not None else "UNKNOWN"
    return TargetCallError(code, f"{target}: {error.details() or code}")
