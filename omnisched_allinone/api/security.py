"""Who may call the API, over what, and how much at once: tokens, TLS, and the RPC guard.

- **Tokens**: `OMNISCHED_API_TOKENS="tok1,tok2:ro"`. A request carries `authorization: Bearer
  <token>` (gRPC metadata or HTTP header); a `:ro` token may only read (list, get, status, watch,
  preview). Tokens are compared in constant time and never logged.
- **TLS**: a certificate and key serve TLS; a client CA as well turns on mutual TLS (a client
  without a certificate signed by that CA cannot connect at all).
- **`ApiGuard`**, one `grpc.aio.ServerInterceptor` that decides from the call's method name and
  metadata alone and then hands grpcio a wrapped handler (it never awaits a streaming handler,
  DESIGN §10): refusals answer UNAUTHENTICATED / PERMISSION_DENIED through `context.abort`; a
  request that does not even decode (a Struct nested past protobuf's recursion limit, say) is
  INVALID_ARGUMENT instead of grpcio's INTERNAL "Exception deserializing request"; and the job
  API's in-flight RPCs are capped (RESOURCE_EXHAUSTED) while health stays outside the cap, so a
  saturated server still answers its probes.
"""

from __future__ import annotations

import hmac
import inspect
import ipaddress
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from omnisched_allinone.core.errors import OmnischedError, PermissionDenied, Unauthenticated

log = logging.getLogger(__name__)

API_SERVICE = "omnisched.v1.SchedulerService"
HEALTH_SERVICE = "grpc.health.v1.Health"
# The RPCs a read-only token may call: nothing here changes a job or starts a run.
READ_ONLY_RPCS = frozenset(
    {
        "GetScheduledJob",
        "ListScheduledJobs",
        "GetJobStatus",
        "ListJobExecutions",
        "GetExecution",
        "WatchJobExecutions",
        "PreviewSchedule",
    }
)
READ_ONLY_SUFFIX = "ro"
# Slots grpcio's own hard cap keeps beyond the job API's, for health (and reflection) under load.
HEALTH_RESERVE_RPCS = 16


# -- tokens -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Access:
    read_only: bool


class TokenTable:
    """The configured bearer tokens; `check` says what a presented token may do."""

    def __init__(self, tokens: Mapping[str, bool]) -> None:
        # token -> read_only; kept as bytes for `hmac.compare_digest`.
        self._tokens = [(token.encode(), read_only) for token, read_only in tokens.items()]

    @classmethod
    def parse(cls, text: str) -> TokenTable:
        """`"tok1,tok2:ro"`: comma-separated tokens, each optionally suffixed `:ro` (read-only)."""
        tokens: dict[str, bool] = {}
        for item in filter(None, (part.strip() for part in text.split(","))):
            token, sep, mode = item.rpartition(":")
            if not sep or mode not in (READ_ONLY_SUFFIX, "rw"):
                token, mode = item, "rw"
            if not token:
                raise ValueError("OMNISCHED_API_TOKENS has an empty token")
            # A token listed twice keeps its widest access.
            tokens[token] = tokens.get(token, True) and mode == READ_ONLY_SUFFIX
        return cls(tokens)

    def __bool__(self) -> bool:
        return bool(self._tokens)

    def __len__(self) -> int:
        return len(self._tokens)

    @property
    def read_only_count(self) -> int:
        return sum(read_only for _, read_only in self._tokens)

    def __repr__(self) -> str:  # never the tokens themselves
        return f"TokenTable({len(self)} tokens, {self.read_only_count} read-only)"

    def check(self, presented: str) -> Access | None:
        """The access of `presented`, or None. Compares against EVERY token in constant time."""
        candidate = presented.encode("utf-8", "replace")
        found: Access | None = None
        for token, read_only in self._tokens:
            if hmac.compare_digest(candidate, token) and found is None:
                found = Access(read_only)
        return found

    def authorize(self, authorization: str | None, rpc: str, *, writes: bool | None = None) -> None:
        """Raise `Unauthenticated` or `PermissionDenied` unless `authorization` may call `rpc`.

        `writes` defaults to "a job API RPC outside `READ_ONLY_RPCS`"; reflection passes False.
        """
        if not self._tokens:
            return
        scheme, _, presented = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            raise Unauthenticated("missing bearer token (authorization: Bearer <token>)")
        access = self.check(presented.strip())
        if access is None:
            raise Unauthenticated("invalid bearer token")
        if writes is None:
            writes = rpc not in READ_ONLY_RPCS
        if access.read_only and writes:
            raise PermissionDenied(f"a read-only token may not call {rpc}")


