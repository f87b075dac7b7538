"""Typed routes in process: simples beside FastAPI and Litestar (issue #14).

    .venv/bin/python bench/typed_bench.py [--n 4000] [--rounds 7] [--apps bare,simples,...]

Two endpoints, each written the way its framework's docs show:

- ``user``: ``GET /user/42``, a path parameter typed ``int``, answered with
  ``{"id": 42}``;
- ``json_post``: ``POST /notes`` with ``{"title": "t", "tags": ["a", "b"],
  "stars": 3}`` validated into a declared type (a dataclass for simples and
  Litestar, a pydantic model for FastAPI, as their docs do) and sent back.

Every app is called through its ASGI entry with a prepared scope (no network,
like bench/overhead.py). Rounds are interleaved (each round times every app
once per endpoint) and the medians are printed as microseconds and as ratios
to a bare ASGI app doing the same work by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.overhead import lifespan

BODY = b'{"title":"t","tags":["a","b"],"stars":3}'


@dataclasses.dataclass
class Note:
    title: str
    tags: list[str]
    stars: int = 0


# ---------------------------------------------------------------- the apps


async def bare(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The same work by hand: parse, check, answer."""
    if scope["type"] != "http":
        return
    path = scope["path"]
    if scope["method"] == "GET" and path.startswith("/user/"):
        try:
            body = json.dumps({"id": int(path[6:])}).encode()
        except ValueError:
            body = b""
    else:
        message = await receive()
        data = json.loads(message["body"])
        if not isinstance(data.get("title"), str) or not isinstance(data.get("stars"), int):
            raise ValueError("invalid")
        body = json.dumps(data).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", b"%d" % len(body)),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def simples_app() -> Any:
    import simples

    app = simples.server()

    @app.get("/user/:id<int>", name="user")
    async def user(connection: simples.HTTPConnection) -> dict[str, int]:
        return {"id": connection.params["id"]}

    @app.post("/notes", body=Note)
    async def notes(connection: simples.HTTPConnection) -> Note:
        note: Note = await connection.body().json()
        return note

    return app


NoteModel: Any = None  # the pydantic model, made when FastAPI is benchmarked


def fastapi_app() -> Any:
    from fastapi import FastAPI
    from pydantic import BaseModel

    global NoteModel  # module level: FastAPI resolves the string annotations here

    class NoteModel(BaseModel):  # type: ignore[no-redef]
        title: str
        tags: list[str]
        stars: int = 0

    app = FastAPI()

    @app.get("/user/{id}")
    async def user(id: int) -> dict[str, int]:
        return {"id": id}

    @app.post("/notes")
    async def notes(note: NoteModel) -> NoteModel:
        return note

    return app


def litestar_app() -> Any:
    from litestar import Litestar, get, post

    @get("/user/{id:int}")
    async def user(id: int) -> dict[str, int]:
        return {"id": id}

    @post("/notes", status_code=200)
    async def notes(data: Note) -> Note:
        return data

    return Litestar(route_handlers=[user, notes])


APPS = {"bare": lambda: bare, "simples": simples_app, "fastapi": fastapi_app,
        "litestar": litestar_app}


# ---------------------------------------------------------------- measuring


def scope_for(method: str, path: str, body: bytes) -> dict[str, Any]:
    headers = [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"bench")]
    if body:
        headers += [(b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode())]
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
        "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
        "query_string": b"", "root_path": "", "headers": headers,
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000), "state": {},
    }


ENDPOINTS = {"user": ("GET", "/user/42", b""), "json_post": ("POST", "/notes", BODY)}


async def measure(app: Any, method: str, path: str, body: bytes, n: int) -> float:
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    started = time.perf_counter()
    for _ in range(n):
        sent.clear()
        await app(scope_for(method, path, body), receive, send)
    elapsed = (time.perf_counter() - started) / n * 1e6
    assert sent[0]["status"] == 200, sent[:2]
    return elapsed


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=4000, help="requests per app per round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--apps", default="bare,simples,fastapi,litestar")
    args = parser.parse_args()
    apps = {name: APPS[name]() for name in args.apps.split(",")}
    for app in apps.values():
        with contextlib.suppress(Exception):
            await lifespan(app)
    samples: dict[tuple[str, str], list[float]] = {}
    for name, app in apps.items():  # warm up, and check every answer once
        for endpoint, (method, path, body) in ENDPOINTS.items():
            await measure(app, method, path, body, 200)
            samples[name, endpoint] = []
    for _ in range(args.rounds):
        for endpoint, (method, path, body) in ENDPOINTS.items():
            for name, app in apps.items():
                samples[name, endpoint].append(await measure(app, method, path, body, args.n))
    medians = {key: statistics.median(values) for key, values in samples.items()}
    print(f"{'app':<10}" + "".join(f"{e + ' µs':>14}{'x bare':>8}" for e in ENDPOINTS))
    for name in apps:
        cells = ""
        for endpoint in ENDPOINTS:
            value = medians[name, endpoint]
            base = medians.get(("bare", endpoint))
            ratio = f"{value / base:.2f}" if base else "-"
            cells += f"{value:>14.1f}{ratio:>8}"
        print(f"{name:<10}{cells}")


if __name__ == "__main__":
    asyncio.run(main())
