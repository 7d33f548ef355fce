"""``FakePgPool``: the part of asyncpg's pool that ``storage.fastpath.PgReader`` uses, in memory.

Pass the instance as ``create_pool``: calling it records the pool's options and returns the pool,
which is awaitable like asyncpg's. ``acquire()`` hands out the current connection, or a new one
once the current one was terminated or the pool's connections expired (``expired`` counts how
often). Each ``fetch`` is recorded in ``statements`` as (connection
number, SQL, arguments); it raises the next exception of ``failures`` while there is one, and
answers ``rows`` after that.
"""

from collections.abc import AsyncIterator, Generator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any


class FakePgConnection:
    def __init__(self, pool: "FakePgPool", number: int) -> None:
        self.pool = pool
        self.number = number
        self.terminated = False

    async def fetch(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        assert not self.terminated, "a terminated connection was used again"
        self.pool.statements.append((self.number, sql, args))
        if self.pool.failures:
            raise self.pool.failures.pop(0)
        return list(self.pool.rows)

    def terminate(self) -> None:
        self.terminated = True


class FakePgPool:
    def __init__(self, *, rows: Sequence[tuple[Any, ...]] = (), failures: Sequence[BaseException] = ()) -> None:
        self.rows = list(rows)
        self.failures = list(failures)
        self.statements: list[tuple[int, str, tuple[Any, ...]]] = []
        self.connections: list[FakePgConnection] = []
        self.options: dict[str, Any] = {}
        self.closed = False
        self.expired = 0

    def __call__(self, **options: Any) -> "FakePgPool":
        self.options = options
        return self

    def __await__(self) -> Generator[Any, None, "FakePgPool"]:
        return self._started().__await__()

    async def _started(self) -> "FakePgPool":
        return self

    def acquire(self) -> AbstractAsyncContextManager[FakePgConnection]:
        return self._acquire()

    @asynccontextmanager
    async def _acquire(self) -> AsyncIterator[FakePgConnection]:
        if not self.connections or self.connections[-1].terminated:
            self.connections.append(FakePgConnection(self, len(self.connections) + 1))
        yield self.connections[-1]

    async def expire_connections(self) -> None:
        self.expired += 1
        for connection in self.connections:
            connection.terminated = True

    async def close(self) -> None:
        self.closed = True

    def terminate(self) -> None:
        self.closed = True
