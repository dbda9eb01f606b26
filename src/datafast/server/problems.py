"""Every error leaves the app as RFC 9457 problem details (``application/problem+json``)."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.plugins.problem_details import ProblemDetailsConfig, ProblemDetailsException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from datafast.log import get_logger

__all__ = ("problem_details_config", "unhandled_exception_handler")

log = get_logger(__name__)
MEDIA_TYPE = "application/problem+json"


def _from_http_exception(exc: HTTPException) -> ProblemDetailsException:
    extra: dict[str, Any] | None = None
    if isinstance(exc, ValidationException) and exc.extra:
        # Litestar lists each bad field as {message, key, source}: name them as "errors".
        extra = {"errors": exc.extra}
    elif isinstance(exc.extra, dict):
        extra = exc.extra
    return ProblemDetailsException(
        status_code=exc.status_code,
        title=_title(exc.status_code),
        detail=exc.detail,
        extra=extra,
        headers=exc.headers,
    )


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem_details_config() -> ProblemDetailsConfig:
    return ProblemDetailsConfig(
        enable_for_all_http_exceptions=True,
        exception_to_problem_detail_map={HTTPException: _from_http_exception},
    )


def unhandled_exception_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """A bug: log it with the traceback, answer a problem without internals."""
    log.exception("unhandled error", method=request.method, path=request.url.path, exc_info=exc)
    return Response(
        {"status": 500, "title": "Internal Server Error", "detail": "An unexpected error occurred."},
        status_code=HTTP_500_INTERNAL_SERVER_ERROR,
        media_type=MEDIA_TYPE,
    )
