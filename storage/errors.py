"""Database errors as domain errors: ``translate`` says which, ``translating`` applies it everywhere.

A unique-name violation becomes ``Conflict`` ("that name is already taken"; add_project and add_key
say which name themselves), a lost or unreachable database ``Unavailable(UNAVAILABLE)``; anything
else, domain errors included, passes through unchanged.
"""

import sqlite3
from collections.abc import Callable, Coroutine
from functools import wraps
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from bot.domain.errors import Conflict, KeybotError, Unavailable

UNAVAILABLE = "The key database is temporarily unavailable. Try again in a minute."

P = ParamSpec("P")
R = TypeVar("R")

_OUTAGES = (
    OperationalError,
    InterfaceError,
    PoolTimeoutError,
    OSError,
    TimeoutError,
    # raised by the drivers themselves on the hot paths (see storage.fastpath)
    sqlite3.OperationalError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.InterfaceError,
    # the server answers, but not for this URL: no such database, role or password (a wrong DATABASE_URL)
    asyncpg.InvalidCatalogNameError,
    asyncpg.InvalidAuthorizationSpecificationError,
    asyncpg.InvalidPasswordError,
)


def drivers_error(exc: BaseException) -> BaseException | None:
    """The driver's own exception under SQLAlchemy's wrapping (``DBAPIError.orig`` and its cause)."""
    orig = getattr(exc, "orig", None)
    return None if orig is None else (orig.__cause__ or orig)


def is_unique_violation(exc: IntegrityError) -> bool:
    """Whether ``exc`` is a UNIQUE (or primary key) violation, on PostgreSQL or SQLite."""
    orig = exc.orig
    code = getattr(orig, "pgcode", None) or getattr(orig, "sqlstate", None)
    if code is not None:
        return bool(code == "23505")
    name = getattr(orig, "sqlite_errorname", "")
    return name in ("SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY")


def translate(exc: Exception) -> Exception:
    """The domain error standing for ``exc``, or ``exc`` itself."""
    if isinstance(exc, KeybotError):
        return exc
    if isinstance(exc, IntegrityError) and is_unique_violation(exc):
        conflict = Conflict("that name is already taken")
        conflict.__suppress_context__ = True
        return conflict
    if (
        isinstance(exc, _OUTAGES)
        or isinstance(drivers_error(exc), _OUTAGES)
        or (isinstance(exc, DBAPIError) and exc.connection_invalidated)
    ):
        unavailable = Unavailable(UNAVAILABLE)
        unavailable.__cause__ = exc
        return unavailable
    return exc


class _Translating:
    """Raises ``translate(exc)`` for any exception escaping, as a decorator of coroutine functions
    (``@translating``) or as a context manager (``with translating:``, also around awaits and in
    async generators). Stateless, so the one instance serves every caller at once."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if isinstance(exc, Exception):
            translated = translate(exc)
            if translated is not exc:
                raise translated

    def __call__(self, method: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, Coroutine[Any, Any, R]]:
        # A bare try/except rather than ``with self``: the hot reads pay nothing on success.
        @wraps(method)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return await method(*args, **kwargs)
            except Exception as exc:
                translated = translate(exc)
                if translated is exc:
                    raise
                raise translated  # noqa: B904 (translate sets the cause, or hides it for Conflict)

        return wrapper


translating = _Translating()
