"""The HTTP/JSON application: each route transcodes to an RPC of the gRPC servicer.

A request becomes the RPC's request message (`codec`), the servicer's own handler answers it with a
context whose `abort` raises here, and the response message is written as JSON. So every rule, and
every mapping of a domain error to a status, is the gRPC face's: domain error → gRPC code
(`api.errors.grpc_code`) → HTTP status (`api.errors.HTTP_STATUS`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import anyio
import grpc
from starlette.applications import Starlette
from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute
from starlette.routing import Route as StarletteRoute
from starlette.types import Receive

from omnisched_allinone.api import convert
from omnisched_allinone.api.errors import HTTP_STATUS, grpc_code
from omnisched_allinone.api.servicer import SchedulerServicer
from omnisched_allinone.core.errors import (
    InvalidArgument,
    OmnischedError,
    ResourceExhausted,
)
from omnisched_allinone.core.executions import Execution
from omnisched_allinone.http import codec, docs
from omnisched_allinone.http.openapi import openapi_document
from omnisched_allinone.http.routes import ID_PATTERN, ROUTES, Route
from omnisched_allinone.service import JobService
from omnisched_allinone.settings import Settings

log = logging.getLogger(__name__)

# The auth hook (bearer tokens come with their own issue): called before every API operation with
# the request and its route; it refuses by raising an `OmnischedError` (e.g. `PermissionDenied`),
# answered like any other error. Probes, /openapi.json and /docs are not guarded.
Authorizer = Callable[[Request, Route], Awaitable[None]]

_FIELD_METADATA = "omnisched-field"  # where the servicer puts the invalid field of an abort


class ApiError(Exception):
    """An RPC ended with a status: what the servicer's `context.abort` said."""

    def __init__(self, code: grpc.StatusCode, message: str, field: str = "", status: int = 0):
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.status = status or HTTP_STATUS.get(code, 500)

    @classmethod
    def from_domain(cls, error: OmnischedError) -> ApiError:
        field = error.field if isinstance(error, InvalidArgument) else ""
        return cls(grpc_code(error), error.message, field)

    def response(self) -> JSONResponse:
        return JSONResponse(error_body(self.code.name, self.message, self.field), self.status)


def error_body(code: str, message: str, field: str = "") -> dict[str, Any]:
    return {"code": code, "message": message, "details": {"field": field} if field else {}}


_INTERNAL = ApiError(grpc.StatusCode.INTERNAL, "internal error")


class _HttpContext:
    """The part of `grpc.aio.ServicerContext` the servicer's unary handlers use."""

    async def abort(
        self, code: grpc.StatusCode, details: str = "", trailing_metadata: Any = ()
    ) -> None:
        field = dict(trailing_metadata or ()).get(_FIELD_METADATA, "")
        raise ApiError(code, details, field)


class _IdConvertor(Convertor[str]):
    regex = ID_PATTERN

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("omnisched_id", _IdConvertor())