# -- TLS --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TlsConfig:
    """PEM files: the server's certificate chain and key; a client CA turns on mutual TLS."""

    cert: Path
    key: Path
    client_ca: Path | None = None

    @classmethod
    def from_paths(cls, cert: str, key: str, client_ca: str = "") -> TlsConfig | None:
        if not cert and not key:
            if client_ca:
                raise ValueError("OMNISCHED_TLS_CLIENT_CA needs OMNISCHED_TLS_CERT and _KEY")
            return None
        if not cert or not key:
            raise ValueError("OMNISCHED_TLS_CERT and OMNISCHED_TLS_KEY go together")
        return cls(Path(cert), Path(key), Path(client_ca) if client_ca else None)

    @property
    def mutual(self) -> bool:
        return self.client_ca is not None

    def grpc_credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials(
            [(self.key.read_bytes(), self.cert.read_bytes())],
            root_certificates=self.client_ca.read_bytes() if self.client_ca else None,
            require_client_auth=self.mutual,
        )

    def uvicorn_options(self) -> dict[str, Any]:
        """`uvicorn.Config` keyword arguments for the HTTP face (same files, same rules)."""
        import ssl

        options: dict[str, Any] = {"ssl_certfile": str(self.cert), "ssl_keyfile": str(self.key)}
        if self.client_ca is not None:
            options |= {"ssl_ca_certs": str(self.client_ca), "ssl_cert_reqs": ssl.CERT_REQUIRED}
        return options


# -- the launch rule --------------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def unauthenticated_exposure(
    host: str, tokens: TokenTable, tls: TlsConfig | None, insecure: bool
) -> str | None:
    """Why serving the API on `host` would be open to anyone, or None when that is fine.

    Beyond loopback the API needs bearer tokens or mutual TLS, unless the operator said
    `--insecure` (a trusted network, or a proxy in front that authenticates).
    """
    if insecure or is_loopback(host) or tokens or (tls is not None and tls.mutual):
        return None
    return (
        f"the API would listen on {host} (beyond loopback) with no authentication: set "
        "OMNISCHED_API_TOKENS (or mutual TLS with OMNISCHED_TLS_CLIENT_CA), bind to 127.0.0.1 "
        "with --host, or pass --insecure to serve it unauthenticated on purpose"
    )


# -- gRPC -------------------------------------------------------------------------------------


class _Undecodable:
    """What the safe deserializer hands the handler when the request bytes do not decode."""

    def __init__(self, error: Exception) -> None:
        self.reason = str(error) or type(error).__name__


def _safe_deserializer(
    deserialize: Callable[[bytes], Any] | None,
) -> Callable[[bytes], Any] | None:
    if deserialize is None:
        return None

    def safe(data: bytes) -> Any:
        try:
            return deserialize(data)
        except (DecodeError, RecursionError, ValueError) as error:
            return _Undecodable(error)

    return safe


def _rpc_name(method: str) -> tuple[str, str]:
    """`/pkg.Service/Method` → (`pkg.Service`, `Method`)."""
    service, _, name = method.lstrip("/").partition("/")
    return service, name


def _metadata_value(metadata: Iterable[Any] | None, key: str) -> str | None:
    for item in metadata or ():
        item_key, value = item[0], item[1]
        if item_key == key:
            return value if isinstance(value, str) else None
    return None


