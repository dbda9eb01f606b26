"""Named locks: one holder per name at a time; other names do not wait."""

from __future__ import annotations

import asyncio

import pytest
from valkey.asyncio import Valkey

from datafast.lib.locks import Locks, MemoryLocks, ValkeyLocks


async def _overlap(holders: list[tuple[Locks, str]]) -> int:
    """How many holders were inside at once at most, for ``holders`` (locks, name) started together."""
    inside = most = 0

    async def holder(locks: Locks, name: str) -> None:
        nonlocal inside, most
        async with locks.hold(name):
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.03)
            inside -= 1

    await asyncio.gather(*(holder(locks, name) for locks, name in holders))
    return most


async def test_memory_locks_let_one_holder_in_per_name() -> None:
    locks = MemoryLocks()
    assert await _overlap([(locks, "a")] * 5) == 1
    assert await _overlap([(locks, "a"), (locks, "b"), (locks, "c")]) == 3


async def test_valkey_locks_let_one_holder_in_per_name_across_clients(valkey_url: str) -> None:
    first, second = Valkey.from_url(valkey_url), Valkey.from_url(valkey_url)
    try:
        one, other = ValkeyLocks(first, wait=5), ValkeyLocks(second, wait=5)
        assert await _overlap([(one if n % 2 else other, "test-lock") for n in range(4)]) == 1
        assert await _overlap([(one, "x"), (other, "y")]) == 2
    finally:
        await first.aclose()
        await second.aclose()


async def test_a_valkey_lock_held_too_long_raises_timeout(valkey_url: str) -> None:
    client = Valkey.from_url(valkey_url)
    try:
        locks = ValkeyLocks(client, wait=0.2)
        async with locks.hold("busy"):
            with pytest.raises(TimeoutError):
                async with locks.hold("busy"):
                    pass
    finally:
        await client.aclose()
