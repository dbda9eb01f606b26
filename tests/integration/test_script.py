"""GET /js/script.js: the built tracker, its ETag, caching and precompressed bodies; its size budget."""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.plugins.problem_details import ProblemDetailsPlugin
from litestar.testing import AsyncTestClient

from datafast.server.problems import problem_details_config
from datafast.server.script import SCRIPT_DIR, ScriptFiles, script_router

ROOT = Path(__file__).resolve().parents[2]
BUDGET = 2048  # bytes, gzipped: the limit for the default script
EXTENSION_BUDGET = 600  # bytes, gzipped: each optional feature's file
EXTENSIONS = ("scroll", "downloads", "forms", "404")

SCRIPT = SCRIPT_DIR / "script.js"


@pytest.fixture
def mode() -> str:
    return "embedded"  # serving the script does not depend on the storage mode


@pytest.fixture
def built() -> bytes:
    if not SCRIPT.is_file():
        pytest.fail(f"{SCRIPT} is missing: run `make build`")
    return SCRIPT.read_bytes()


def test_default_script_is_at_most_2_kb_gzipped(built: bytes) -> None:
    shipped = (SCRIPT_DIR / "script.js.gz").read_bytes()

    assert gzip.decompress(shipped) == built
    assert len(shipped) <= BUDGET, f"script.js is {len(shipped)} B gzipped, over {BUDGET} B"
    assert len(gzip.compress(built, 9)) <= BUDGET