async def _abort(context: grpc.aio.ServicerContext, code: grpc.StatusCode, message: str) -> None:
    await context.abort(code, message)


def _refuse_stream(handler: Any, refusal: OmnischedError) -> grpc.RpcMethodHandler:
    from omnisched_allinone.api.errors import grpc_code

    async def refuse(request_iterator: Any, context: grpc.aio.ServicerContext) -> None:
        await _abort(context, grpc_code(refusal), refusal.message)

    if handler.stream_stream is not None:
        return handler._replace(stream_stream=refuse)
    return handler._replace(stream_unary=refuse)


class ApiGuard(grpc.aio.ServerInterceptor):
    """Authentication, undecodable requests and the in-flight cap, for every unary request."""

    def __init__(self, tokens: TokenTable | None = None, max_concurrent_rpcs: int | None = None):
        self._tokens = tokens or TokenTable({})
        self._max_rpcs = max_concurrent_rpcs
        self.in_flight = 0

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Any],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None  # UNIMPLEMENTED
        service, rpc = _rpc_name(handler_call_details.method)
        refusal: OmnischedError | None = None
        if service != HEALTH_SERVICE:
            try:
                self._tokens.authorize(
                    _metadata_value(handler_call_details.invocation_metadata, "authorization"),
                    rpc,
                    writes=service == API_SERVICE and rpc not in READ_ONLY_RPCS,
                )
            except OmnischedError as error:
                refusal = error
        if handler.request_streaming:
            # Reflection: its handler decodes each message itself; only the refusal applies.
            return handler if refusal is None else _refuse_stream(handler, refusal)
        capped = service == API_SERVICE and self._max_rpcs is not None
        return self._wrap(handler, refusal, capped)

    def _wrap(
        self, handler: Any, refusal: OmnischedError | None, capped: bool
    ) -> grpc.RpcMethodHandler:
        from omnisched_allinone.api.errors import grpc_code

        guard = self

        async def check(request: Any, context: grpc.aio.ServicerContext) -> None:
            if refusal is not None:
                await _abort(context, grpc_code(refusal), refusal.message)
            if isinstance(request, _Undecodable):
                await _abort(
                    context,
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"request: not a valid message ({request.reason[:200]})",
                )
            if capped and guard._max_rpcs is not None and guard.in_flight >= guard._max_rpcs:
                await _abort(
                    context,
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"at most {guard._max_rpcs} API calls at once; try again later",
                )

        deserializer = _safe_deserializer(handler.request_deserializer)
        is_unary = handler.unary_unary is not None
        behaviour = handler.unary_unary if is_unary else handler.unary_stream

        async def coroutine(request: Any, context: grpc.aio.ServicerContext) -> Any:
            # Unary handlers, and stream handlers that write with `context.write` (the aio
            # health Watch), are coroutines: await them inside the checks and the count.
            await check(request, context)
            guard.in_flight += capped
            try:
                return await behaviour(request, context)
            finally:
                guard.in_flight -= capped

        if is_unary:
            return handler._replace(request_deserializer=deserializer, unary_unary=coroutine)
        if not inspect.isasyncgenfunction(behaviour):
            return handler._replace(request_deserializer=deserializer, unary_stream=coroutine)

        async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            await check(request, context)
            guard.in_flight += capped
            try:
                async for response in behaviour(request, context):
                    yield response
            finally:
                guard.in_flight -= capped

        return handler._replace(request_deserializer=deserializer, unary_stream=stream)


# -- HTTP -------------------------------------------------------------------------------------


def http_authorizer(tokens: TokenTable) -> Callable[[Any, Any], Any] | None:
    """The `authorize` hook of `create_http_app`: the gRPC rules, on the HTTP headers."""
    if not tokens:
        return None

    async def authorize(request: Any, route: Any) -> None:
        tokens.authorize(request.headers.get("authorization"), route.rpc)

    return authorize
