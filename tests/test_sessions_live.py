"""Sessions end to end: httpx clients with cookie jars (one per visitor) against the
app in process (simples.client) for the behaviour, and against real servers for TLS,
a real redis-server killed, restarted or paused under a running uvicorn, and two app
processes sharing sessions.

Every server and redis-server started here is stopped in a ``finally``/``with``;
every wait is bounded.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

import simples
from simples import HTTPConnection
from simples.sessions import MemoryStore, RedisStore, SessionStore
from tests.conftest import InProcessLive, Live, serve, serve_inprocess
from tests.redis_server import RedisProcess, running_redis
from tests.test_server import free_port, wait_until_up

ROOT = Path(__file__).resolve().parent.parent
ID_LENGTH = 43  # secrets.token_urlsafe(32)


# --------------------------------------------------------------------------- helpers


class RecordingStore(MemoryStore):
    """A MemoryStore that notes every call, to see when the store is touched at all."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.calls: list[str] = []

    async def get(self, id: str) -> dict[str, Any] | None:
        self.calls.append("get")
        return await super().get(id)

    async def set(self, id: str, data: dict[str, Any], timeout: int) -> None:
        self.calls.append("set")
        await super().set(id, data, timeout)

    async def touch(self, id: str, timeout: int) -> None:
        self.calls.append("touch")
        await super().touch(id, timeout)

    async def remove(self, id: str) -> None:
        self.calls.append("remove")
        await super().remove(id)


def build(
    store: SessionStore, *, timeout: int = 300, https: dict[str, str] | None = None, **options: Any
) -> simples.Server:
    """The app every test serves: a counter, a login, a dump, plain routes."""
    app = simples.server(https=https)
    app.session(
        store=store,
        timeout=timeout,
        # Sessions are skipped for asset paths: those requests never wait for the store.
        enabled=lambda connection: not connection.path.startswith("/assets/"),
        **options,
    )
    if isinstance(store, RedisStore):
        app.on("stop", store.aclose)

    def session_of(connection: HTTPConnection) -> simples.Session:
        session = connection.session
        assert session is not None
        return session

    @app.get("/count")
    async def count(connection: HTTPConnection) -> dict[str, Any]:
        session = session_of(connection)
        session["n"] = session.get("n", 0) + 1
        return {"n": session["n"]}

    @app.get("/read")
    async def read(connection: HTTPConnection) -> dict[str, Any]:
        session = session_of(connection)
        return {"n": session.get("n"), "user": session.get("user"), "new": session.is_new}

    @app.get("/dump")
    async def dump(connection: HTTPConnection) -> dict[str, Any]:
        return dict(session_of(connection))

    @app.get("/write/:key")
    async def write(connection: HTTPConnection) -> dict[str, Any]:
        key = connection.params["key"]
        session_of(connection)[key] = connection.query.get("v", "")
        return {"written": key}

    @app.post("/stash")
    async def stash(connection: HTTPConnection) -> dict[str, Any]:
        session_of(connection)["big"] = await connection.body().text()
        return {"stashed": True}

    @app.post("/login")
    async def login(connection: HTTPConnection) -> dict[str, Any]:
        form = await connection.body().form()
        session = session_of(connection)
        session.regenerate()
        session["user"] = form.fields.get("user")
        return {"user": session["user"]}

    @app.post("/logout")
    async def logout(connection: HTTPConnection) -> dict[str, Any]:
        await session_of(connection).destroy()
        return {"user": None}

    @app.get("/plain")
    async def plain(connection: HTTPConnection) -> str:
        return "plain"

    @app.get("/assets/:name")
    async def asset(connection: HTTPConnection) -> str:
        return f"asset {connection.params['name']} session={connection.session}"

    @app.error(503)
    async def unavailable(connection: HTTPConnection) -> dict[str, Any]:
        return {"error": "sessions unavailable"}

    bare = app.router("/nosession")
    bare.session(False)

    @bare.get("/ping")
    async def ping(connection: HTTPConnection) -> str:
        return f"pong session={connection.session}"

    return app


