"""The session size cap: a save over ``max_size`` fails with a clear error (500
through the error routes, no cookie) and leaves the stored session unchanged.
Over the wire, with the memory store and a real Redis."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

import simples
from simples import HTTPConnection
from simples.sessions import MemoryStore, RedisStore, SessionManager
from tests.conftest import serve
from tests.redis_server import running_redis


def size_app(store: Any, max_size: int) -> simples.Server:
    app = simples.server()
    app.session(store=store, max_size=max_size)

    @app.get("/put/:n")
    async def put(connection: HTTPConnection) -> Any:
        assert connection.session is not None
        connection.session["blob"] = "x" * int(connection.params["n"])
        return {"stored": len(connection.session["blob"])}

    @app.get("/get")
    async def get(connection: HTTPConnection) -> Any:
        assert connection.session is not None
        return {"blob": len(connection.session.get("blob") or "")}

    @app.error(500)
    async def failed(connection: HTTPConnection) -> Any:
        return {"error": str(connection.data.get("error"))}

    return app


def check_cap(store: Any) -> None:
    with serve(size_app(store, 1000)) as live, httpx.Client(base_url=live.url) as http:
        first = http.get("/put/100")
        assert first.status_code == 200
        assert "set-cookie" in first.headers
        too_big = http.get("/put/5000")
        assert too_big.status_code == 500
        assert "max_size" in too_big.json()["error"]
        assert "set-cookie" not in too_big.headers
        # the stored session is the one before the refused save
        assert http.get("/get").json() == {"blob": 100}
        # at the edge: exactly the cap is accepted ("blob" key + quotes + value)
        edge = 1000 - len('"blob"') - len('""')
        assert http.get(f"/put/{edge}").status_code == 200
        assert http.get(f"/put/{edge + 1}").status_code == 500
        assert http.get("/get").json() == {"blob": edge}


def test_the_cap_with_the_memory_store() -> None:
    check_cap(MemoryStore())


def test_the_cap_with_redis() -> None:
    with running_redis() as server:
        store = RedisStore(server.url, prefix="size:")
        check_cap(store)


def test_the_default_cap_and_a_bad_value() -> None:
    assert SessionManager().max_size == 64 << 10
    assert SessionManager(max_size=0).max_size == 0  # no cap
    with pytest.raises(ValueError, match="max_size"):
        simples.server().session(max_size=-1)
