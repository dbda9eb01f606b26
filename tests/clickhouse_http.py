"""A ClickHouse server for tests and benchmarks: the ClickHouse HTTP interface, executed by chDB.

No ClickHouse server package is reachable from this machine, so scaled mode (several DataFast
processes sharing one ClickHouse over HTTP) runs against this instead. It speaks the protocol
as ClickHouse documents it and as clickhouse-connect uses it, and runs every statement on the
real engine (chDB, i.e. ClickHouse itself, in this process):

- the query in the ``query`` URL parameter, in the POST body, or both (the body continues the
  query; for ``INSERT … FORMAT X`` it is the data), or in a ``multipart/form-data`` body;
- ``database``, ``default_format``, ``query_id``, ``session_id`` (with ``session_timeout`` and
  ``session_check``), ``param_<name>`` bound values, and every other URL parameter as a setting
  (an unknown one fails as in ClickHouse);
- request bodies compressed with ``Content-Encoding`` gzip, deflate, lz4 (frames) or zstd, sent
  whole or chunked; responses compressed when ``enable_http_compression=1`` and the client's
  ``Accept-Encoding`` names one of those;
- errors as ClickHouse sends them: its HTTP status for the exception code,
  ``X-ClickHouse-Exception-Code`` and a ``Code: N. DB::Exception: …`` body;
- the response headers clients read: ``X-ClickHouse-Query-Id``, ``-Format``, ``-Timezone``,
  ``-Summary`` and ``-Server-Display-Name``;
- ``GET /ping`` and ``GET /`` answer ``Ok.``; a GET query is read-only (``readonly=2``).

What it does not do answers a clear error, never a silent success: ClickHouse's own
compressed format (``compress``/``decompress=1``), external data tables, temporary tables and
brotli answer ``NOT_IMPLEMENTED`` (501). Results are sent once the statement finishes (as with
``wait_end_of_query=1``), not streamed while it runs, and statements run one at a time: chDB
allows one engine per process, so this is a single-node server without parallel queries.

Run it:  ``python -m tests.clickhouse_http --path DIR --port 8123`` (from the repository root),
or from Python with :class:`ClickHouseServer` (a subprocess, ready when its ``/ping`` answers).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import email.parser
import email.policy
import gzip
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import IO, Any
from urllib.parse import parse_qsl, urlsplit

from tests.live import free_port

__all__ = ("ClickHouseServer", "serve")

ROOT = Path(__file__).resolve().parent.parent

# --- errors -------------------------------------------------------------------------------------

# ClickHouse's HTTP status per exception (src/Server/HTTP/exceptionCodeToHTTPStatus.cpp).
_STATUS_BY_NAME = {
    **dict.fromkeys(["REQUIRED_PASSWORD"], 401),
    **dict.fromkeys(
        ["UNKNOWN_USER", "WRONG_PASSWORD", "AUTHENTICATION_FAILED", "SET_NON_GRANTED_ROLE", "ACCESS_DENIED"],
        403,
    ),
    **dict.fromkeys(
        [
            "BAD_ARGUMENTS",
            "CANNOT_COMPILE_REGEXP",
            "CANNOT_PARSE_TEXT",
            "CANNOT_PARSE_ESCAPE_SEQUENCE",
            "CANNOT_PARSE_QUOTED_STRING",
            "CANNOT_PARSE_DATE",
            "CANNOT_PARSE_DATETIME",
            "CANNOT_PARSE_NUMBER",
            "CANNOT_PARSE_DOMAIN_VALUE_FROM_STRING",
            "CANNOT_PARSE_IPV4",
            "CANNOT_PARSE_IPV6",
            "CANNOT_PARSE_INPUT_ASSERTION_FAILED",
            "CANNOT_PARSE_UUID",
            "DUPLICATE_COLUMN",
            "ILLEGAL_COLUMN",
            "UNKNOWN_ELEMENT_IN_AST",
            "UNKNOWN_TYPE_OF_AST_NODE",
            "THERE_IS_NO_COLUMN",
            "TOO_DEEP_AST",
            "TOO_BIG_AST",
            "UNEXPECTED_AST_STRUCTURE",
            "SYNTAX_ERROR",
            "INCORRECT_DATA",
            "TYPE_MISMATCH",
            "VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE",
        ],
        400,
    ),
    **dict.fromkeys(
        [
            "UNKNOWN_TABLE",
            "UNKNOWN_FUNCTION",
            "UNKNOWN_IDENTIFIER",
            "UNKNOWN_TYPE",
            "UNKNOWN_STORAGE",
            "UNKNOWN_DATABASE",
            "UNKNOWN_SETTING",
            "UNKNOWN_DIRECTION_OF_SORTING",
            "UNKNOWN_AGGREGATE_FUNCTION",
            "UNKNOWN_FORMAT",
            "UNKNOWN_DATABASE_ENGINE",
            "UNKNOWN_TYPE_OF_QUERY",
            "UNKNOWN_ROLE",
        ],
        404,
    ),
    "QUERY_IS_TOO_LARGE": 413,
    "NOT_IMPLEMENTED": 501,
    "SOCKET_TIMEOUT": 503,
    "CANNOT_OPEN_FILE": 503,
    "CANNOT_SCHEDULE_TASK": 503,
    "HTTP_LENGTH_REQUIRED": 411,
    "TIMEOUT_EXCEEDED": 408,
    "UNSUPPORTED_MEDIA_TYPE": 415,
}
_CODES = {
    "NOT_IMPLEMENTED": 48,
    "SYNTAX_ERROR": 62,
    "UNKNOWN_FORMAT": 73,
    "INCORRECT_DATA": 117,
    "READONLY": 164,
    "SESSION_NOT_FOUND": 372,
    "SESSION_IS_LOCKED": 373,
    "UNKNOWN_USER": 192,
    "AUTHENTICATION_FAILED": 516,
    "HTTP_LENGTH_REQUIRED": 381,
}
_ENGINE_ERROR = re.compile(r"Code: (\d+)\..*?(?:\(([A-Z0-9_]+)\))?(?: \(version [^)]*\))?\s*$", re.S)


class ClickHouseError(Exception):
    def __init__(self, code: int, name: str, message: str) -> None:
        super().__init__(message)
        self.code, self.name = code, name

    @classmethod
    def of(cls, name: str, message: str) -> ClickHouseError:
        return cls(_CODES[name], name, f"Code: {_CODES[name]}. DB::Exception: {message}. ({name})")

    @classmethod
    def from_engine(cls, exc: Exception) -> ClickHouseError:
        text = str(exc).strip()
        match = _ENGINE_ERROR.search(text)
        if match is None:
            return cls(1001, "STD_EXCEPTION", f"Code: 1001. DB::Exception: {text}. (STD_EXCEPTION)")
        return cls(int(match[1]), match[2] or "", text)

    @property
    def status(self) -> int:
        return _STATUS_BY_NAME.get(self.name, 500)


# --- bodies -------------------------------------------------------------------------------------


def _lz4_frames(data: bytes) -> bytes:
    import lz4.frame

    out, rest = [], data
    while rest:
        decompressor = lz4.frame.LZ4FrameDecompressor()
        out.append(decompressor.decompress(rest))
        if not decompressor.eof:
            raise ClickHouseError.of("INCORRECT_DATA", "truncated lz4 frame in the request body")
        rest = decompressor.unused_data
    return b"".join(out)


def _zstd(data: bytes, compress: bool) -> bytes:
    if sys.version_info >= (3, 14):
        from compression import zstd
    else:
        from backports import zstd
    return zstd.compress(data) if compress else zstd.decompress(data)


def decode_body(data: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    try:
        if encoding in ("", "identity"):
            return data
        if encoding == "gzip":
            return gzip.decompress(data)
        if encoding == "deflate":
            return zlib.decompress(data)
        if encoding == "lz4":
            return _lz4_frames(data)
        if encoding == "zstd":
            return _zstd(data, compress=False)
    except ClickHouseError:
        raise
    except Exception as exc:  # a corrupt body: zlib.error, lz4's RuntimeError, ZstdError
        raise ClickHouseError.of(
            "INCORRECT_DATA", f"cannot decode the {encoding} request body: {exc}"
        ) from exc
    raise ClickHouseError.of("NOT_IMPLEMENTED", f"Content-Encoding {encoding} is not supported here")


def encode_body(data: bytes, encoding: str) -> bytes:
    import lz4.frame

    return {
        "gzip": lambda: gzip.compress(data, compresslevel=3),
        "deflate": lambda: zlib.compress(data, 3),
        "lz4": lambda: lz4.frame.compress(data),
        "zstd": lambda: _zstd(data, compress=True),
    }[encoding]()


_RESPONSE_ENCODINGS = ("lz4", "zstd", "gzip", "deflate")


# --- statements ---------------------------------------------------------------------------------

_LEADING = re.compile(r"^(?:\s+|--[^\n]*\n|/\*.*?\*/)*", re.S)
_INSERT = re.compile(r"INSERT\s+INTO\b", re.I)
_TRAILING_FORMAT = re.compile(r"\bFORMAT\s+([A-Za-z0-9_]+)\s*;?\s*$", re.I)
# An INSERT's data starts on the line after its FORMAT clause.
_INSERT_WITH_DATA = re.compile(rb"^(.*?\bFORMAT\s+[A-Za-z0-9_]+)[ \t]*\r?\n", re.I | re.S)
_RESULT_KEYWORDS = {"SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXISTS", "EXPLAIN", "CHECK", "("}
_READ_KEYWORDS = _RESULT_KEYWORDS | {"SET", "USE"}
_TEMPORARY = re.compile(r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?TEMPORARY\b", re.I)

# URL parameters the HTTP layer reads; every other one is a setting.
_HTTP_PARAMETERS = {
    "query",
    "database",
    "default_format",
    "query_id",
    "session_id",
    "session_timeout",
    "session_check",
    "close_session",
    "user",
    "password",
    "quota_key",
    "buffer_size",
    "wait_end_of_query",
    "client_protocol_version",
    "compress",
    "decompress",
    "stacktrace",
    "role",
}
# Settings about the HTTP exchange itself: honoured (or harmlessly ignored) here, not in the engine.
_HTTP_SETTINGS = {
    "enable_http_compression",
    "http_zlib_compression_level",
    "send_progress_in_http_headers",
    "http_headers_progress_interval_ms",
    "readonly",
}

_CONTENT_TYPES = {
    "TabSeparated": "text/tab-separated-values; charset=UTF-8",
    "TSV": "text/tab-separated-values; charset=UTF-8",
    "CSV": "text/csv; charset=UTF-8",
    "JSON": "application/json; charset=UTF-8",
    "JSONEachRow": "application/x-ndjson; charset=UTF-8",
    "JSONCompact": "application/json; charset=UTF-8",
}


def _first_keyword(sql: str) -> str:
    rest = sql[_LEADING.match(sql).end() :]  # type: ignore[union-attr]
    if rest.startswith("("):
        return "("
    return rest.split(None, 1)[0].upper() if rest.strip() else ""


@dataclass
class Statement:
    sql: str
    data: bytes | None = None
    """An INSERT's rows, in the format its FORMAT clause names."""


