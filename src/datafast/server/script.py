"""GET /js/script.js: the tracking script, as ``make build`` left it in ``datafast/static/js``.

The build (``tracker/build.mjs``) writes ``script.js`` with its ``.gz`` and ``.br`` beside it; they
are served as they are, picked by ``Accept-Encoding``. The ETag is a hash of the script's content.
The plain URL is cached for a day (sites embed it unversioned, so an update must get through);
``/js/script.<hash>.js`` names one build and is cached for a year. Variants (cookieless, hash
routing) are attributes of the one script, so every site shares one cached file.

Optional features are extensions the script loads itself when its tag asks
(``data-track-scroll`` → ``/js/script.scroll.js``; ``tracker/src/extensions``): built beside it
the same way and served with the same encodings and caching.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litestar import Request, Response, Router, get, head
from litestar.params import FromPath
from litestar.status_codes import HTTP_200_OK, HTTP_304_NOT_MODIFIED

from datafast.errors import NotFound, ServiceUnavailable

__all__ = ("SCRIPT_DIR", "ScriptFiles", "script_router")

SCRIPT_DIR = Path(__file__).resolve().parent.parent / "static" / "js"
PLAIN_CACHE = "public, max-age=86400, stale-while-revalidate=604800"
VERSIONED_CACHE = "public, max-age=31536000, immutable"
_VERSIONED = re.compile(r"^script\.([0-9a-f]{16})\.js$")
_EXTENSION = re.compile(r"^script\.[a-z0-9]{1,20}\.js$")
_ENCODINGS = (("br", ".br"), ("gzip", ".gz"))


@dataclass(frozen=True, slots=True)
class BuiltScript:
    version: str
    """The first 16 hex digits of the script's SHA-256."""
    bodies: dict[str, bytes]
    """Content-Encoding ("identity", "br", "gzip") → bytes."""
    mtime_ns: int

    def etag(self, encoding: str) -> str:
        return f'"{self.version}"' if encoding == "identity" else f'"{self.version}-{encoding}"'


class ScriptFiles:
    """The built files, read once and read again when the build changes them."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._built: dict[str, BuiltScript] = {}

    def load(self, name: str = "script.js") -> BuiltScript | None:
        """The built file ``name`` (the script or an extension), or None when it is not built."""
        path = self.directory / name
        try:
            mtime_ns = path.stat().st_mtime_ns
        except FileNotFoundError:
            self._built.pop(name, None)
            return None
        built = self._built.get(name)
        if built is not None and built.mtime_ns == mtime_ns:
            return built
        # A few kilobytes, read when a build lands: not worth a thread hop on every request.
        script = path.read_bytes()
        bodies = {"identity": script}
        for encoding, suffix in _ENCODINGS:
            compressed = path.with_name(path.name + suffix)
            # A leftover from an older build is not served: it must be at least as new as script.js.
            if compressed.is_file() and compressed.stat().st_mtime_ns >= mtime_ns:
                bodies[encoding] = compressed.read_bytes()
        self._built[name] = BuiltScript(hashlib.sha256(script).hexdigest()[:16], bodies, mtime_ns)
        return self._built[name]


def accepted_encoding(header: str, available: dict[str, bytes]) -> str:
    """br, then gzip, then identity: the first the client accepts (q > 0) and the build has."""
    accepted: dict[str, float] = {}
    for part in header.lower().split(","):
        name, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        accepted[name.strip()] = quality
    for encoding, _ in _ENCODINGS:
        if encoding in available and accepted.get(encoding, accepted.get("*", 0.0)) > 0:
            return encoding
    return "identity"


def _matches(if_none_match: str, built: BuiltScript) -> bool:
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or any(built.etag(encoding) in tags for encoding in built.bodies)


def script_router(directory: Path = SCRIPT_DIR) -> Router:
    files = ScriptFiles(directory)

    def respond(name: str, request: Request[Any, Any, Any]) -> Response[bytes]:
        versioned = _VERSIONED.match(name)
        if versioned is None and _EXTENSION.match(name):
            built = files.load(name)  # an extension of the script (script.scroll.js…)
            if built is None:
                raise NotFound(f"No script {name!r}: the tracking script is /js/script.js.")
        elif name != "script.js" and versioned is None:
            raise NotFound(f"No script {name!r}: the tracking script is /js/script.js.")
        else:
            built = files.load()
        if built is None:
            raise ServiceUnavailable(
                "The tracking script is not built. Run `make build` (or `npm ci && npm run build` "
                f"in tracker/); it is served from {directory}."
            )
        if versioned is not None and versioned[1] != built.version:
            raise NotFound(f"Script version {versioned[1]} is not this server's: use /js/script.js.")
        encoding = accepted_encoding(request.headers.get("accept-encoding", ""), built.bodies)
        headers = {
            "cache-control": VERSIONED_CACHE if versioned else PLAIN_CACHE,
            "etag": built.etag(encoding),
            "vary": "Accept-Encoding",
            # Sites load it from another origin, also with crossorigin/SRI or under COEP.
            "access-control-allow-origin": "*",
            "cross-origin-resource-policy": "cross-origin",
            "x-content-type-options": "nosniff",
            "x-datafast-script-version": built.version,
        }
        if _matches(request.headers.get("if-none-match", ""), built):
            return Response(b"", status_code=HTTP_304_NOT_MODIFIED, headers=headers)
        if encoding != "identity":
            headers["content-encoding"] = encoding
        return Response(
            built.bodies[encoding],
            status_code=HTTP_200_OK,
            media_type="text/javascript",
            headers=headers,
        )

    @get("/js/{name:str}", include_in_schema=False, sync_to_thread=False)
    def tracking_script(name: FromPath[str], request: Request[Any, Any, Any]) -> Response[bytes]:
        return respond(name, request)

    # Uptime checks and CDNs ask with HEAD: the same answer without the body.
    @head("/js/{name:str}", include_in_schema=False, sync_to_thread=False)
    def tracking_script_head(name: FromPath[str], request: Request[Any, Any, Any]) -> Response[None]:
        answer = respond(name, request)
        headers = {**answer.headers, "content-length": str(len(answer.content))}
        return Response(None, status_code=answer.status_code, headers=headers, media_type=answer.media_type)

    return Router(path="/", route_handlers=[tracking_script, tracking_script_head])
