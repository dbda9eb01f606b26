"""The dashboard: the Svelte SPA that ``make build`` (Vite) writes into ``datafast/static/app``.

- ``/assets/<name>`` are Vite's content-hashed files: cached for a year (``immutable``).
- Every other GET that is not an API, ingestion or operations path answers ``index.html``
  (``no-cache``), so client-side routes (``/sites/…``, ``/share/…``) can be bookmarked and reloaded.
- Reserved prefixes (``/api``, ``/track``, ``/js``, ``/webhooks``, ``/healthz``, ``/readyz``,
  ``/metrics``) never fall back to the SPA: an unknown API path stays a JSON 404.
- Without a build, dashboard pages answer a 503 problem saying how to build it.
- ``/share/<slug>`` is ``index.html`` too, with the CSP ``frame-ancestors`` of the link's embed
  origins when it lists some (``share_embeds``, given by the composition root): the one page an
  iframe on another site may show (see ``server/headers.py``).
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

from litestar import Request, Response, Router, get
from litestar.di import NamedDependency
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath
from sqlalchemy.ext.asyncio import AsyncSession

from datafast.errors import NotFound, ServiceUnavailable
from datafast.server.headers import content_security_policy

__all__ = ("APP_DIR", "ASSET_CACHE", "INDEX_CACHE", "ShareEmbeds", "spa_router")

ShareEmbeds: TypeAlias = Callable[[AsyncSession, str], Awaitable[Sequence[str]]]
"""A share link's slug → the origins that may frame its page (``sharing.embed_origins_of``)."""

APP_DIR = Path(__file__).resolve().parent.parent / "static" / "app"
ASSET_CACHE = "public, max-age=31536000, immutable"
INDEX_CACHE = "no-cache"
RESERVED = ("api", "track", "js", "healthz", "readyz", "metrics", "assets", "webhooks")
_ASSET_NAME = re.compile(r"^[A-Za-z0-9._-]+$")
_TYPES = {".js": "text/javascript", ".css": "text/css", ".json": "application/json", ".svg": "image/svg+xml"}


@dataclass(frozen=True, slots=True)
class _Index:
    body: bytes
    mtime_ns: int


class SpaFiles:
    """index.html, read again when a new build replaces it; assets are read per request
    (browsers cache them for a year)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._index: _Index | None = None

    def index(self) -> bytes:
        path = self.directory / "index.html"
        try:
            mtime_ns = path.stat().st_mtime_ns
        except FileNotFoundError:
            raise ServiceUnavailable(
                "The dashboard is not built. Run `make build` (or `npm ci && npm run build` in frontend/); "
                f"it is served from {self.directory}."
            ) from None
        if self._index is None or self._index.mtime_ns != mtime_ns:
            self._index = _Index(path.read_bytes(), mtime_ns)
        return self._index.body

    def asset(self, name: str) -> tuple[bytes, str]:
        if not _ASSET_NAME.match(name) or name.startswith("."):
            raise NotFound("No such asset")
        path = self.directory / "assets" / name
        if not path.is_file():
            raise NotFound("No such asset: the dashboard was rebuilt; reload the page.")
        suffix = path.suffix.lower()
        media_type = _TYPES.get(suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return path.read_bytes(), media_type


def spa_router(directory: Path = APP_DIR, *, share_embeds: ShareEmbeds | None = None) -> Router:
    files = SpaFiles(directory)

    def index_response(headers: dict[str, str] | None = None) -> Response[bytes]:
        return Response(
            files.index(),
            media_type="text/html; charset=utf-8",
            headers={"cache-control": INDEX_CACHE, **(headers or {})},
        )

    @get("/assets/{name:str}", include_in_schema=False, sync_to_thread=False)
    def asset(name: FromPath[str]) -> Response[bytes]:
        body, media_type = files.asset(name)
        return Response(
            body,
            media_type=media_type,
            headers={"cache-control": ASSET_CACHE, "x-content-type-options": "nosniff"},
        )

    @get("/", include_in_schema=False, sync_to_thread=False)
    def root() -> Response[bytes]:
        return index_response()

    @get("/{path:path}", include_in_schema=False, sync_to_thread=False)
    def fallback(path: FromPath[str], request: Request[Any, Any, Any]) -> Response[bytes]:
        first = path.strip("/").split("/", 1)[0]
        if first in RESERVED:
            raise NotFound(f"No route {request.url.path}")
        return index_response()

    handlers: list[HTTPRouteHandler] = [asset, root, fallback]
    if share_embeds is not None:
        embeds = share_embeds

        @get("/share/{slug:str}", include_in_schema=False)
        async def share_page(
            slug: FromPath[str], db_session: NamedDependency[AsyncSession]
        ) -> Response[bytes]:
            origins = await embeds(db_session, slug)
            # No origins (or no such link): the middleware's CSP, framing refused.
            return index_response(
                {"content-security-policy": content_security_policy(origins)} if origins else None
            )

        handlers.append(share_page)
    return Router(path="/", route_handlers=handlers)