def split_statement(query: str | None, body: bytes) -> Statement:
    """The statement and an INSERT's data, from the ``query`` parameter and the body."""
    if query is not None and query.strip():
        if not body:
            return Statement(query)
        if _INSERT.match(query[_LEADING.match(query).end() :]) and _TRAILING_FORMAT.search(query):  # type: ignore[union-attr]
            return Statement(query, body)
        return Statement(query + "\n" + body.decode("utf-8", "replace"))  # the body continues the query
    head = body[: _LEADING.match(body[:4096].decode("utf-8", "replace")).end()]  # type: ignore[union-attr]
    if _INSERT.match(body[len(head) : len(head) + 64].decode("utf-8", "replace")):
        match = _INSERT_WITH_DATA.match(body)
        if match is not None:
            data = body[match.end() :]
            return Statement(match[1].decode(), data if data else None)
    return Statement(body.decode("utf-8", "replace"))


# --- the engine ---------------------------------------------------------------------------------


@dataclass
class Result:
    body: bytes
    summary: dict[str, str]
    fmt: str | None


@dataclass
class Session:
    settings: dict[str, str] = field(default_factory=dict)
    database: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    timeout: float = 60.0
    expires: float = 0.0


class Engine:
    """One chDB connection; statements run one at a time, each with its own settings."""

    def __init__(self, path: str) -> None:
        import chdb

        self.conn = chdb.connect(path)
        self.lock = threading.Lock()
        self.current_database = "default"
        self.timezone, self.version = (
            self.conn.query("SELECT timezone(), version()", "TabSeparated")
            .bytes()
            .decode()
            .strip()
            .split("\t")
        )
        self.baseline = self._changed()
        """Settings chDB itself starts with changed: never a session's own."""

    def _changed(self) -> dict[str, str]:
        rows = self.conn.query("SELECT name, value FROM system.settings WHERE changed", "JSONEachRow").bytes()
        return {r["name"]: r["value"] for r in map(json.loads, rows.splitlines())}

    def _use(self, database: str) -> None:
        if database != self.current_database:
            self.conn.query(f"USE `{database.replace('`', '``')}`")
            self.current_database = database

    def execute(
        self,
        statement: Statement,
        database: str,
        settings: dict[str, str],
        params: dict[str, str],
        default_format: str,
        session: Session | None,
    ) -> Result:
        sql = statement.sql
        keyword = _first_keyword(sql)
        if _TEMPORARY.match(sql):
            raise ClickHouseError.of(
                "NOT_IMPLEMENTED", "temporary tables are not supported by this test server"
            )
        trailing = _TRAILING_FORMAT.search(sql)
        fmt = trailing[1] if trailing and keyword in _RESULT_KEYWORDS else default_format
        infile: IO[bytes] | None = None
        if statement.data is not None:
            infile = tempfile.NamedTemporaryFile(prefix="chhttp-", suffix=".data")  # noqa: SIM115
            infile.write(statement.data)
            infile.flush()
            head, data_format = sql[: trailing.start()], trailing[1]  # type: ignore[union-attr]
            quoted = infile.name.replace("\\", "\\\\").replace("'", "\\'")
            sql = f"{head} FROM INFILE '{quoted}' FORMAT {data_format}"
        applied: list[str] = []
        with self.lock:
            try:
                self._use(database)
                for name, value in settings.items():
                    quoted_value = value.replace("\\", "\\\\").replace("'", "\\'")
                    self.conn.query(f"SET {_setting_name(name)} = '{quoted_value}'")
                    applied.append(name)
                result = self.conn.query(sql, fmt, params=params)
                if session is not None or keyword in ("SET", "USE"):
                    self._keep_session_state(session)
                if keyword == "USE":
                    self.current_database = ""  # whatever the statement chose: USE again next time
                return Result(
                    body=result.bytes() or b"",
                    summary={
                        "read_rows": str(result.rows_read()),
                        "read_bytes": str(result.bytes_read()),
                        "written_rows": str(result.rows_written()),
                        "written_bytes": str(result.bytes_written()),
                        "total_rows_to_read": str(result.rows_read()),
                        "result_bytes": str(len(result.bytes() or b"")),
                        "elapsed_ns": str(int(result.elapsed() * 1e9)),
                    },
                    fmt=fmt if keyword in _RESULT_KEYWORDS else None,
                )
            except ClickHouseError:
                raise
            except Exception as exc:
                raise ClickHouseError.from_engine(exc) from exc
            finally:
                self._reset(applied)
                if infile is not None:
                    infile.close()

    def _keep_session_state(self, session: Session | None) -> None:
        """A SET or USE lasts as long as its session (and, without one, only its own request)."""
        changed = {k: v for k, v in self._changed().items() if self.baseline.get(k) != v}
        changed.pop("database", None)
        if session is not None:
            session.settings.update(changed)
            session.database = (
                self.conn.query("SELECT currentDatabase()", "TabSeparated").bytes().decode().strip()
            )
        for name in changed:
            self.conn.query(f"SET {_setting_name(name)} = DEFAULT")

    def _reset(self, names: list[str]) -> None:
        for name in names:
            with contextlib.suppress(Exception):
                self.conn.query(f"SET {_setting_name(name)} = DEFAULT")


_SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _setting_name(name: str) -> str:
    if not _SETTING_NAME.match(name):
        raise ClickHouseError.of("SYNTAX_ERROR", f"invalid setting name {name!r}")
    return name


# --- HTTP ---------------------------------------------------------------------------------------


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], engine: Engine, user: str, password: str) -> None:
        super().__init__(address, Handler)
        self.engine = engine
        self.user, self.password = user, password
        self.sessions: dict[str, Session] = {}
        self.sessions_lock = threading.Lock()
        self.display_name = socket.gethostname()

    def session(self, session_id: str, timeout: str | None, check: bool) -> Session:
        now = time.monotonic()
        with self.sessions_lock:
            for key in [k for k, s in self.sessions.items() if s.expires < now]:
                del self.sessions[key]
            session = self.sessions.get(session_id)
            if session is None:
                if check:
                    raise ClickHouseError.of("SESSION_NOT_FOUND", f"Session {session_id} not found")
                session = self.sessions[session_id] = Session()
            if timeout:
                session.timeout = float(timeout)
            session.expires = now + session.timeout
            return session


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else each small answer waits ~40 ms for the client's delayed ACK
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # -- plumbing

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = self.headers.get("Content-Length")
        if length is None:
            if self.command == "POST":
                raise ClickHouseError.of(
                    "HTTP_LENGTH_REQUIRED", "a POST needs Content-Length or chunked encoding"
                )
            return b""
        return self.rfile.read(int(length))

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, exc: ClickHouseError, query_id: str) -> None:
        body = (str(exc).rstrip() + "\n").encode()
        self._send(
            exc.status,
            body,
            {
                "Content-Type": "text/plain; charset=UTF-8",
                "X-ClickHouse-Exception-Code": str(exc.code),
                "X-ClickHouse-Query-Id": query_id,
                "X-ClickHouse-Server-Display-Name": self.server.display_name,
            },
        )

    def _authenticate(self, params: dict[str, str]) -> None:
        user, password = params.get("user"), params.get("password")
        if "X-ClickHouse-User" in self.headers:
            user, password = self.headers["X-ClickHouse-User"], self.headers.get("X-ClickHouse-Key", "")
        auth = self.headers.get("Authorization", "")
        if auth.lower().startswith("basic "):
            try:
                user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            except ValueError as exc:
                raise ClickHouseError.of("AUTHENTICATION_FAILED", "malformed Basic credentials") from exc
        user = user or "default"
        if user != self.server.user:
            raise ClickHouseError.of("UNKNOWN_USER", f"{user}: Authentication failed: there is no such user")
        if (password or "") != self.server.password:
            raise ClickHouseError.of(
                "AUTHENTICATION_FAILED", f"{user}: Authentication failed: password is incorrect"
            )

    def _form(self, body: bytes, content_type: str) -> tuple[dict[str, str], bytes]:
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
        )
        fields: dict[str, str] = {}
        for part in message.iter_parts():  # type: ignore[attr-defined]
            if part.get_filename() is not None:
                raise ClickHouseError.of(
                    "NOT_IMPLEMENTED", "external data tables are not supported by this test server"
                )
            fields[part.get_param("name", header="content-disposition")] = part.get_content()
        return fields, b""

    # -- methods

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path in ("/ping", "/") and "query=" not in self.path:
            self._send(200, b"Ok.\n", {"Content-Type": "text/html; charset=UTF-8"})
            return
        if path == "/replicas_status":
            self._send(200, b"Ok.\n", {"Content-Type": "text/plain; charset=UTF-8"})
            return
        self._query(readonly=True)

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_POST(self) -> None:
        self._query(readonly=False)

    def _query(self, readonly: bool) -> None:
        params = dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))
        query_id = params.get("query_id") or str(uuid.uuid4())
        session: Session | None = None
        try:
            body = self._read_body()
            if self.command == "POST":
                body = decode_body(body, self.headers.get("Content-Encoding", ""))
            content_type = self.headers.get("Content-Type", "")
            if content_type.lower().startswith("multipart/form-data"):
                fields, body = self._form(body, content_type)
                params.update(fields)
            self._authenticate(params)
            for name in ("compress", "decompress"):
                if params.get(name) == "1":
                    raise ClickHouseError.of(
                        "NOT_IMPLEMENTED",
                        f"{name}=1 (ClickHouse's compressed format) is not supported by this test server",
                    )
            statement = split_statement(params.get("query"), body)
            if not statement.sql.strip():
                raise ClickHouseError.of("SYNTAX_ERROR", "Empty query")
            keyword = _first_keyword(statement.sql)
            if (readonly or params.get("readonly", "0") not in ("", "0")) and keyword not in _READ_KEYWORDS:
                raise ClickHouseError.of("READONLY", "Cannot execute query in readonly mode")
            settings = {
                k: v
                for k, v in params.items()
                if k not in _HTTP_PARAMETERS and k not in _HTTP_SETTINGS and not k.startswith("param_")
            }
            database = params.get("database") or "default"
            if params.get("session_id"):
                session = self.server.session(
                    params["session_id"], params.get("session_timeout"), params.get("session_check") == "1"
                )
                if not session.lock.acquire(blocking=False):
                    raise ClickHouseError.of(
                        "SESSION_IS_LOCKED",
                        f"Session {params['session_id']} is locked by a concurrent client",
                    )
                settings = {**session.settings, **settings}
                database = params.get("database") or session.database or "default"
            try:
                result = self.server.engine.execute(
                    statement,
                    database,
                    settings,
                    {k[6:]: v for k, v in params.items() if k.startswith("param_")},
                    params.get("default_format") or "TabSeparated",
                    session,
                )
            finally:
                if session is not None:
                    session.lock.release()
                    if params.get("close_session") == "1":
                        with self.server.sessions_lock:
                            self.server.sessions.pop(params["session_id"], None)
        except ClickHouseError as exc:
            self._error(exc, query_id)
            return
        headers = {
            "X-ClickHouse-Query-Id": query_id,
            "X-ClickHouse-Timezone": self.server.engine.timezone,
            "X-ClickHouse-Server-Display-Name": self.server.display_name,
            "X-ClickHouse-Summary": json.dumps(result.summary, separators=(",", ":")),
            "Content-Type": _CONTENT_TYPES.get(result.fmt or "", "application/octet-stream")
            if result.fmt
            else "text/plain; charset=UTF-8",
        }
        if result.fmt:
            headers["X-ClickHouse-Format"] = result.fmt
        if session is not None:
            headers["Keep-Alive"] = f"timeout={int(session.timeout)}"
        payload = result.body
        if params.get("enable_http_compression") == "1" and payload:
            accepted = [
                e.split(";")[0].strip().lower() for e in self.headers.get("Accept-Encoding", "").split(",")
            ]
            encoding = next((e for e in accepted if e in _RESPONSE_ENCODINGS), None)
            if encoding is not None:
                payload = encode_body(payload, encoding)
                headers["Content-Encoding"] = encoding
        self._send(200, payload, headers)


