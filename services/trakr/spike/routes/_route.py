"""The route class every /v1 router uses: errors become envelopes, never a 500."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from trakr.spike import metrics
from trakr.spike.deps import DATABASE_UNAVAILABLE_ERRORS, NotFound
from trakr.spike.encoding import CONTENT_TYPES, envelope, negotiate, render
from trakr.spike.models import ERROR_RESPONSES

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5


def error_response(
    request: Request, code: int, message: str, headers: dict[str, str] | None = None
) -> Response:
    """An error envelope (empty data) in the format the client asked for."""
    fmt = negotiate(request.headers.get("accept"))
    body = render(envelope(code=code, message=message), fmt)
    return Response(content=body, status_code=code, media_type=CONTENT_TYPES[fmt], headers=headers)


def unavailable(request: Request, message: str) -> Response:
    return error_response(request, 503, message, {"Retry-After": str(RETRY_AFTER_SECONDS)})


class SpikeRoute(APIRoute):
    """Maps what a handler raises to an envelope.

    Starlette sends any exception without a registered handler to ServerErrorMiddleware, which
    answers 500 and re-raises; catching here, around the handler and its dependencies, is the
    one place where "never a 500" can be kept. Unknown exceptions are bugs: logged with a
    traceback, counted, and answered 503 so clients retry instead of giving up.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await original(request)
            except (HTTPException, RequestValidationError):
                raise
            except NotFound as exc:
                return error_response(request, 404, str(exc))
            except DATABASE_UNAVAILABLE_ERRORS as exc:
                metrics.DATABASE_UNAVAILABLE.inc()
                logger.warning(
                    "database unavailable: %s",
                    exc,
                    extra={"event": "database_unavailable", "error": type(exc).__name__},
                )
                return unavailable(request, "database unavailable, retry later")
            except Exception:
                metrics.UNEXPECTED_ERRORS.inc()
                logger.exception(
                    "unexpected error on %s", request.url.path, extra={"event": "unexpected_error"}
                )
                return unavailable(request, "internal error, retry later")

        return handler


def make_router(tag: str) -> APIRouter:
    return APIRouter(prefix="/v1", tags=[tag], route_class=SpikeRoute, responses=ERROR_RESPONSES)
