"""A session app served by separate processes in tests: sessions in Redis.

python -m tests.apps.session_app PORT     # REDIS_URL (required), SESSION_PREFIX

Several of these processes pointed at one Redis share their sessions.
"""

from __future__ import annotations

import os
import sys

import simples
from simples import HTTPConnection

server = simples.server()
store = simples.RedisStore(
    os.environ["REDIS_URL"],
    prefix=os.environ.get("SESSION_PREFIX", "simples:session:"),
    timeout=float(os.environ.get("SESSION_STORE_TIMEOUT", "2")),
)
server.session(store=store, timeout=300)
server.on("stop", store.aclose)


def _session(connection: HTTPConnection) -> simples.Session:
    session = connection.session
    assert session is not None
    return session


@server.get("/")
async def home(connection: HTTPConnection) -> dict[str, object]:
    session = _session(connection)
    return {"pid": os.getpid(), "user": session.get("user"), "n": session.get("n")}


@server.post("/login")
async def login(connection: HTTPConnection) -> dict[str, object]:
    form = await connection.body().form()
    session = _session(connection)
    session.regenerate()
    session["user"] = form.fields.get("user")
    return {"pid": os.getpid(), "user": session["user"]}


@server.get("/count")
async def count(connection: HTTPConnection) -> dict[str, object]:
    session = _session(connection)
    session["n"] = session.get("n", 0) + 1
    return {"pid": os.getpid(), "n": session["n"]}


@server.post("/logout")
async def logout(connection: HTTPConnection) -> dict[str, object]:
    await _session(connection).destroy()
    return {"pid": os.getpid(), "user": None}


@server.error(503)
async def unavailable(connection: HTTPConnection) -> dict[str, object]:
    return {"pid": os.getpid(), "error": "sessions unavailable"}


if __name__ == "__main__":
    server.listen(int(sys.argv[1]))
