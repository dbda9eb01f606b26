"""The test ClickHouse HTTP endpoint (tests/clickhouse_http.py) against clickhouse-connect's own
behaviour and the protocol as ClickHouse documents it: what scaled mode's tests stand on."""

from __future__ import annotations

import gzip
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path

import clickhouse_connect
import httpx
import lz4.frame
import pytest
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError

from tests.clickhouse_http import ClickHouseServer, _zstd


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseServer]:
    with ClickHouseServer(tmp_path_factory.mktemp("chhttp") / "data") as server:
        yield server


@pytest.fixture
def database(server: ClickHouseServer) -> str:
    name = f"t_{uuid.uuid4().hex[:8]}"
    httpx.post(server.url, content=f"CREATE DATABASE {name}").raise_for_status()
    httpx.post(
        server.url,
        params={"database": name},
        content="CREATE TABLE e (a UInt32, s String) ENGINE = MergeTree ORDER BY a"
        " SETTINGS non_replicated_deduplication_window = 100",
    ).raise_for_status()
    return name


def connect(server: ClickHouseServer, **options: object) -> Client:
    return clickhouse_connect.get_client(dsn=server.url, **options)  # type: ignore[arg-type]


def test_the_client_handshake_reads_the_engines_version_and_timezone(server: ClickHouseServer) -> None:
    client = connect(server)
    engine = httpx.post(server.url, content="SELECT version(), timezone()").text.strip().split("\t")
    assert client.server_version == engine[0]
    assert str(client.server_tz) in (engine[1], "UTC")
    assert client.query(
        "SELECT {a:UInt32} + 1, {s:String}", parameters={"a": 41, "s": "é'\\"}
    ).result_rows == [(42, "é'\\")]


@pytest.mark.parametrize("compress", [True, False, "gzip", "zstd", "lz4"])  # its deflate cannot insert
def test_inserts_and_reads_in_native_whatever_the_compression(
    server: ClickHouseServer, database: str, compress: object
) -> None:
    client = connect(server, database=database, compress=compress)
    rows = [[i, f"row {i}"] for i in range(5000)]
    summary = client.insert("e", rows, column_names=["a", "s"])
    assert summary.written_rows == 5000
    assert client.query("SELECT a, s FROM e ORDER BY a").result_rows == [tuple(r) for r in rows]


def test_a_replayed_insert_deduplication_token_writes_nothing(
    server: ClickHouseServer, database: str
) -> None:
    client = connect(server, database=database)
    token = uuid.uuid4().hex
    for _ in range(3):
        client.insert(
            "e", [[1, "a"], [2, "b"]], column_names=["a", "s"], settings={"insert_deduplication_token": token}
        )
    client.insert(
        "e", [[1, "a"], [2, "b"]], column_names=["a", "s"], settings={"insert_deduplication_token": "other"}
    )
    assert client.command("SELECT count() FROM e") == 4


def test_raw_inserts_with_the_query_in_the_body_or_the_url(server: ClickHouseServer, database: str) -> None:
    plain = connect(server, database=database, compress=False)
    plain.raw_insert("e", ["a", "s"], insert_block=b'{"a":1,"s":"x"}\n{"a":2,"s":"y"}\n', fmt="JSONEachRow")
    compressed = connect(server, database=database, compress="lz4")
    compressed.raw_insert("e", ["a", "s"], insert_block=b'{"a":3,"s":"z"}\n', fmt="JSONEachRow")
    # A chunked body (the client streams a generator) with the query in the URL.
    chunks = (f'{{"a":{i},"s":"c"}}\n'.encode() for i in range(10, 20))
    httpx.post(
        server.url,
        params={"database": database, "query": "INSERT INTO e (a, s) FORMAT JSONEachRow"},
        content=chunks,
    ).raise_for_status()
    assert plain.query("SELECT count(), sum(a) FROM e").result_rows == [(13, 6 + sum(range(10, 20)))]


