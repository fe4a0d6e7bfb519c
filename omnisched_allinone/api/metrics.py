"""A `grpc.aio` server interceptor that counts API requests by method and status code.

Streaming handlers are not awaited here (DESIGN §10): the interceptor hands back an async
generator that passes every message through and records the stream when it ends, so
WatchJobExecutions keeps streaming as it does without metrics.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from grpc_interceptor.server import AsyncServerInterceptor

from omnisched_allinone import metrics


def _code(context: grpc.aio.ServicerContext, error: BaseException | None) -> str:
    if isinstance(error, asyncio.CancelledError | GeneratorExit):
        return grpc.StatusCode.CANCELLED.name
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code.name
    if isinstance(code, int):  # some grpcio versions hand back the raw number
        for status in grpc.StatusCode:
            if status.value[0] == code:
                return status.name
    return grpc.StatusCode.UNKNOWN.name if error is not None else grpc.StatusCode.OK.name


class ApiMetricsInterceptor(AsyncServerInterceptor):  # type: ignore[misc]
    async def intercept(
        self,
        method: Callable[..., Any],
        request_or_iterator: Any,
        context: grpc.aio.ServicerContext,
        method_name: str,
    ) -> Any:
        began = time.perf_counter()
        response = method(request_or_iterator, context)
        if hasattr(response, "__aiter__"):
            return self._stream(response, context, method_name)
        try:
            result = await response
        except BaseException as error:
            metrics.api_request(method_name, _code(context, error), time.perf_counter() - began)
            raise
        metrics.api_request(method_name, _code(context, None), time.perf_counter() - began)
        return result

    async def _stream(
        self, stream: AsyncIterator[Any], context: grpc.aio.ServicerContext, method_name: str
    ) -> AsyncIterator[Any]:
        error: BaseException | None = None
        try:
            async for message in stream:
                yield message
        except BaseException as raised:
            error = raised
            raise
        finally:
            # A stream's lifetime is not a latency: count it, leave the histogram to unary RPCs.
            metrics.api_request(method_name, _code(context, error), None)
