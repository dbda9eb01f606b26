"""The dashboard: the Svelte SPA that ``make build`` (Vite) writes into ``datafast/static/app``.

- ``/assets/<name>`` are Vite's content-hashed files: cached for a year (``immutable``).
- Every other GET that is not an API, ingestion or operations path answers ``index.html``
  (``no-cache``), so client-side routes (``/sites/…``, ``/share/…``) can be bookmarked and reloaded.
- Reserved prefixes (``/api``, ``/track``, ``/js``, ``/webhooks``, ``/healthz``, ``/readyz``,
  ``/metrics``) never fall back to the SPA: an unknown API path stays a JSON 404.
- Without a build, dashboard pages answer a 503 problem saying how to build it.
"""

from __future__ import annotations

import mimetypes
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litestar import Request, Response, Router, get
from litestar.params import FromPath

from datafast.errors import NotFound, ServiceUnavailable

__all__ = ("APP_DIR", "ASSET_CACHE", "INDEX_CACHE", "spa_router")

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


def spa_router(directory: Path = APP_DIR) -> Router:
    files = SpaFiles(directory)

    def index_response() -> Response[bytes]:
        return Response(
            files.index(),
            media_type="text/html; charset=utf-8",
            headers={"cache-control": INDEX_CACHE},
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

    return Router(path="/", route_handlers=[asset, root, fallback])