def test_commands_streams_and_empty_results(server: ClickHouseServer, database: str) -> None:
    client = connect(server, database=database)
    assert client.command("SELECT 7") == 7
    assert client.command("SELECT 1, 'two'") == ["1", "two"]
    assert client.command("SELECT a FROM e WHERE a > 100") == ""  # a result set, with no row
    assert client.command("DROP TABLE IF EXISTS nothing_here").written_rows == 0  # no result set
    with client.query_row_block_stream("SELECT number FROM numbers(250000)") as stream:
        assert sum(len(block) for block in stream) == 250000
    assert client.query("SELECT a FROM e").result_rows == []


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "lz4", "zstd"])
def test_compressed_bodies_both_ways(server: ClickHouseServer, encoding: str) -> None:
    packers = {
        "gzip": gzip.compress,
        "deflate": zlib.compress,
        "lz4": lz4.frame.compress,
        "zstd": lambda data: _zstd(data, compress=True),
    }
    unpackers = {
        "gzip": gzip.decompress,
        "deflate": zlib.decompress,
        "lz4": lz4.frame.decompress,
        "zstd": lambda data: _zstd(data, compress=False),
    }
    query = b"SELECT number FROM numbers(1000) FORMAT CSV"
    with httpx.stream(
        "POST",
        server.url,
        params={"enable_http_compression": "1"},
        content=packers[encoding](query),
        headers={"Content-Encoding": encoding, "Accept-Encoding": encoding},
    ) as response:
        raw = b"".join(response.iter_raw())  # as sent, still compressed
    assert response.status_code == 200
    assert response.headers["Content-Encoding"] == encoding
    assert response.headers["X-ClickHouse-Format"] == "CSV"
    assert unpackers[encoding](raw).decode().split() == [str(i) for i in range(1000)]


def test_errors_carry_clickhouses_status_code_header_and_text(server: ClickHouseServer) -> None:
    cases = {
        "SELECT * FROM no_such_table": (404, 60),
        "SELEC 1": (400, 62),
        "SELECT throwIf(1)": (500, 395),
        "SELECT sleep(0.2) SETTINGS max_execution_time = 0.05, timeout_before_checking_execution_speed = 0": (
            408,
            159,
        ),
    }
    for query, (status, code) in cases.items():
        response = httpx.post(server.url, content=query)
        assert (response.status_code, response.headers["X-ClickHouse-Exception-Code"]) == (
            status,
            str(code),
        ), query
        assert response.text.startswith(f"Code: {code}. DB::Exception: "), response.text
    with pytest.raises(DatabaseError, match="code: 60"):
        connect(server).query("SELECT * FROM no_such_table")
    unknown = httpx.post(server.url, params={"no_such_setting": "1"}, content="SELECT 1")
    assert (unknown.status_code, unknown.headers["X-ClickHouse-Exception-Code"]) == (404, "115")


def test_what_it_does_not_support_is_an_error_never_a_silent_success(server: ClickHouseServer) -> None:
    refused = [
        httpx.post(server.url, params={"compress": "1"}, content="SELECT 1"),
        httpx.post(server.url, content="CREATE TEMPORARY TABLE x (a UInt8)"),
        httpx.post(server.url, content=b"x", headers={"Content-Encoding": "br"}),
        httpx.post(
            server.url,
            params={"query": "SELECT * FROM ext", "ext_structure": "a UInt8"},
            files={"ext": ("ext.tsv", b"1\n")},
        ),
    ]
    assert [r.status_code for r in refused] == [501] * 4
    assert all(r.headers["X-ClickHouse-Exception-Code"] == "48" for r in refused)


def test_get_is_read_only_and_sessions_keep_their_settings_and_database(
    server: ClickHouseServer, database: str
) -> None:
    assert httpx.get(server.url, params={"query": "SELECT 1"}).text == "1\n"
    written = httpx.get(server.url, params={"query": f"INSERT INTO {database}.e VALUES (1, 'x')"})
    assert (written.status_code, written.headers["X-ClickHouse-Exception-Code"]) == (500, "164")
    session = {"session_id": uuid.uuid4().hex}
    httpx.post(server.url, params=session, content="SET max_threads = 1").raise_for_status()
    httpx.post(server.url, params=session, content=f"USE {database}").raise_for_status()
    kept = httpx.post(
        server.url, params=session, content="SELECT getSetting('max_threads'), currentDatabase()"
    )
    assert kept.text.split() == ["1", database]
    other = httpx.post(server.url, content="SELECT getSetting('max_threads') = 1, currentDatabase()")
    assert other.text.split() == ["0", "default"]  # neither leaks out of the session
    missing = httpx.post(server.url, params={"session_id": "nope", "session_check": "1"}, content="SELECT 1")
    assert missing.headers["X-ClickHouse-Exception-Code"] == "372"


def test_bound_parameters_sent_as_a_form(server: ClickHouseServer) -> None:
    client = connect(server, form_encode_query_params=True)
    assert client.query("SELECT {x:String}", parameters={"x": "a&b=c"}).result_rows == [("a&b=c",)]


def test_credentials_are_checked(tmp_path: Path) -> None:
    with ClickHouseServer(tmp_path / "data") as server:
        wrong = httpx.post(server.url, content="SELECT 1", auth=("default", "guess"))
        assert (wrong.status_code, wrong.headers["X-ClickHouse-Exception-Code"]) == (403, "516")
        assert httpx.post(server.url, content="SELECT 1", auth=("default", "")).text == "1\n"
