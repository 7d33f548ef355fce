"""``FakePgServer``: asyncpg's ``connect`` and the part of its connections that
``storage.fastpath.PgReader`` uses, in memory.

Pass ``server.connect`` as ``open_connection``: it records the connection arguments and opens a new
``FakePgConnection`` (``server.connections``, numbered from 1). Each ``fetch`` is recorded in
``statements`` as (connection number, SQL, arguments) and lets other tasks run, as a round trip
would; it raises the next exception of ``failures``
while there is one, and answers ``rows`` after that. ``server.restart()`` closes every connection, as
the server would.
"""

import asyncio
from collections.abc import Sequence
from typing import Any


class FakePgConnection:
    def __init__(self, server: "FakePgServer", number: int) -> None:
        self.server = server
        self.number = number
        self.terminated = False  # closed by the client: terminate() or close()
        self.dropped = False  # closed by the server

    async def fetch(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        assert not self.terminated, "a closed connection was used again"
        self.server.statements.append((self.number, sql, args))
        await asyncio.sleep(0)  # the round trip: other statements run meanwhile
        if self.server.failures:
            raise self.server.failures.pop(0)
        return list(self.server.rows)

    def is_closed(self) -> bool:
        return self.terminated or self.dropped

    def terminate(self) -> None:
        self.terminated = True

    async def close(self) -> None:
        self.terminated = True


class FakePgServer:
    def __init__(self, *, rows: Sequence[tuple[Any, ...]] = (), failures: Sequence[BaseException] = ()) -> None:
        self.rows = list(rows)
        self.failures = list(failures)
        self.statements: list[tuple[int, str, tuple[Any, ...]]] = []
        self.connections: list[FakePgConnection] = []
        self.connect_args: dict[str, Any] = {}

    async def connect(self, **connect_args: Any) -> FakePgConnection:
        self.connect_args = connect_args
        self.connections.append(FakePgConnection(self, len(self.connections) + 1))
        return self.connections[-1]

    def restart(self) -> None:
        for connection in self.connections:
            connection.dropped = True
