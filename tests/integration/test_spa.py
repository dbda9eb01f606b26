"""The dashboard SPA as the app serves it: hashed assets cached for a year, index.html never cached,
client-side routes answered with index.html, and API/ingest/operations paths never shadowed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.plugins.problem_details import ProblemDetailsPlugin
from litestar.testing import AsyncTestClient

from datafast.server.problems import problem_details_config
from datafast.server.spa import APP_DIR, spa_router


@pytest.fixture(autouse=True)
def built() -> None:
    if not (APP_DIR / "index.html").is_file():
        pytest.fail(f"{APP_DIR}/index.html is missing: run `make build` first")


async def test_index_is_not_cached_and_names_hashed_assets_cached_for_a_year(
    client: AsyncTestClient[Litestar],
) -> None:
    index = await client.get("/")
    assert index.status_code == 200
    assert index.headers["content-type"].startswith("text/html")
    assert index.headers["cache-control"] == "no-cache"
    assets = re.findall(r'(?:src|href)="(/assets/[^"]+)"', index.text)
    assert any(a.endswith(".js") for a in assets)
    assert any(a.endswith(".css") for a in assets)
    for path in assets:
        assert re.search(r"-[A-Za-z0-9_-]{8}\.(js|css)$", path), f"{path} is not content-hashed"
        asset = await client.get(path)
        assert asset.status_code == 200
        assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert asset.headers["content-type"].startswith(
            "text/javascript" if path.endswith(".js") else "text/css"
        )
    # The CSP allows the built SPA: no inline script in index.html.
    assert "<script>" not in index.text
    assert "script-src 'self'" in index.headers["content-security-policy"]


@pytest.mark.parametrize(
    "path", ["/login", "/sites", "/sites/5f0c6a8e-7a53-4c1e-9d55-8a1f3f7f2b10?period=7d", "/share/abc"]
)
async def test_client_side_routes_answer_the_index(client: AsyncTestClient[Litestar], path: str) -> None:
    answer = await client.get(path)
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-cache"
    assert '<div id="app">' in answer.text


@pytest.mark.parametrize(
    "path", ["/api/v1/nothing-here", "/api/nope", "/js/other.js", "/assets/missing-12345678.js", "/metrics/x"]
)
async def test_reserved_paths_never_fall_back_to_the_spa(
    client: AsyncTestClient[Litestar], path: str
) -> None:
    answer = await client.get(path)
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("application/problem+json")


async def test_operations_routes_are_not_shadowed(client: AsyncTestClient[Litestar]) -> None:
    assert (await client.get("/healthz")).json()["status"] == "ok"
    assert (await client.get("/api/schema/openapi.json")).json()["info"]["title"] == "DataFast"
    assert (await client.get("/api/v1/auth/me")).status_code == 401


async def test_without_a_build_pages_answer_503_saying_how_to_build(tmp_path: Path) -> None:
    app = Litestar(
        route_handlers=[spa_router(tmp_path)], plugins=[ProblemDetailsPlugin(problem_details_config())]
    )
    async with AsyncTestClient(app) as client:
        answer = await client.get("/sites")
    assert answer.status_code == 503
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert "make build" in answer.json()["detail"]
