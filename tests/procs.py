"""Real ``keybot serve`` processes for tests, and throwaway PostgreSQL databases.

    async with fresh_postgres_database() as url, running_keybot(database_url=url, slack_api_url=...,
                                                                log_path=tmp_path / "a.log") as kb:
        ...  # kb.events_url, kb.verify_url, await kb.healthz(session)
        code, stderr = await kb.stop()  # SIGTERM: graceful; or await kb.kill() for SIGKILL

Processes run ``python -m bot.cli serve`` from the repository root with a clean environment (no
SLACK_*/KEYBOT_*/DATABASE_URL inherited), argon2's cheapest profile, 127.0.0.1 and a free port.
Their stderr (keybot's log) goes to a file, so a chatty process never blocks on a full pipe.
"""

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import create_async_engine

ROOT = Path(__file__).resolve().parents[1]
PG_SERVER = os.environ.get("KEYBOT_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
START_TIMEOUT = 90.0  # a loaded 2-core machine imports keybot in several seconds


class PostgresUnreachable(RuntimeError):
    """The PostgreSQL server the tests need is not there (a failure, never a skip)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def keybot_env(
    *,
    database_url: str,
    slack_api_url: str,
    port: int,
    signing_secret: str = SIGNING_SECRET,
    bot_token: str = "xoxb-test",
    **extra: str,
) -> dict[str, str]:
    """The environment of a ``keybot serve`` under test; ``extra`` adds or overrides variables."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "KEYBOT_", "DATABASE_URL", "PORT"))
    }
    env.update(
        SLACK_BOT_TOKEN=bot_token,
        SLACK_SIGNING_SECRET=signing_secret,
        SLACK_API_URL=slack_api_url,
        DATABASE_URL=database_url,
        PORT=str(port),
        KEYBOT_HOST="127.0.0.1",
        KEYBOT_ARGON2_PROFILE="cheapest",
        KEYBOT_DM_MERGE_SECONDS="0",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


@dataclass
class KeybotProcess:
    """One running ``keybot serve``."""

    proc: asyncio.subprocess.Process
    port: int
    log_path: Path
    env: dict[str, str] = field(repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def events_url(self) -> str:
        return f"{self.base_url}/slack/events"

    @property
    def verify_url(self) -> str:
        return f"{self.base_url}/v1/keys/verify"

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc.returncode is None

    def stderr(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    async def healthz(self, session: aiohttp.ClientSession) -> tuple[int, dict[str, Any]]:
        async with session.get(f"{self.base_url}/healthz") as response:
            return response.status, await response.json()

    async def verify(self, session: aiohttp.ClientSession, key: str) -> dict[str, Any]:
        async with session.post(self.verify_url, json={"key": key}) as response:
            assert response.status == 200, await response.text()
            data: dict[str, Any] = await response.json()
            return data

    async def stop(self, *, within: float = 60.0) -> tuple[int, str]:
        """SIGTERM, wait for the exit; return the exit code and everything the process logged."""
        if self.running:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.wait_for(self.proc.wait(), within)
        except TimeoutError:
            await self.kill()
            raise AssertionError(
                f"keybot (pid {self.pid}) did not exit within {within}s of SIGTERM; log:\n{self.stderr()}"
            ) from None
        return code, self.stderr()

    async def kill(self) -> int:
        """SIGKILL: no cleanup of any kind; returns the exit code (-9)."""
        if self.running:
            self.proc.kill()
        return await self.proc.wait()


async def start_keybot(
    *,
    database_url: str,
    slack_api_url: str,
    log_path: Path,
    port: int | None = None,
    within: float = START_TIMEOUT,
    **env_extra: str,
) -> KeybotProcess:
    """Start ``keybot serve`` and wait until ``/healthz`` answers 200; fail with its log otherwise."""
    port = port or free_port()
    env = keybot_env(database_url=database_url, slack_api_url=slack_api_url, port=port, **env_extra)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.cli",
            "serve",
            cwd=ROOT,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    kb = KeybotProcess(proc=proc, port=port, log_path=log_path, env=env)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        while True:
            if not kb.running:
                raise RuntimeError(
                    f"keybot exited with {proc.returncode} while starting; log:\n{kb.stderr()}"
                )
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                status, _ = await kb.healthz(session)
                if status == 200:
                    return kb
            if loop.time() > deadline:
                await kb.kill()
                raise RuntimeError(f"keybot did not answer /healthz within {within}s; log:\n{kb.stderr()}")
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def running_keybot(**kwargs: Any) -> AsyncIterator[KeybotProcess]:
    """``start_keybot(**kwargs)``; SIGKILLs the process on the way out if the test left it running."""
    kb = await start_keybot(**kwargs)
    try:
        yield kb
    finally:
        await kb.kill()


async def _admin(sql: str, *, server: str) -> None:
    engine = create_async_engine(server, isolation_level="AUTOCOMMIT", connect_args={"timeout": 10})
    try:
        async with engine.connect() as conn:
            await conn.exec_driver_sql(sql)
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def fresh_postgres_database(server: str = PG_SERVER) -> AsyncIterator[str]:
    """A new, empty PostgreSQL database (its ``postgresql+asyncpg://`` URL), dropped afterwards."""
    name = f"keybot_test_{secrets.token_hex(6)}"
    try:
        await _admin(f'CREATE DATABASE "{name}"', server=server)
    except Exception as exc:
        raise PostgresUnreachable(
            f"these tests need PostgreSQL at {make_url(server).render_as_string(hide_password=True)} "
            f"(set KEYBOT_TEST_PG_URL to use another server): {exc!r}"
        ) from exc
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', server=server)
