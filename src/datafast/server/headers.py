"""Security headers on the app's own pages and API answers (not on /track, which sites call).

CSP allows only our own origin (the SPA is served from it) and forbids framing
(``frame-ancestors 'none'`` and ``X-Frame-Options: DENY``) — except the page of a share link that
lists embed origins: its handler sends its own CSP naming them (:func:`content_security_policy`),
which this middleware keeps, and then no ``X-Frame-Options`` (``DENY`` would refuse the frame
whatever the CSP says in browsers that predate ``frame-ancestors``). Only that HTML document is
framed: the scripts, styles and API answers it loads are not documents, so ``frame-ancestors`` on
them is never consulted and they keep ``'none'``.
HSTS is sent only when BASE_URL is https (on http it would be ignored, or worse, stick).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

__all__ = (
    "CONTENT_SECURITY_POLICY",
    "SecurityHeadersMiddleware",
    "content_security_policy",
    "security_headers",
)

_DIRECTIVES = [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
]
# What share links store is checked on the way in (domain/sites/sharing.py); checked again here
# because it becomes a header: a scheme, a host and a port, nothing that could end the directive.
_ORIGIN = re.compile(r"^https?://([a-z0-9.-]+|\[[0-9a-f:.]+\])(:[0-9]{1,5})?$")
_SKIP = frozenset({"/track"})


def content_security_policy(frame_ancestors: Sequence[str] = ()) -> str:
    """The app's CSP; ``frame_ancestors``: origins that may frame the page (none: ``'none'``)."""
    sources = " ".join(origin for origin in frame_ancestors if _ORIGIN.match(origin)) or "'none'"
    return "; ".join([*_DIRECTIVES, f"frame-ancestors {sources}"])


CONTENT_SECURITY_POLICY = content_security_policy()


def security_headers(https: bool, path: str) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"same-origin"),
        (b"x-frame-options", b"DENY"),
    ]
    # Every page, the API reference at /api/schema too (it runs our own copy of its script).
    headers.append((b"content-security-policy", CONTENT_SECURITY_POLICY.encode()))
    if https:
        headers.append((b"strict-transport-security", b"max-age=63072000; includeSubDomains"))
    return headers


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, https: bool) -> None:
        self.app = app
        self.https = https

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["path"] in _SKIP:
            await self.app(scope, receive, send)
            return
        extra = security_headers(self.https, scope["path"])

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers", [])
                present = {name.lower(): value for name, value in headers}
                policy = present.get(b"content-security-policy")
                # A handler's own CSP that lets some origins frame the page (a share link's embeds).
                framable = (
                    policy is not None
                    and b"frame-ancestors " in policy
                    and b"frame-ancestors 'none'" not in policy
                )
                message["headers"] = [
                    *headers,
                    *(
                        (name, value)
                        for name, value in extra
                        if name not in present and not (framable and name == b"x-frame-options")
                    ),
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)
