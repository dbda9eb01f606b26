"""The API reference at /api/schema runs only our own scripts, under the app's CSP."""

from __future__ import annotations

import re

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from datafast.server.spa import APP_DIR


@pytest.mark.parametrize("path", ["/api/schema", "/api/schema/scalar"])
async def test_the_api_reference_loads_no_cross_origin_script_and_has_a_csp(
    client: AsyncTestClient[Litestar], path: str
) -> None:
    if not (APP_DIR / "index.html").is_file():
        pytest.fail(f"{APP_DIR}/index.html is missing: run `make build` first")
    page = await client.get(path)

    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "connect-src 'self'" in csp
    scripts = re.findall(r"<script\b[^>]*>", page.text, re.I)
    sources = [re.search(r'\bsrc="([^"]*)"', tag) for tag in scripts]
    external = [m.group(1) for m in sources if m]
    assert external, "the reference's bundle is not referenced"
    for src in external:
        # Same origin only: no scheme, no host (a cross-origin script would need integrity at least).
        assert src.startswith("/"), src
        assert not src.startswith("//"), src
        bundle = await client.get(src)
        assert bundle.status_code == 200
        assert bundle.headers["content-type"].startswith("text/javascript")
    # No inline code either (the CSP would block it): the configuration is a data attribute.
    for inline in re.findall(r"<script\b(?![^>]*\bsrc=)[^>]*>(.*?)</script>", page.text, re.I | re.S):
        assert not inline.strip(), inline
    assert not re.search(r"<(link|img)\b[^>]*\bhref=\"https?://", page.text)
    assert "cdn.jsdelivr.net" not in page.text
