"""The optional daily rates download (``RATES_URL``): the ECB's zip, or a CSV, read from a local
stand-in; off unless the operator sets it; a bad file stores nothing."""

from __future__ import annotations

import io
import threading
import zipfile
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from datafast.domain.revenue.rates import rates_refresh
from datafast.domain.revenue.store import PaymentStore
from datafast.lib.adapters import Adapters

# Rates far from any real fixing, on a day after the bundled history, so only the download has them.
ECB = "Date,USD,JPY,GBP,\n2031-06-13,1.2345,171.50,0.8765,\n2031-06-12,1.2300,N/A,0.8700,\n"


def _zip(text: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("eurofxref-hist.csv", text)
    return buffer.getvalue()


@pytest.fixture
def files() -> Iterator[dict[str, Any]]:
    """A stand-in download site: path → bytes; ``served`` counts requests."""
    served: dict[str, Any] = {"/eurofxref-hist.zip": _zip(ECB), "/bad.csv": b"date,base,quote,rate\nnope\n"}
    state = {"hits": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state["hits"] += 1
            body = served.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield {"url": f"http://127.0.0.1:{server.server_address[1]}", "state": state}
    server.shutdown()
    server.server_close()


@pytest.fixture
def env(env: dict[str, str], files: dict[str, Any], request: pytest.FixtureRequest) -> dict[str, str]:
    path = getattr(request, "param", "/eurofxref-hist.zip")
    return {**env, "RATES_URL": files["url"] + path} if path else env


async def test_the_job_loads_the_ecb_zip_it_downloads(adapters: Adapters, files: dict[str, Any]) -> None:
    answer = await rates_refresh({"adapters": adapters})

    assert answer == {"loaded": 5, "converted": 0}
    store = PaymentStore(adapters.event_store)
    assert await store.rate("EUR", "USD", date(2031, 6, 13)) == pytest.approx(1.2345)
    assert await store.rate("GBP", "EUR", date(2031, 6, 12)) == pytest.approx(1 / 0.87)
    assert await store.rate("EUR", "JPY", date(2031, 6, 13)) == pytest.approx(171.5)
    assert files["state"]["hits"] == 1


@pytest.mark.parametrize("env", ["/bad.csv", "/missing.zip"], indirect=True)
async def test_a_bad_or_missing_file_fails_the_job_and_stores_nothing(
    adapters: Adapters, files: dict[str, Any]
) -> None:
    with pytest.raises(ValueError, match=r"line 2|answered 404"):
        await rates_refresh({"adapters": adapters})
    stored = await adapters.event_store.query(
        "SELECT count() FROM exchange_rates WHERE source = {url:String}",
        parameters={"url": adapters.settings.rates_url},
    )
    assert stored.result_rows[0][0] == 0


@pytest.mark.parametrize("env", [""], indirect=True)
async def test_without_rates_url_nothing_is_downloaded(adapters: Adapters, files: dict[str, Any]) -> None:
    assert await rates_refresh({"adapters": adapters}) == {"skipped": "RATES_URL is not set"}
    assert files["state"]["hits"] == 0
