"""Typed application errors. Each carries its HTTP status; the app renders RFC 9457 problem details."""

from __future__ import annotations

from typing import Any, ClassVar

from litestar.plugins.problem_details import ProblemDetailsException

__all__ = (
    "AppError",
    "Conflict",
    "Forbidden",
    "Gone",
    "InvalidInput",
    "NotFound",
    "PaymentRequired",
    "QueryTooExpensive",
    "ServiceUnavailable",
    "TooManyRequests",
    "Unauthorized",
)


class AppError(ProblemDetailsException):
    """Base of DataFast's errors: ``raise NotFound("No such site")``."""

    status: ClassVar[int] = 500
    title_text: ClassVar[str] = "Internal Server Error"
    slug: ClassVar[str] = "internal"

    def __init__(
        self, detail: str = "", *, extra: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(
            detail=detail or self.title_text,
            status_code=self.status,
            title=self.title_text,
            type_=f"https://datafast.dev/problems/{self.slug}",
            extra=extra,
            headers=headers,
        )


class InvalidInput(AppError):
    status = 400
    title_text = "Invalid input"
    slug = "invalid-input"


class Unauthorized(AppError):
    status = 401
    title_text = "Unauthorized"
    slug = "unauthorized"

    def __init__(self, detail: str = "Sign in or send an API key", **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": 'Bearer realm="datafast"'})
        super().__init__(detail, **kwargs)


class Forbidden(AppError):
    status = 403
    title_text = "Forbidden"
    slug = "forbidden"


class NotFound(AppError):
    status = 404
    title_text = "Not found"
    slug = "not-found"


class Conflict(AppError):
    status = 409
    title_text = "Conflict"
    slug = "conflict"


class Gone(AppError):
    status = 410
    title_text = "Gone"
    slug = "gone"


class TooManyRequests(AppError):
    status = 429
    title_text = "Too many requests"
    slug = "rate-limited"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(
            detail, headers={"Retry-After": str(retry_after)}, extra={"retry_after": retry_after}
        )


class ServiceUnavailable(AppError):
    status = 503
    title_text = "Service unavailable"
    slug = "unavailable"


class QueryTooExpensive(ServiceUnavailable):
    """A report hit ClickHouse's time or memory limit for reads (``REPORT_MAX_SECONDS``/``_MEMORY``)."""

    title_text = "Report too expensive"
    slug = "query-too-expensive"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"Retry-After": "30"})


class PaymentRequired(AppError):
    """Hosted mode: the plan does not allow this (a limit reached, or the account unpaid)."""

    status = 402
    title_text = "Payment required"
    slug = "payment-required"