def test_build_prints_the_gzipped_size_and_fails_past_the_budget(tmp_path: Path) -> None:
    env = {**os.environ, "TRACKER_OUT_DIR": str(tmp_path)}
    ok = subprocess.run(
        ["npm", "run", "build"], cwd=ROOT / "tracker", env=env, capture_output=True, text=True, check=False
    )
    assert ok.returncode == 0, ok.stderr
    size = re.search(r"(\d+) B gzipped \(budget 2048 B\)", ok.stdout)
    assert size is not None, ok.stdout
    assert int(size[1]) == (tmp_path / "script.js.gz").stat().st_size <= BUDGET

    over = subprocess.run(
        ["npm", "run", "build"],
        cwd=ROOT / "tracker",
        env={**env, "TRACKER_BUDGET": "1000"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert over.returncode != 0
    assert "over the 1000 B budget" in over.stderr


@pytest.mark.parametrize("name", EXTENSIONS)
def test_each_extension_is_built_and_at_most_600_bytes_gzipped(built: bytes, name: str) -> None:
    script = (SCRIPT_DIR / f"script.{name}.js").read_bytes()
    shipped = (SCRIPT_DIR / f"script.{name}.js.gz").read_bytes()

    assert gzip.decompress(shipped) == script
    assert len(shipped) <= EXTENSION_BUDGET, f"script.{name}.js is {len(shipped)} B gzipped"
    assert len(gzip.compress(script, 9)) <= EXTENSION_BUDGET
    # The script loads it by name: data-track-<name> → script.<name>.js beside it.
    assert b'"data-track-"' in built


def test_build_prints_every_extension_size_and_fails_past_their_budget(tmp_path: Path) -> None:
    env = {**os.environ, "TRACKER_OUT_DIR": str(tmp_path)}
    ok = subprocess.run(
        ["npm", "run", "build"], cwd=ROOT / "tracker", env=env, capture_output=True, text=True, check=False
    )
    assert ok.returncode == 0, ok.stderr
    for name in EXTENSIONS:
        size = re.search(rf"script\.{name}\.js \d+ B, (\d+) B gzipped \(budget 600 B\)", ok.stdout)
        assert size is not None, ok.stdout
        assert int(size[1]) == (tmp_path / f"script.{name}.js.gz").stat().st_size <= EXTENSION_BUDGET

    over = subprocess.run(
        ["npm", "run", "build"],
        cwd=ROOT / "tracker",
        env={**env, "TRACKER_EXTENSION_BUDGET": "150"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert over.returncode != 0
    assert "script.scroll.js is" in over.stderr
    assert "over the 150 B budget" in over.stderr
    assert "script.js is" not in over.stderr  # the core is within its own budget


async def test_an_extension_is_served_like_the_script(client: AsyncTestClient[Litestar]) -> None:
    core = await client.get("/js/script.js", headers={"accept-encoding": "gzip"})
    response = await client.get("/js/script.scroll.js", headers={"accept-encoding": "gzip"})

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert response.headers["content-encoding"] == "gzip"
    assert response.content == (SCRIPT_DIR / "script.scroll.js").read_bytes()  # the client decodes
    for header in ("cache-control", "vary", "access-control-allow-origin", "cross-origin-resource-policy"):
        assert response.headers[header] == core.headers[header], header
    assert response.headers["etag"] != core.headers["etag"]
    again = await client.get(
        "/js/script.scroll.js", headers={"accept-encoding": "gzip", "if-none-match": response.headers["etag"]}
    )
    assert again.status_code == 304


@pytest.mark.parametrize(
    ("accept", "encoding", "suffix"),
    [
        ("gzip, deflate, br, zstd", "br", ".br"),
        ("gzip", "gzip", ".gz"),
        ("br;q=0, gzip;q=0.5", "gzip", ".gz"),
        ("identity", None, ""),
        ("*;q=0, identity", None, ""),
    ],
)
async def test_script_is_served_precompressed_by_accept_encoding(
    client: AsyncTestClient[Litestar], built: bytes, accept: str, encoding: str | None, suffix: str
) -> None:
    response = await client.get("/js/script.js", headers={"accept-encoding": accept})

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert response.headers.get("content-encoding") == encoding
    body = (SCRIPT_DIR / f"script.js{suffix}").read_bytes()
    assert response.headers["content-length"] == str(len(body))
    version = hashlib.sha256(built).hexdigest()[:16]
    assert response.headers["etag"] == (f'"{version}-{encoding}"' if encoding else f'"{version}"')
    assert response.headers["vary"] == "Accept-Encoding"
    assert response.headers["cache-control"] == "public, max-age=86400, stale-while-revalidate=604800"
    assert response.headers["access-control-allow-origin"] == "*"
    if encoding is None:
        assert response.content == built


async def test_head_answers_the_same_headers_without_the_body(
    client: AsyncTestClient[Litestar], built: bytes
) -> None:
    response = await client.head("/js/script.js", headers={"accept-encoding": "gzip"})

    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == str((SCRIPT_DIR / "script.js.gz").stat().st_size)
    assert response.headers["etag"] == f'"{hashlib.sha256(built).hexdigest()[:16]}-gzip"'
    assert response.headers["content-encoding"] == "gzip"


async def test_a_known_etag_gets_304_without_a_body(client: AsyncTestClient[Litestar], built: bytes) -> None:
    first = await client.get("/js/script.js", headers={"accept-encoding": "gzip"})
    etag = first.headers["etag"]

    for if_none_match in (etag, f"W/{etag}", f'"stale", {etag}', etag.replace("-gzip", "")):
        again = await client.get(
            "/js/script.js", headers={"accept-encoding": "gzip", "if-none-match": if_none_match}
        )
        assert again.status_code == 304, if_none_match
        assert again.content == b""
        assert again.headers["etag"] == etag
        assert again.headers["cache-control"].startswith("public")

    changed = await client.get("/js/script.js", headers={"if-none-match": '"0000000000000000"'})
    assert changed.status_code == 200
    assert changed.content == built


async def test_the_versioned_url_is_immutable_and_other_names_are_404(
    client: AsyncTestClient[Litestar], built: bytes
) -> None:
    version = hashlib.sha256(built).hexdigest()[:16]
    plain = await client.get("/js/script.js")
    assert plain.headers["x-datafast-script-version"] == version

    versioned = await client.get(f"/js/script.{version}.js")
    assert versioned.status_code == 200
    assert versioned.content == built
    assert versioned.headers["cache-control"] == "public, max-age=31536000, immutable"

    for path in ("/js/script.0123456789abcdef.js", "/js/other.js", "/js/script.min.js"):
        missing = await client.get(path)
        assert missing.status_code == 404, path
        assert missing.headers["content-type"].startswith("application/problem+json")
        assert "/js/script.js" in missing.json()["detail"]


async def test_an_unbuilt_script_is_a_503_that_says_how_to_build_it(tmp_path: Path) -> None:
    app = Litestar(
        route_handlers=[script_router(tmp_path)], plugins=[ProblemDetailsPlugin(problem_details_config())]
    )
    async with AsyncTestClient(app) as client:
        response = await client.get("/js/script.js")

    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "make build" in response.json()["detail"]


def test_a_new_build_is_picked_up_and_stale_compressed_files_are_not_served(tmp_path: Path) -> None:
    files = ScriptFiles(tmp_path)
    (tmp_path / "script.js").write_bytes(b"console.log(1)")
    (tmp_path / "script.js.gz").write_bytes(gzip.compress(b"console.log(1)"))
    first = files.load()
    assert first is not None
    assert set(first.bodies) == {"identity", "gzip"}

    script = tmp_path / "script.js"
    script.write_bytes(b"console.log(2)")
    stat = script.stat()
    os.utime(script, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # newer than the old .gz
    second = files.load()
    assert second is not None
    assert second.version != first.version
    assert second.bodies == {"identity": b"console.log(2)"}
    assert files.load() is second


def test_the_wheel_ships_the_built_script(tmp_path: Path, built: bytes) -> None:
    uv = Path(sys.executable).parent / "uv"
    result = subprocess.run(
        [str(uv), "build", "--wheel", "--out-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    (wheel,) = tmp_path.glob("datafast-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        assert archive.read("datafast/static/js/script.js") == built
        assert gzip.decompress(archive.read("datafast/static/js/script.js.gz")) == built
        assert "datafast/static/js/script.js.br" in archive.namelist()
