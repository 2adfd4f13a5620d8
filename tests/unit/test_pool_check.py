"""storage.db.CheckWhenIdle: a connection is checked on checkout only when it sat idle."""

from __future__ import annotations

import time

import pytest

from storage.db import CheckWhenIdle


class Conn:
    autocommit = True

    def __init__(self) -> None:
        self.statements: list[str] = []

    async def execute(self, query: str) -> None:
        self.statements.append(query)


async def test_a_connection_just_returned_is_not_checked_again_but_an_idle_one_is() -> None:
    checker, conn = CheckWhenIdle(fresh_s=60.0), Conn()
    await checker.check(conn)  # never returned yet: checked
    await checker.returned(conn)
    await checker.check(conn)  # returned a moment ago: no round trip
    assert conn.statements == [""] and checker.checks == 1
    stale = CheckWhenIdle(fresh_s=0.0)
    await stale.returned(conn)
    time.sleep(0.001)
    await stale.check(conn)
    assert conn.statements == ["", ""] and stale.checks == 1


async def test_a_failed_check_raises_so_that_the_pool_replaces_the_connection() -> None:
    class Dead(Conn):
        async def execute(self, query: str) -> None:
            raise ConnectionError("server closed the connection")

    with pytest.raises(ConnectionError):
        await CheckWhenIdle().check(Dead())
