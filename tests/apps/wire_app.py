"""The app the wire tests (tests/test_wire.py) and the soak (bench/soak.py) run
in a subprocess: ``python -m tests.apps.wire_app PORT ENGINE`` where ENGINE is
``h11``, ``httptools`` (uvicorn with that parser) or ``granian``.

Every handler records the path it served, so a test can prove that a smuggled
request never reached the application (``GET /reached``). Deadlines are short
so that the tests that wait for them stay fast; ``WIRE_LIMITS`` (JSON) replaces
them.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

import simples
from simples import HTTPConnection

LIMITS = {
    "body_timeout": 2,
    "body_min_rate": 100,
    "body_grace": 2,
    "header_timeout": 2,
}

server = simples.server()
# WIRE_LIMITS='{}' keeps simples' defaults (the soak measures those)
server.limits(**(json.loads(os.environ["WIRE_LIMITS"]) if "WIRE_LIMITS" in os.environ else LIMITS))
reached: list[str] = []


@server.get("/ping")
async def ping(connection: HTTPConnection) -> str:
    return "pong"


@server.get("/reached")
async def seen(connection: HTTPConnection) -> list[str]:
    return reached


@server.get("/head")
async def head(connection: HTTPConnection) -> dict[str, list[str]]:
    reached.append(connection.path)
    fields: dict[str, list[str]] = {}
    for name, value in connection.scope["headers"]:
        fields.setdefault(name.decode("latin-1"), []).append(value.decode("latin-1"))
    return fields


async def body(connection: HTTPConnection) -> str:
    reached.append(connection.path)
    data = await connection.body(limit=0)
    return f"{connection.path} {len(data)}"


for path in ("/a", "/smuggled", "/upload"):
    server.post(path, body)
    server.get(path, body)


@server.post("/small")
async def small(connection: HTTPConnection) -> str:
    reached.append(connection.path)
    return str(len(await connection.body(limit=1000)))


@server.get("/single/:name")
async def single(connection: HTTPConnection) -> str:
    reached.append(connection.path)
    return connection.params["name"]


# a total bound on the body, without a rate: /total/upload
total = server.router("/total")
total.limits(body_timeout=2, body_min_rate=0, body_deadline=2)
total.post("/upload", body)


@server.post("/stream")
async def stream(connection: HTTPConnection) -> str:
    reached.append(connection.path)
    size = 0
    async for chunk in connection.body(limit=0):
        size += len(chunk)
        await asyncio.sleep(0)
    return f"{connection.path} {size}"


if __name__ == "__main__":
    port, engine = int(sys.argv[1]), sys.argv[2]
    if engine == "granian":
        server.listen(port, engine="granian")
    else:
        server.listen(port, http=engine)
