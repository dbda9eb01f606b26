"""The interactive API reference at ``/api/schema``: Scalar, run from our own origin.

The page loads one script, ``/assets/scalar-api-reference-<version>.js``, which ``make build``
copies from the pinned npm package (``frontend/vendor-docs.mjs``). No third-party script ever runs
in DataFast's origin, and the page gets the app's Content-Security-Policy (``script-src 'self'``,
``connect-src 'self'``: the reference's request proxy, fonts and telemetry stay off). Without a
build the page says so and links the raw schema.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import msgspec
from litestar import Request
from litestar.openapi.plugins import ScalarRenderPlugin

from datafast.server.spa import APP_DIR

__all__ = ("SelfHostedScalar",)

_OPTIONS = {
    "withDefaultFonts": False,
    "telemetry": False,
    "showDeveloperTools": "never",
    "agent": {"disabled": True},  # "Ask AI" calls scalar.com
}


def _bundle(app_dir: Path) -> str | None:
    found = sorted((app_dir / "assets").glob("scalar-api-reference-*.js"))
    return f"/assets/{found[-1].name}" if found else None


class SelfHostedScalar(ScalarRenderPlugin):
    def __init__(self, app_dir: Path = APP_DIR) -> None:
        self._app_dir = app_dir
        super().__init__(js_url="", css_url="", favicon="", options=_OPTIONS)

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        title = html.escape(str(openapi_schema["info"]["title"]))
        schema_url = html.escape(self.get_openapi_json_route(request))
        bundle = _bundle(self._app_dir)  # looked up per request: a rebuild needs no restart
        if bundle is None:
            body = (
                "<p>The API reference is not built (run <code>make build</code>). The schema: "
                f'<a href="{schema_url}">{schema_url}</a>.</p>'
            )
        else:
            config = html.escape(msgspec.json.encode(_OPTIONS).decode())
            body = (
                f'<script id="api-reference" data-url="{schema_url}" data-configuration="{config}"></script>'
                f'<script src="{html.escape(bundle)}"></script>'
            )
        return (
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{title} API</title>{self.style}</head><body>"
            "<noscript>The API reference needs JavaScript.</noscript>"
            f"{body}</body></html>"
        ).encode()
