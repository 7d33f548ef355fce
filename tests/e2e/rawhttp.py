"""HTTP/1.1 over a raw TCP connection, for header values no client library would send as they are
(bytes that are not UTF-8, 5,000-digit numbers), and a keybot serving on a free port to send them to."""

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from bot.runtime import build_runtime
from bot.settings import Settings


async def raw_post(port: int, path: str, headers: list[tuple[str, bytes]], body: bytes) -> tuple[int, bytes]:
    """POST ``body`` to 127.0.0.1:``port`` with each header value sent byte for byte; the status and
    the rest of the response."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}", "Connection: close"]
        request = "".join(f"{line}\r\n" for line in head).encode()
        request += b"".join(name.encode() + b": " + value + b"\r\n" for name, value in headers)
        writer.write(request + b"\r\n" + body)
        await writer.drain()
        async with asyncio.timeout(30):  # a deadline, not a measure
            response = await reader.read()
    finally:
        writer.close()
    status_line, _, rest = response.partition(b"\r\n")
    return int(status_line.split()[1]), rest


@contextlib.asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[int]:
    """``build_runtime(settings)`` serving HTTP on a free port (aiohttp's access log on, as in
    ``keybot serve``); yields the port."""
    runtime = await build_runtime(settings, outbox_backoff=0.05)
    runner = web.AppRunner(runtime.web_app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()
        await runtime.aclose()
