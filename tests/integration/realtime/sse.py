"""A small Server-Sent Events reader over httpx, with deadlines (the tests never wait unbounded)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import msgspec


@dataclass
class Message:
    id: str | None = None
    event: str | None = None
    data: str = ""
    retry: int | None = None
    comments: list[str] = field(default_factory=list)

    def json(self) -> Any:
        return msgspec.json.decode(self.data)


class EventStream:
    def __init__(
        self, url: str, *, cookies: httpx.Cookies | None = None, headers: dict[str, str] | None = None
    ):
        # The server sends a heartbeat comment at least every REALTIME_HEARTBEAT seconds: a read that
        # takes longer than 10 s means the stream is stuck.
        self._client = httpx.Client(cookies=cookies, timeout=httpx.Timeout(10.0))
        self._context = self._client.stream(
            "GET", url, headers={"accept": "text/event-stream", **(headers or {})}
        )
        self.response = self._context.__enter__()
        self._lines: Iterator[str] = self.response.iter_lines()

    def next(self) -> Message:
        message = Message()
        seen = False
        for line in self._lines:
            if line == "":
                if seen:
                    return message
                continue
            seen = True
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "":
                message.comments.append(value)
            elif name == "id":
                message.id = value
            elif name == "event":
                message.event = value
            elif name == "data":
                message.data += ("\n" if message.data else "") + value
            elif name == "retry":
                message.retry = int(value)
        raise AssertionError("the stream ended")

    def next_event(self, timeout: float = 10) -> Message:
        """The next ``event: event`` message, skipping heartbeats, within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            message = self.next()
            if message.event == "event":
                return message
            assert time.monotonic() < deadline, f"no event within {timeout}s"

    def close(self) -> None:
        self._context.__exit__(None, None, None)
        self._client.close()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
