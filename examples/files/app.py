"""Files with simples: a static folder, drain() of files and streams, compression.

python -m examples.files.app          # then open http://127.0.0.1:8000/

Things to try against it:

    curl -i http://127.0.0.1:8000/notes.txt -H 'Range: bytes=0-99'
    curl -i http://127.0.0.1:8000/notes.txt -H 'If-None-Match: <the ETag it gave>'
    curl -i http://127.0.0.1:8000/docs                      # 301 to /docs/
    curl -i --compressed http://127.0.0.1:8000/report       # br, zstd or gzip
    curl -N --compressed http://127.0.0.1:8000/clock        # events arrive one by one
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import simples
from simples import HTTPConnection

HERE = Path(__file__).resolve().parent
PUBLIC = HERE / "public"

server = simples.server()
# GET and HEAD requests that no route takes are answered from PUBLIC: ETags,
# ranges, index.html, precompressed .br/.gz/.zst sidecars when present.
server.static(str(PUBLIC), cache=60)
# Dynamic answers (and files without sidecars) are compressed as clients accept.
server.compression(min_size=512)


@server.get("/download")
async def download(connection: HTTPConnection) -> None:
    connection.header("content-disposition", 'attachment; filename="notes.txt"')
    await connection.drain(PUBLIC / "notes.txt")


async def numbers() -> AsyncIterator[str]:
    for number in range(1, 1001):
        yield f"{number}\n"
        if number % 100 == 0:
            await asyncio.sleep(0)  # a real source would await its data here


@server.get("/numbers")
async def stream_numbers(connection: HTTPConnection) -> None:
    await connection.drain(numbers(), "txt")


@server.get("/report")
async def report(connection: HTTPConnection) -> dict[str, Any]:
    return {"rows": [{"id": row, "label": f"row {row}", "ok": row % 3 != 0} for row in range(200)]}


@server.get("/clock")
async def clock(connection: HTTPConnection) -> None:
    for tick in range(10):
        # Server-sent events (text/event-stream, no-cache): each event is
        # compressed and flushed on its own, so events stay live.
        await connection.event(f"tick {tick}")
        await asyncio.sleep(1)


@server.error(404)
async def not_found(connection: HTTPConnection) -> str:
    return f"Nothing at {connection.path}; try / for the list."


if __name__ == "__main__":
    server.listen(8000)