class HttpApi:
    """The handlers, bound to one service; `shutting_down` ends watch streams and readiness."""

    def __init__(
        self,
        service: JobService,
        *,
        max_body_bytes: int,
        max_watch_streams: int,
        heartbeat_s: float,
        ready_timeout_s: float,
        authorize: Authorizer | None,
    ) -> None:
        self.service = service
        self.servicer = SchedulerServicer(service, max_watch_streams=max_watch_streams)
        self.max_body_bytes = max_body_bytes
        self.max_watch_streams = max_watch_streams
        self.heartbeat_s = heartbeat_s
        self.ready_timeout_s = ready_timeout_s
        self.authorize = authorize
        self.shutting_down = asyncio.Event()
        self.watch_streams = 0
        self.openapi = openapi_document()

    def routes(self) -> list[BaseRoute]:
        api: list[BaseRoute] = [
            StarletteRoute(
                route.starlette_path,
                self._watch_endpoint(route) if route.stream else self._unary_endpoint(route),
                methods=[route.method],
                name=route.op_id,
            )
            for route in ROUTES
        ]
        return [
            *api,
            StarletteRoute("/healthz", self.healthz, methods=["GET"]),
            StarletteRoute("/readyz", self.readyz, methods=["GET"]),
            StarletteRoute("/openapi.json", self.openapi_json, methods=["GET"]),
            *docs.routes,
        ]

    # Operations.
    def _unary_endpoint(self, route: Route) -> Callable[[Request], Awaitable[Response]]:
        handler = getattr(self.servicer, route.rpc)
        context = _HttpContext()

        async def endpoint(request: Request) -> Response:
            try:
                message = await self._request_message(request, route)
                reply: Any = await handler(message, context)
            except Exception as error:
                return _error_response(error, route)
            headers: dict[str, str] = {}
            if route.status == 201 and reply.id:
                root = request.scope.get("root_path", "").rstrip("/")
                headers["location"] = f"{root}{route.path}/{reply.id}"
            return JSONResponse(codec.to_json(reply), route.status, headers)

        return endpoint

    async def _request_message(self, request: Request, route: Route) -> Any:
        if self.authorize is not None:
            await self.authorize(request, route)
        values: Mapping[str, Any]
        if route.has_body:
            values = codec.parse_body(await self._body(request))
        else:
            values = codec.query_values(route.request_type, request.query_params.multi_items())
        return codec.to_request(route.request_type, values, request.path_params)

    async def _body(self, request: Request) -> bytes:
        too_large = ApiError(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            f"request body is larger than {self.max_body_bytes} bytes",
            status=413,
        )
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            raise too_large
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body_bytes:
                raise too_large
            chunks.append(chunk)
        return b"".join(chunks)

    # The watch stream.
    def _watch_endpoint(self, route: Route) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                message = await self._request_message(request, route)
                if self.watch_streams >= self.max_watch_streams:
                    raise ResourceExhausted(
                        f"at most {self.max_watch_streams} watch streams at once; try again later"
                    )
                if message.job_id:
                    # The feed checks this only at its first change; answer 404 before 200.
                    await self.service.get_job(message.job_id)
            except Exception as error:
                return _error_response(error, route)
            return StreamingResponse(
                self._events(request.receive, message.job_id),
                media_type="text/event-stream",
                headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
            )

        return endpoint

    async def _events(self, receive: Receive, job_id: str) -> AsyncIterator[str]:
        """SSE frames until the client goes, the server shuts down or the feed fails."""
        self.watch_streams += 1
        changes = self.service.watch(job_id)
        gone = asyncio.ensure_future(_disconnected(receive))
        closing = asyncio.ensure_future(self.shutting_down.wait())
        upcoming: asyncio.Future[Execution] | None = None
        try:
            yield ": watching execution changes\n\n"  # sends the headers now
            while True:
                if upcoming is None:
                    upcoming = asyncio.ensure_future(_next(changes))
                waiting: set[asyncio.Future[Any]] = {upcoming, gone, closing}
                done, _ = await asyncio.wait(
                    waiting,
                    timeout=self.heartbeat_s,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if gone in done or closing in done:
                    return
                if upcoming not in done:
                    yield ": heartbeat\n\n"
                    continue
                try:
                    execution = upcoming.result()
                except StopAsyncIteration:
                    return
                except OmnischedError as error:
                    failed = ApiError.from_domain(error)
                    yield _sse("error", _dumps(error_body(failed.code.name, failed.message)))
                    return
                upcoming = None
                event = codec.to_json(convert.event_to_proto(execution))
                yield _sse("execution", _dumps(event), event_id=execution.id)
        finally:
            self.watch_streams -= 1
            # Starlette cancels this generator's scope on disconnect; clean up regardless.
            with anyio.CancelScope(shield=True):
                tasks = [t for t in (upcoming, gone, closing) if t is not None]
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                with contextlib.suppress(Exception):
                    await changes.aclose()  # type: ignore[attr-defined]
            log.debug("watch stream closed", extra={"job_id": job_id})

    # Probes and documents.
    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        """Ready when the store answers (and the server is not shutting down)."""
        if self.shutting_down.is_set():
            return ApiError(grpc.StatusCode.UNAVAILABLE, "shutting down").response()
        try:
            await asyncio.wait_for(self.service.store.ping(), self.ready_timeout_s)
        except OmnischedError as error:
            return ApiError(grpc.StatusCode.UNAVAILABLE, error.message).response()
        except TimeoutError:
            return ApiError(grpc.StatusCode.UNAVAILABLE, "the store did not answer").response()
        return JSONResponse({"status": "ready"})

    async def openapi_json(self, request: Request) -> Response:
        return JSONResponse(self.openapi)


async def _next(changes: AsyncIterator[Execution]) -> Execution:
    return await changes.__anext__()


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _sse(event: str, data: str, *, event_id: str = "") -> str:
    lines = [f"event: {event}"]
    if event_id:
        lines.append(f"id: {event_id}")
    lines += [f"data: {line}" for line in data.splitlines() or [""]]
    return "\n".join(lines) + "\n\n"


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: grpc.StatusCode.NOT_FOUND, 405: grpc.StatusCode.UNIMPLEMENTED}.get(
        exc.status_code, grpc.StatusCode.INVALID_ARGUMENT
    )
    return ApiError(code, str(exc.detail), status=exc.status_code).response()


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OmnischedError)
    return ApiError.from_domain(exc).response()


async def _internal_error(request: Request, exc: Exception) -> Response:
    log.exception("http request failed", exc_info=exc)
    return _INTERNAL.response()


def create_http_app(
    service: JobService,
    *,
    settings: Settings | None = None,
    authorize: Authorizer | None = None,
    heartbeat_s: float = 15.0,
    ready_timeout_s: float = 3.0,
) -> Starlette:
    """The HTTP/JSON job API over `service`; `app.state.api` holds the handlers' state."""
    settings = settings or Settings()
    api = HttpApi(
        service,
        max_body_bytes=settings.max_message_bytes,
        max_watch_streams=settings.max_watch_streams,
        heartbeat_s=heartbeat_s,
        ready_timeout_s=ready_timeout_s,
        authorize=authorize,
    )
    app = Starlette(
        routes=api.routes(),
        exception_handlers={
            HTTPException: _http_error,
            OmnischedError: _domain_error,
            Exception: _internal_error,
        },
    )
    app.router.redirect_slashes = False
    app.state.api = api
    return app


def _error_response(error: Exception, route: Route) -> Response:
    """Any failure of an operation as its JSON error: ours mapped, anything else logged, 500."""
    if isinstance(error, ApiError):
        return error.response()
    if isinstance(error, OmnischedError):
        return ApiError.from_domain(error).response()
    log.exception("http request failed", extra={"operation": route.op_id})
    return _INTERNAL.response()