# --- running it ---------------------------------------------------------------------------------


def serve(path: str, host: str, port: int, user: str = "default", password: str = "") -> None:
    server = Server((host, port), Engine(path), user, password)

    def stop(*_: Any) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"ClickHouse HTTP (chDB {server.engine.version}) on http://{host}:{port}", flush=True)
    server.serve_forever(poll_interval=0.2)
    server.server_close()
    server.engine.conn.close()


class ClickHouseServer:
    """This server in its own process, e.g. ``with ClickHouseServer(path) as ch: ch.url``."""

    def __init__(self, path: Path, port: int | None = None, log: Path | None = None) -> None:
        self.path = path
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log or path.parent / f"{path.name}-clickhouse-http.log"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ClickHouseServer:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self, timeout: float = 60) -> None:
        import httpx

        self.path.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.clickhouse_http",
                    "--path",
                    str(self.path),
                    "--port",
                    str(self.port),
                ],
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the ClickHouse HTTP server exited:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/ping", timeout=2).text == "Ok.\n":
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"the ClickHouse HTTP server did not answer in {timeout}s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def main(argv: Iterator[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--path", required=True, help="chDB data directory")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8123)
    parser.add_argument("--user", default="default")
    parser.add_argument("--password", default=os.environ.get("CLICKHOUSE_PASSWORD", ""))
    args = parser.parse_args(list(argv) if argv is not None else None)
    serve(args.path, args.host, args.port, args.user, args.password)


if __name__ == "__main__":
    main()