def session_cookie(response: httpx.Response, name: str = "_session") -> tuple[str, dict[str, str]]:
    """(value, {attribute lowercased: value}) of the response's one session cookie."""
    found = []
    for line in response.headers.get_list("set-cookie"):
        first, *rest = line.split("; ")
        cookie_name, _, value = first.partition("=")
        if cookie_name == name:
            attributes = {}
            for part in rest:
                key, _, val = part.partition("=")
                attributes[key.lower()] = val
            found.append((value, attributes))
    assert len(found) == 1, (
        f"expected one {name} cookie, got {response.headers.get_list('set-cookie')}"
    )
    return found[0]


def stored(raw: redis.Redis, key: str) -> dict[str, Any] | None:
    """A session as RedisStore keeps it, read straight from Redis: a hash with
    "v" = "1" and, per key, a field named by the key's JSON holding the value's."""
    fields: dict[bytes, bytes] = raw.hgetall(key)  # type: ignore[assignment]
    if fields.pop(b"v", None) != b"1":
        return None
    return {json.loads(name): json.loads(value) for name, value in fields.items()}


def no_session_cookie(response: httpx.Response) -> bool:
    return not any(line.startswith("_session=") for line in response.headers.get_list("set-cookie"))


def until(condition: Any, seconds: float = 15.0) -> None:
    """Wait for ``condition()`` to hold, polling, bounded in time."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def timed(call: Any, *args: Any, **kwargs: Any) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = call(*args, **kwargs)
    return response, time.monotonic() - started


@contextlib.contextmanager
def client(live: Live | InProcessLive, **options: Any) -> Iterator[httpx.Client]:
    """A visitor (an httpx client with its own cookie jar) of a real or in-process app."""
    with live.new_client(**options) as http:
        yield http


@pytest.fixture(scope="module")
def shared_redis() -> Iterator[RedisProcess]:
    """One redis-server for the tests that never stop it; each uses its own prefix."""
    with running_redis() as server:
        yield server


@pytest.fixture
def prefix(request: pytest.FixtureRequest) -> str:
    return f"live:{request.node.name}:{time.monotonic_ns()}:"


@pytest.fixture
def raw_redis(shared_redis: RedisProcess) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(shared_redis.url, socket_timeout=5)
    try:
        yield connection
    finally:
        connection.close()


def make_store(kind: str, url: str, prefix: str, **options: Any) -> MemoryStore | RedisStore:
    return MemoryStore(**options) if kind == "memory" else RedisStore(url, prefix=prefix, **options)


STORES = ["memory", "redis"]


# --------------------------------------------------------------------------- round trip


@pytest.mark.parametrize("kind", STORES)
def test_round_trip_across_requests(
    kind: str, shared_redis: RedisProcess, prefix: str, raw_redis: redis.Redis
) -> None:
    store = make_store(kind, shared_redis.url, prefix)
    with (
        serve_inprocess(build(store, timeout=120)) as live,
        client(live) as http,
        client(live) as other,
    ):
        response = http.get("/read")
        assert response.json() == {"n": None, "user": None, "new": True}
        assert no_session_cookie(response)  # an untouched new session sends nothing

        response = http.get("/count")
        assert response.json() == {"n": 1}
        sid, attributes = session_cookie(response)
        assert len(sid) == ID_LENGTH
        assert attributes == {"max-age": "120", "path": "/", "samesite": "Lax", "httponly": ""}

        assert http.get("/count").json() == {"n": 2}
        response = http.get("/count")
        assert response.json() == {"n": 3}
        assert session_cookie(response)[0] == sid  # same session, same id

        # Another client has a session of its own.
        assert other.get("/count").json() == {"n": 1}
        assert http.get("/read").json() == {"n": 3, "user": None, "new": False}

        if kind == "redis":
            key = f"{prefix}{sid}"
            assert stored(raw_redis, key) == {"n": 3}
            assert 115 <= raw_redis.ttl(key) <= 120
        else:
            assert isinstance(store, MemoryStore)
            assert len(store) == 2


@pytest.mark.parametrize("kind", STORES)
def test_ten_kilobytes_of_session_data_keep_a_small_cookie(
    kind: str, shared_redis: RedisProcess, prefix: str
) -> None:
    big = "".join(chr(0x41 + i % 26) for i in range(10 * 1024)) + " é ✓"
    store = make_store(kind, shared_redis.url, prefix)
    with serve_inprocess(build(store)) as live, client(live) as http:
        response = http.post("/stash", content=big.encode(), headers={"content-type": "text/plain"})
        assert response.status_code == 200
        sid, _ = session_cookie(response)
        assert len(sid) == ID_LENGTH  # the data stays on the server
        assert http.get("/dump").json() == {"big": big}


@pytest.mark.parametrize("kind", STORES)
def test_a_value_json_cannot_take_fails_the_request_and_stores_nothing(
    kind: str, shared_redis: RedisProcess, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = build(make_store(kind, shared_redis.url, prefix))

    @app.get("/bad")
    async def bad(connection: HTTPConnection) -> str:
        assert connection.session is not None
        connection.session["fine"] = 2
        connection.session["when"] = {1, 2}  # a set: not JSON
        return "never sent"

    with serve_inprocess(app) as live, client(live) as http:
        assert http.get("/count").json() == {"n": 1}
        response = http.get("/bad")
        assert response.status_code == 500
        assert no_session_cookie(response)
        assert http.get("/dump").json() == {"n": 1}  # neither key was saved
    assert "session['when'] cannot be saved" in caplog.text


def test_concurrent_requests_of_one_session_all_keep_their_writes(
    shared_redis: RedisProcess, prefix: str
) -> None:
    with (
        serve_inprocess(build(RedisStore(shared_redis.url, prefix=prefix))) as live,
        client(live) as http,
    ):
        http.get("/count")
        cookie = {"cookie": f"_session={http.cookies['_session']}"}

        def write(index: int) -> int:
            with client(live) as own:
                return own.get(
                    f"/write/k{index}", params={"v": str(index)}, headers=cookie
                ).status_code

        with ThreadPoolExecutor(max_workers=12) as pool:
            assert set(pool.map(write, range(24))) == {200}
        assert http.get("/dump").json() == {"n": 1, **{f"k{i}": str(i) for i in range(24)}}


# --------------------------------------------------------------------------- expiry


def test_expiry_after_the_timeout_and_sliding_renewal(
    shared_redis: RedisProcess, prefix: str, raw_redis: redis.Redis
) -> None:
    # Both stores side by side, so the sleeps are paid once.
    memory = MemoryStore()
    remote = RedisStore(shared_redis.url, prefix=prefix)
    with (
        serve_inprocess(build(memory, timeout=2)) as live_memory,
        serve_inprocess(build(remote, timeout=2)) as live_redis,
        client(live_memory) as on_memory,
        client(live_redis) as on_redis,
    ):
        pair = (on_memory, on_redis)
        ids = []
        for http in pair:
            response = http.get("/count")
            ids.append(session_cookie(response)[0])
            assert session_cookie(response)[1]["max-age"] == "2"
        # Reads 0.7 s apart keep the session alive past its 2 s timeout: each
        # renews the entry and re-sends the cookie with a fresh Max-Age. (The
        # cookie goes by hand: a cookie jar counts Max-Age in whole seconds and
        # may drop a short cookie early.) The margins (1.3 s before a renewal
        # is late, 1 s after the expiry) hold on a loaded machine.
        for _ in range(4):
            time.sleep(0.7)
            for http, sid in zip(pair, ids, strict=True):
                response = http.get("/read", headers={"cookie": f"_session={sid}"})
                assert response.json() == {"n": 1, "user": None, "new": False}
                assert session_cookie(response) == (
                    sid,
                    {**session_cookie(response)[1], "max-age": "2"},
                )
        assert raw_redis.exists(f"{prefix}{ids[1]}") == 1

        time.sleep(3.0)
        for http, sid in zip(pair, ids, strict=True):
            # Send the old id by hand: a browser would have dropped the cookie itself.
            response = http.get("/read", headers={"cookie": f"_session={sid}"})
            assert response.json() == {"n": None, "user": None, "new": True}
            assert no_session_cookie(response)
        assert raw_redis.exists(f"{prefix}{ids[1]}") == 0
        assert len(memory) <= 1  # purged on the next write at the latest


# --------------------------------------------------------------------------- regenerate, destroy


@pytest.mark.parametrize("kind", STORES)
def test_regenerate_changes_the_id_and_the_old_one_stops_working(
    kind: str, shared_redis: RedisProcess, prefix: str, raw_redis: redis.Redis
) -> None:
    store = make_store(kind, shared_redis.url, prefix)
    with serve_inprocess(build(store)) as live, client(live) as http, client(live) as attacker:
        old = session_cookie(http.get("/count"))[0]
        response = http.post("/login", data={"user": "ada"})
        assert response.json() == {"user": "ada"}
        new = session_cookie(response)[0]
        assert new != old
        assert len(new) == ID_LENGTH
        assert http.cookies["_session"] == new
        assert http.get("/read").json() == {"n": 1, "user": "ada", "new": False}

        # Someone holding the pre-login id (fixation) gets nothing.
        response = attacker.get("/read", headers={"cookie": f"_session={old}"})
        assert response.json() == {"n": None, "user": None, "new": True}
        if kind == "redis":
            assert raw_redis.exists(f"{prefix}{old}") == 0
            assert raw_redis.exists(f"{prefix}{new}") == 1
        else:
            assert isinstance(store, MemoryStore)
            assert len(store) == 1


@pytest.mark.parametrize("kind", STORES)
def test_destroy_removes_the_data_and_expires_the_cookie(
    kind: str, shared_redis: RedisProcess, prefix: str, raw_redis: redis.Redis
) -> None:
    store = make_store(kind, shared_redis.url, prefix)
    with serve_inprocess(build(store)) as live, client(live) as http:
        sid = session_cookie(http.post("/login", data={"user": "ada"}))[0]
        response = http.post("/logout")
        assert response.json() == {"user": None}
        value, attributes = session_cookie(response)
        assert value == ""
        assert attributes["max-age"] == "0"
        assert attributes["path"] == "/"
        assert "_session" not in http.cookies  # the client's jar dropped it
        assert http.get("/read").json() == {"n": None, "user": None, "new": True}

        response = http.get("/read", headers={"cookie": f"_session={sid}"})
        assert response.json() == {"n": None, "user": None, "new": True}
        if kind == "redis":
            assert raw_redis.exists(f"{prefix}{sid}") == 0
        else:
            assert isinstance(store, MemoryStore)
            assert len(store) == 0


# --------------------------------------------------------------------------- hostile cookies


def test_garbage_cookies_get_a_fresh_session_without_touching_the_store() -> None:
    store = RecordingStore()
    app = build(store)
    app.limits(cookie_size=16 << 10, header_size=16 << 10)
    garbage = "".join(chr(0x21 + i % 90) for i in range(10 * 1024)).replace(";", "x")
    cases = [
        garbage,
        "x" * 10_240,
        "A" * 42 + "B",  # right length, a last letter token_urlsafe(32) never ends with
        "../../etc/passwd",
        "%00%0d%0a",
    ]
    with serve_inprocess(app) as live, client(live) as http:
        for value in cases:
            response, took = timed(http.get, "/read", headers={"cookie": f"_session={value}"})
            assert response.status_code == 200
            assert response.json() == {"n": None, "user": None, "new": True}
            assert took < 1
            response = http.get("/count", headers={"cookie": f"_session={value}"})
            assert response.json() == {"n": 1}
            sid, _ = session_cookie(response)
            assert sid != value
            assert len(sid) == ID_LENGTH
        # Only the writes reached the store; not one lookup for a malformed id.
        assert store.calls == ["set"] * len(cases)

        # A well-formed id the store never issued is looked up, not adopted.
        forged = "A" * 42 + "A"
        response = http.get("/count", headers={"cookie": f"_session={forged}"})
        assert response.json() == {"n": 1}
        assert session_cookie(response)[0] != forged


def test_ten_kilobyte_cookie_is_refused_quickly_under_the_default_limits() -> None:
    store = RecordingStore()
    with serve_inprocess(build(store)) as live, client(live) as http:
        response, took = timed(http.get, "/read", headers={"cookie": "_session=" + "x" * 10_240})
        assert response.status_code == 431  # limits.cookie_size is 8 KiB
        assert took < 1
        assert store.calls == []
        assert http.get("/read").status_code == 200  # the server is fine


# --------------------------------------------------------------------------- memory bound


def test_memory_store_bound_holds_through_the_server() -> None:
    store = MemoryStore(max_entries=5)
    with serve_inprocess(build(store)) as live:
        clients = [live.new_client() for _ in range(8)]
        try:
            for http in clients:
                assert http.get("/count").json() == {"n": 1}
                assert len(store) <= 5
            assert len(store) == 5
            # Full: each new session pushed out the one closest to expiring, i.e.
            # the oldest. The evicted clients start over; the others go on.
            for http in clients[:3]:
                assert http.get("/read").json() == {"n": None, "user": None, "new": True}
            for http in clients[3:]:
                assert http.get("/count").json() == {"n": 2}
            assert len(store) == 5
        finally:
            for http in clients:
                http.close()


# --------------------------------------------------------------------------- Secure on https


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return {"cert": str(cert), "key": str(key)}


def test_cookie_is_secure_on_https_only(certificate: dict[str, str]) -> None:
    app = build(MemoryStore(), https=certificate)
    plain_port = free_port()
    app.mirror(plain_port)
    with (
        serve(app) as live,
        httpx.Client(base_url=f"https://127.0.0.1:{live.port}", verify=False, timeout=10) as tls,
        httpx.Client(base_url=f"http://127.0.0.1:{plain_port}", timeout=10) as plain,
    ):
        response = tls.get("/count")
        assert "secure" in session_cookie(response)[1]
        assert tls.get("/count").json() == {"n": 2}  # the jar sends it back over https
        assert "secure" in session_cookie(tls.post("/logout"))[1]  # the deletion too

        response = plain.get("/count")
        assert "secure" not in session_cookie(response)[1]


def test_secure_follows_the_effective_protocol_behind_a_trusted_proxy() -> None:
    https = {"x-forwarded-proto": "https"}
    trusting = build(MemoryStore())
    trusting.proxy(["127.0.0.1"])
    with serve_inprocess(trusting) as live, client(live) as http:
        assert "secure" in session_cookie(http.get("/count", headers=https))[1]
        assert "secure" not in session_cookie(http.get("/count"))[1]
    with serve_inprocess(build(MemoryStore())) as live, client(live) as http:
        # Not a trusted proxy: anyone can send the header, so it changes nothing.
        assert "secure" not in session_cookie(http.get("/count", headers=https))[1]


# --------------------------------------------------------------------------- Redis down


def test_redis_killed_and_restarted_mid_run() -> None:
    with running_redis() as server:
        store = RedisStore(server.url, prefix="killed:")
        with (
            serve(build(store)) as live,
            client(live) as http,
            client(live) as fresh,
        ):
            assert http.post("/login", data={"user": "ada"}).json() == {"user": "ada"}
            traffic: list[tuple[int, float, Any]] = []
            stop = threading.Event()

            def hammer() -> None:
                with client(live) as own:
                    while not stop.is_set():
                        response, took = timed(own.get, "/count")
                        traffic.append((response.status_code, took, response.json()))
                        time.sleep(0.02)

            def seen(status: int, since: int = 0) -> bool:
                return any(entry[0] == status for entry in traffic[since:])

            thread = threading.Thread(target=hammer)
            thread.start()
            try:
                # Waits on what the background client saw, not on fixed sleeps: on
                # a loaded machine it may not have been answered yet.
                until(lambda: len(traffic) >= 3)
                server.kill()
                until(lambda: seen(503))

                # A request carrying a session needs the store: 503 through the error route.
                response, took = timed(http.get, "/read")
                assert response.status_code == 503
                assert response.json() == {"error": "sessions unavailable"}
                assert no_session_cookie(response)
                assert took < 2.5
                response = http.get("/count")
                assert (response.status_code, no_session_cookie(response)) == (503, True)
                response = http.post("/logout")  # destroy() needs the store too
                assert response.status_code == 503

                # What does not need the store is unaffected.
                assert fresh.get("/read").json() == {"n": None, "user": None, "new": True}
                assert http.get("/nosession/ping").text == "pong session=None"
                assert http.get("/assets/logo.png").text == "asset logo.png session=None"
                # A new visitor's write does need it: refused, never acknowledged.
                response = fresh.get("/count")
                assert (response.status_code, no_session_cookie(response)) == (503, True)

                restarted = len(traffic)
                server.start()  # same port, empty dataset (no persistence)
                until(lambda: seen(200, restarted))
            finally:
                stop.set()
                thread.join(10)
            assert not thread.is_alive()

            # Service resumed without restarting the app. The session data died with
            # the Redis process, so the old cookie gets a fresh session.
            assert http.get("/read").json() == {"n": None, "user": None, "new": True}
            assert http.get("/count").json() == {"n": 1}
            assert http.post("/login", data={"user": "ada"}).json() == {"user": "ada"}
            assert http.get("/read").json() == {"n": 1, "user": "ada", "new": False}

            statuses = [status for status, _, _ in traffic]
            assert set(statuses) == {200, 503}, statuses
            assert statuses[-1] == 200
            assert max(took for _, took, _ in traffic) < 2.5
            # The background client counted up, hit the outage, then started over.
            counts = [body["n"] for status, _, body in traffic if status == 200]
            restart = next(i for i in range(1, len(counts)) if counts[i] <= counts[i - 1])
            assert counts[:restart] == list(range(1, restart + 1))
            assert counts[restart:] == list(range(1, len(counts) - restart + 1))


def test_redis_dying_after_the_load_still_gives_503_never_a_false_success() -> None:
    with running_redis() as server:
        store = RedisStore(server.url, prefix="dying:")
        app = build(store)

        # The session loads fine, then Redis dies while the handler runs.
        @app.get("/die-then-write")
        async def die_then_write(connection: HTTPConnection) -> str:
            server.kill()
            assert connection.session is not None
            connection.session["lost"] = True
            return "written"  # must not reach the client: the save fails

        @app.get("/die-then-logout")
        async def die_then_logout(connection: HTTPConnection) -> str:
            server.kill()
            assert connection.session is not None
            await connection.session.destroy()  # raises StoreUnavailable, an HTTPError(503)
            return "logged out"

        # An error answer confirms nothing: it goes out as it is, without a cookie.
        @app.get("/die-then-404")
        async def die_then_404(connection: HTTPConnection) -> str:
            server.kill()
            raise simples.HTTPError(404)

        @app.get("/die-then-crash")
        async def die_then_crash(connection: HTTPConnection) -> str:
            server.kill()
            raise RuntimeError("boom")

        @app.error(404)
        async def not_found(connection: HTTPConnection) -> dict[str, Any]:
            return {"error": "not found"}

        @app.error(500)
        async def crashed(connection: HTTPConnection) -> dict[str, Any]:
            return {"error": "crashed"}

        cases = {
            "/die-then-write": (503, "sessions unavailable"),
            "/die-then-logout": (503, "sessions unavailable"),
            "/die-then-404": (404, "not found"),
            "/die-then-crash": (500, "crashed"),
        }
        with serve(app) as live, client(live) as http:
            for path, (status, error) in cases.items():
                server.start()
                assert http.get("/count").json() == {"n": 1}
                response, took = timed(http.get, path)
                assert (response.status_code, response.json()) == (status, {"error": error})
                assert no_session_cookie(response)
                assert took < 2.5


def test_paused_redis_gives_503_within_the_default_two_seconds() -> None:
    with running_redis() as server:
        store = RedisStore(server.url, prefix="paused:")  # timeout 2.0 by default
        with serve(build(store)) as live, client(live) as http:
            http.get("/count")
            server.pause()
            try:
                response, took = timed(http.get, "/count")
                plain, plain_took = timed(http.get, "/nosession/ping")
            finally:
                server.resume()
            assert response.status_code == 503
            assert response.json() == {"error": "sessions unavailable"}
            assert 1.5 <= took < 3.0
            assert (plain.status_code, plain_took < 1.0) == (200, True)
            assert http.get("/count").json() == {"n": 2}  # back as soon as Redis answers


def test_every_acknowledged_write_survives_a_redis_pause() -> None:
    with running_redis() as server:
        store = RedisStore(server.url, prefix="acked:", timeout=0.5)
        raw = redis.Redis.from_url(server.url, socket_timeout=5)
        with serve(build(store)) as live:
            clients = [live.new_client() for _ in range(4)]
            results: list[list[tuple[str, int, float, bool]]] = [[] for _ in clients]
            stop = threading.Event()

            def writer(index: int) -> None:
                http = clients[index]
                number = 0
                while not stop.is_set():
                    number += 1
                    key = f"k{number}"
                    response, took = timed(http.get, f"/write/{key}", params={"v": str(number)})
                    results[index].append(
                        (key, response.status_code, took, no_session_cookie(response))
                    )

            try:
                ids = []
                for http in clients:
                    assert http.get("/count").json() == {"n": 1}
                    ids.append(http.cookies["_session"])
                threads = [threading.Thread(target=writer, args=(i,)) for i in range(len(clients))]
                for thread in threads:
                    thread.start()
                def each_saw(status: int, since: list[int], count: int = 1) -> bool:
                    return all(
                        sum(outcome[1] == status for outcome in outcomes[start:]) >= count
                        for outcomes, start in zip(results, since, strict=True)
                    )

                # Each step waits on what every writer saw (fixed sleeps raced on a
                # loaded machine): writes acknowledged, refused, then acknowledged.
                try:
                    until(lambda: each_saw(200, [0] * len(clients), 3))
                    server.pause()
                    paused = [len(outcomes) for outcomes in results]
                    until(lambda: each_saw(503, paused))
                    server.resume()
                    resumed = [len(outcomes) for outcomes in results]
                    until(lambda: each_saw(200, resumed))
                finally:
                    server.resume()
                    stop.set()
                    for thread in threads:
                        thread.join(10)
                assert not any(thread.is_alive() for thread in threads)

                for index, http in enumerate(clients):
                    outcomes = results[index]
                    statuses = [status for _, status, _, _ in outcomes]
                    assert set(statuses) == {200, 503}, statuses
                    assert statuses[-1] == 200  # service resumed by itself
                    # A refusal never carried a cookie, and came within the bound.
                    refused = [o for o in outcomes if o[1] == 503]
                    assert all(no_cookie for _, _, _, no_cookie in refused)
                    assert max(took for _, _, took, _ in outcomes) < 1.5
                    assert http.cookies["_session"] == ids[index]

                    # Nothing acknowledged is lost: every 2xx write reads back, through
                    # the app and straight from Redis.
                    acknowledged = {key: key[1:] for key, status, _, _ in outcomes if status == 200}
                    assert len(acknowledged) >= 3
                    served = http.get("/dump").json()
                    assert served.items() >= acknowledged.items()
                    raw_data = stored(raw, f"acked:{ids[index]}")
                    assert raw_data is not None
                    assert raw_data.items() >= acknowledged.items()
            finally:
                for http in clients:
                    http.close()
                raw.close()


# --------------------------------------------------------------------------- two processes


@contextlib.contextmanager
def app_process(port: int, env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.apps.session_app", str(port)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield child
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
        child.communicate(timeout=10)


def test_two_app_processes_share_sessions_through_redis(
    shared_redis: RedisProcess, prefix: str
) -> None:
    env = {"REDIS_URL": shared_redis.url, "SESSION_PREFIX": prefix}
    port_a, port_b = free_port(), free_port()
    with app_process(port_a, env) as a, app_process(port_b, env) as b:
        url_a, url_b = f"http://127.0.0.1:{port_a}", f"http://127.0.0.1:{port_b}"
        wait_until_up(url_a + "/", a)
        wait_until_up(url_b + "/", b)
        # Cookies are per host, not per port: one jar serves both processes,
        # as one browser would in front of a load balancer.
        with httpx.Client(timeout=10) as browser:
            logged_in = browser.post(f"{url_a}/login", data={"user": "ada"}).json()
            on_b = browser.get(f"{url_b}/").json()
            assert on_b["pid"] != logged_in["pid"]
            assert on_b["user"] == "ada"

            counts = [
                browser.get(f"{url}/count").json()["n"] for url in (url_a, url_b, url_a, url_b)
            ]
            assert counts == [1, 2, 3, 4]

            assert browser.post(f"{url_b}/logout").json()["user"] is None
            assert browser.get(f"{url_a}/").json()["user"] is None
            assert browser.get(f"{url_a}/").json()["n"] is None


# --------------------------------------------------------------------------- the example


def test_the_sessions_example_logs_in_and_out() -> None:
    from examples.sessions.app import create

    app = create(MemoryStore())
    with serve_inprocess(app) as live, client(live, follow_redirects=False) as http:
        page = http.get("/")
        assert page.status_code == 200
        assert "Log in" in page.text
        assert "Visits in this session: 1" in page.text

        wrong = http.post("/login", data={"user": "ada", "password": "nope"})
        assert wrong.status_code == 303
        assert "Wrong user name or password" in http.get("/").text

        before = http.cookies["_session"]
        right = http.post("/login", data={"user": "ada", "password": "lovelace"})
        assert (right.status_code, right.headers["location"]) == (303, "/")
        assert http.cookies["_session"] != before  # regenerated at login
        page = http.get("/")
        assert "Hello, ada" in page.text
        assert "Log out" in page.text

        out = http.post("/logout")
        assert out.status_code == 303
        page = http.get("/")
        assert "Log in" in page.text
        assert "Hello, ada" not in page.text
