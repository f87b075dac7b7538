"""Sessions: MemoryStore, RedisStore against a real redis-server, and SessionManager rules."""

from __future__ import annotations

import asyncio
import json
import string
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from redis.asyncio import Redis

from simples.http.cookies import parse_cookies
from simples.sessions import (
    MemoryStore,
    MergingStore,
    RedisStore,
    Session,
    SessionManager,
    SessionStore,
    StoreUnavailable,
)

try:
    from tests.redis_server import RedisProcess, free_port, running_redis
except ImportError:  # the pytest script does not put the project root on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.redis_server import RedisProcess, free_port, running_redis

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class RecordingStore(MemoryStore):
    """A user-written store, as the docs describe: it also logs what it is asked."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.calls: list[tuple[str, str]] = []

    async def get(self, id: str) -> dict[str, Any] | None:
        self.calls.append(("get", id))
        return await super().get(id)

    async def set(self, id: str, data: dict[str, Any], timeout: int) -> None:
        self.calls.append(("set", id))
        await super().set(id, data, timeout)

    async def touch(self, id: str, timeout: int) -> None:
        self.calls.append(("touch", id))
        await super().touch(id, timeout)

    async def remove(self, id: str) -> None:
        self.calls.append(("remove", id))
        await super().remove(id)


def cookie_parts(header: str) -> tuple[str, str, dict[str, str]]:
    """(name, value, {attribute lowercased: value or ""}) of a Set-Cookie value."""
    first, *rest = header.split("; ")
    name, _, value = first.partition("=")
    attributes = {}
    for part in rest:
        key, _, val = part.partition("=")
        attributes[key.lower()] = val
    return name, value, attributes


async def elapsed(action: Callable[[], Awaitable[Any]]) -> tuple[float, BaseException | None]:
    start = time.monotonic()
    try:
        await action()
    except Exception as exc:
        return time.monotonic() - start, exc
    return time.monotonic() - start, None


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisProcess]:
    with running_redis() as server:
        yield server


@pytest.fixture
def prefix(request: pytest.FixtureRequest) -> str:
    # One namespace per test, so tests sharing the server never see each other.
    return f"test:{request.node.name}:{time.monotonic_ns()}:"


# --------------------------------------------------------------------------- MemoryStore


def test_memory_round_trip_is_an_isolated_copy() -> None:
    async def main() -> None:
        store = MemoryStore()
        data: dict[str, Any] = {"user": {"name": "ada"}, "cart": [1, 2]}
        await store.set("a", data, 60)
        data["cart"].append(3)
        data["user"]["name"] = "eve"
        got = await store.get("a")
        assert got == {"user": {"name": "ada"}, "cart": [1, 2]}
        assert got is not None
        got["cart"].clear()
        assert await store.get("a") == {"user": {"name": "ada"}, "cart": [1, 2]}

    run(main())


def test_memory_rejects_non_json_at_set_and_keeps_the_old_value() -> None:
    async def main() -> None:
        store = MemoryStore()
        await store.set("a", {"n": 1}, 60)
        with pytest.raises(TypeError):
            await store.set("a", {"n": {1, 2}}, 60)
        with pytest.raises(TypeError):
            await store.set("b", {"when": object()}, 60)
        assert await store.get("a") == {"n": 1}
        assert await store.get("b") is None

    run(main())


def test_memory_expiry_and_touch_with_an_injected_clock() -> None:
    async def main() -> None:
        clock = Clock()
        store = MemoryStore(clock=clock)
        await store.set("a", {"n": 1}, 10)
        clock.now += 9
        assert await store.get("a") == {"n": 1}
        await store.touch("a", 10)
        clock.now += 9
        assert await store.get("a") == {"n": 1}
        clock.now += 1
        assert await store.get("a") is None
        assert len(store) == 0
        await store.touch("a", 10)  # an expired entry is not revived
        assert await store.get("a") is None

    run(main())


def test_memory_unknown_ids_and_non_positive_timeouts() -> None:
    async def main() -> None:
        store = MemoryStore()
        assert await store.get("nope") is None
        await store.touch("nope", 10)
        await store.remove("nope")
        await store.set("a", {}, 10)
        await store.touch("a", 0)
        assert await store.get("a") is None
        await store.set("b", {"x": 1}, 10)
        await store.set("b", {"x": 2}, -1)
        assert await store.get("b") is None
        await store.set("c", {"x": 1}, 10)
        await store.remove("c")
        assert await store.get("c") is None
        assert len(store) == 0

    run(main())


def test_memory_bound_evicts_the_soonest_expiring() -> None:
    async def main() -> None:
        clock = Clock()
        store = MemoryStore(max_entries=3, clock=clock)
        await store.set("long", {}, 100)
        clock.now += 1
        await store.set("short", {}, 10)
        clock.now += 1
        await store.set("medium", {}, 50)
        await store.set("new", {}, 100)
        assert len(store) == 3
        assert await store.get("short") is None
        assert await store.get("long") == {}
        # Rewriting an existing id never evicts anyone.
        await store.set("medium", {"v": 2}, 50)
        assert len(store) == 3
        # Same timeout: the oldest write goes first.
        clock.now += 1
        await store.set("newest", {}, 100)
        assert await store.get("medium") is None
        assert {k for k in ("long", "new", "newest") if k in store._entries} == {
            "long",
            "new",
            "newest",
        }

    run(main())


def test_memory_touch_renews_eviction_order() -> None:
    async def main() -> None:
        clock = Clock()
        store = MemoryStore(max_entries=2, clock=clock)
        await store.set("a", {}, 10)
        clock.now += 1
        await store.set("b", {}, 10)
        clock.now += 1
        await store.touch("a", 10)  # a now expires after b
        await store.set("c", {}, 10)
        assert await store.get("b") is None
        assert await store.get("a") == {}
        # A touch may change the timeout; the entry moves with it.
        await store.touch("a", 1000)
        clock.now += 1
        await store.set("d", {}, 10)
        assert await store.get("c") is None
        assert await store.get("a") == {}

    run(main())


def test_memory_purge_is_bounded_per_call_and_catches_up() -> None:
    async def main() -> None:
        clock = Clock()
        store = MemoryStore(clock=clock)
        for i in range(1000):
            await store.set(f"old{i}", {"i": i}, 10)
        clock.now += 11
        await store.set("fresh0", {}, 10)
        # One write removed only a small batch, not all 1000 expired entries.
        assert 1000 - 64 < len(store) < 1000
        for i in range(1, 200):
            await store.set(f"fresh{i}", {}, 10)
        assert len(store) == 200
        assert await store.get("old5") is None

    run(main())


def test_memory_max_entries_must_be_positive() -> None:
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match="max_entries"):
            MemoryStore(max_entries=bad)  # type: ignore[arg-type]


def test_builtin_stores_satisfy_the_protocols() -> None:
    assert isinstance(MemoryStore(), SessionStore)
    assert not isinstance(MemoryStore(), MergingStore)
    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0")
    assert isinstance(store, MergingStore)
    run(store.aclose())


# --------------------------------------------------------------------------- RedisStore


def test_redis_round_trip_json_prefix_and_ttl(redis_server: RedisProcess, prefix: str) -> None:
    async def main() -> None:
        store = RedisStore(redis_server.url, prefix=prefix)
        raw = Redis.from_url(redis_server.url)
        try:
            data = {"user": {"id": 7, "name": "Zoë"}, "cart": [1, 2.5, None, True], "s": "x"}
            await store.set("abc", data, 120)
            assert await store.get("abc") == data
            # One hash: a format field, then a field per key holding its JSON.
            stored = await raw.hgetall(f"{prefix}abc")
            assert stored.pop(b"v") == b"1"
            assert {k.decode(): json.loads(v) for k, v in stored.items()} == {
                json.dumps(key): value for key, value in data.items()
            }
            assert 118 <= await raw.ttl(f"{prefix}abc") <= 120
            assert await raw.exists("abc") == 0  # nothing outside the prefix
            assert await store.get("missing") is None
        finally:
            await store.aclose()
            await raw.aclose()

    run(main())


def test_redis_default_prefix(redis_server: RedisProcess) -> None:
    async def main() -> None:
        store = RedisStore(redis_server.url)
        raw = Redis.from_url(redis_server.url)
        try:
            await store.set("default-prefix-id", {"a": 1}, 30)
            assert await raw.exists("simples:session:default-prefix-id") == 1
            await store.remove("default-prefix-id")
            assert await raw.exists("simples:session:default-prefix-id") == 0
        finally:
            await store.aclose()
            await raw.aclose()

    run(main())


def test_redis_touch_extends_and_remove_deletes(redis_server: RedisProcess, prefix: str) -> None:
    async def main() -> None:
        store = RedisStore(redis_server.url, prefix=prefix)
        raw = Redis.from_url(redis_server.url)
        try:
            await store.set("a", {"n": 1}, 10)
            await store.touch("a", 500)
            assert 498 <= await raw.ttl(f"{prefix}a") <= 500
            assert await store.get("a") == {"n": 1}
            await store.touch("unknown", 500)
            assert await raw.exists(f"{prefix}unknown") == 0
            await store.remove("a")
            assert await store.get("a") is None
            await store.remove("a")
            await store.set("b", {"n": 1}, 10)
            await store.touch("b", 0)
            assert await store.get("b") is None
        finally:
            await store.aclose()
            await raw.aclose()

    run(main())


def test_redis_rejects_non_json_without_writing(redis_server: RedisProcess, prefix: str) -> None:
    async def main() -> None:
        store = RedisStore(redis_server.url, prefix=prefix)
        try:
            await store.set("a", {"ok": 1}, 60)
            with pytest.raises(TypeError):
                await store.set("a", {"bad": b"bytes"}, 60)
            assert await store.get("a") == {"ok": 1}
        finally:
            await store.aclose()

    run(main())


def test_redis_unreadable_entry_counts_as_missing(redis_server: RedisProcess, prefix: str) -> None:
    async def main() -> None:
        store = RedisStore(redis_server.url, prefix=prefix)
        raw = Redis.from_url(redis_server.url)
        try:
            await raw.set(f"{prefix}junk", b"\xff not json")
            await raw.set(f"{prefix}list", b"[1, 2]")
            await raw.hset(f"{prefix}foreign", mapping={"user": "x"})  # no format field
            await raw.hset(f"{prefix}damaged", mapping={"v": "1", '"a"': "\xff{"})
            for name in ("junk", "list", "foreign", "damaged"):
                assert await store.get(name) is None
            for name in ("junk", "list", "foreign"):
                # Not a session at all: a merge into it writes nothing.
                assert await store.merge(name, {"a": 1}, (), 60, name) is False
            assert await raw.hgetall(f"{prefix}foreign") == {b"user": b"x"}
            # Saving a new session over a foreign key replaces it.
            await store.set("junk", {"a": 1}, 60)
            assert await store.get("junk") == {"a": 1}
        finally:
            await store.aclose()
            await raw.aclose()

    run(main())


def test_redis_merge_is_atomic_under_concurrency(redis_server: RedisProcess, prefix: str) -> None:
    async def main() -> None:
        store = RedisStore(redis_server.url, prefix=prefix)
        try:
            await store.set("s", {"keep": 1, "drop": 2}, 60)
            results = await asyncio.gather(
                *(store.merge("s", {f"k{i}": i}, (), 60, "s") for i in range(40)),
                store.merge("s", {}, ["drop"], 60, "s"),
            )
            assert all(results)
            data = await store.get("s")
            assert data == {"keep": 1, **{f"k{i}": i for i in range(40)}}
            assert await store.merge("missing", {"a": 1}, (), 60, "missing") is False
            assert await store.get("missing") is None
            assert await store.merge("s", {"moved": True}, (), 60, "t") is True
            assert await store.get("s") is None
            moved = await store.get("t")
            assert moved is not None
            assert moved["moved"] is True
        finally:
            await store.aclose()

    run(main())


def test_redis_closed_port_fails_fast_with_store_unavailable() -> None:
    async def main() -> None:
        store = RedisStore(f"redis://127.0.0.1:{free_port()}/0", timeout=1.0)
        try:
            for action in (
                lambda: store.get("a"),
                lambda: store.set("a", {"x": 1}, 10),
                lambda: store.touch("a", 10),
                lambda: store.remove("a"),
                lambda: store.merge("a", {"x": 1}, (), 10, "a"),
            ):
                took, error = await elapsed(action)
                assert isinstance(error, StoreUnavailable)
                assert took < 1.5
        finally:
            await store.aclose()

    run(main())


def test_redis_killed_then_restarted_recovers_without_a_new_store() -> None:
    async def main(server: RedisProcess) -> None:
        store = RedisStore(server.url, timeout=1.0)
        try:
            # Several pooled connections, so more than one goes stale at the crash.
            await asyncio.gather(*(store.set(f"id{i}", {"i": i}, 60) for i in range(5)))
            server.kill()
            for action in (
                lambda: store.get("id1"),
                lambda: store.set("id1", {"i": 1}, 60),
                lambda: store.touch("id1", 60),
                lambda: store.remove("id1"),
            ):
                took, error = await elapsed(action)
                assert isinstance(error, StoreUnavailable), error
                assert took < 1.5
            server.start()
            assert server.url == store_url
            # Fresh server, empty dataset; every pooled connection must recover.
            assert await asyncio.gather(*(store.get(f"id{i}") for i in range(5))) == [None] * 5
            await asyncio.gather(*(store.set(f"id{i}", {"i": i}, 60) for i in range(5)))
            assert await store.get("id3") == {"i": 3}
        finally:
            await store.aclose()

    with running_redis() as server:
        store_url = server.url
        run(main(server))


def test_redis_hung_server_times_out_and_later_replies_stay_in_order() -> None:
    async def main(server: RedisProcess) -> None:
        store = RedisStore(server.url, timeout=0.5)
        try:
            await store.set("a", {"v": "a"}, 60)
            await store.set("b", {"v": "b"}, 60)
            server.pause()
            try:
                took, error = await elapsed(lambda: store.get("a"))
                assert isinstance(error, StoreUnavailable)
                assert 0.3 < took < 1.5
            finally:
                server.resume()
            # The reply to the abandoned GET "a" must not be read as the answer
            # to the next command on a reused connection.
            assert await store.get("b") == {"v": "b"}
            assert await store.get("a") == {"v": "a"}
        finally:
            await store.aclose()

    with running_redis() as server:
        run(main(server))


def test_redis_store_validates_timeout() -> None:
    for bad in (0, -1, True, "2"):
        with pytest.raises(ValueError, match="timeout"):
            RedisStore(timeout=bad)  # type: ignore[arg-type]


def test_redis_process_helper_restarts_on_the_same_port() -> None:
    with running_redis() as server:
        port = server.port
        assert server.running
        server.restart()
        assert server.running
        assert server.port == port
        server.stop()
        server.stop()
        assert not server.running
        server.start()
        assert server.running
    assert not server.running


# --------------------------------------------------------------------------- SessionManager


def test_new_untouched_session_sends_nothing_and_writes_nothing() -> None:
    async def main() -> None:
        store = RecordingStore()
        manager = SessionManager(store=store)
        session = await manager.load(None)
        assert session.is_new
        assert not session.changed
        assert "anything" not in session
        assert session.get("anything") is None
        assert await manager.commit(session, https=False) is None
        assert store.calls == []

    run(main())


def test_a_new_session_is_pristine_until_something_is_done_to_it() -> None:
    # pristine: commit returns at once, with no plan, no id drawn, no store call
    async def main() -> list[bool]:
        manager = SessionManager(store=RecordingStore())
        seen = []
        for step in ("read", "write", "delete", "clear", "regenerate", "destroy"):
            session = await manager.load(None)
            assert session.pristine
            if step == "read":
                session.get("missing")
            elif step == "write":
                session["n"] = 1
            elif step == "delete":
                session["n"] = 1
                del session["n"]
            elif step == "clear":
                session.clear()
            elif step == "regenerate":
                session.regenerate()
            else:
                await session.destroy()
            seen.append(session.pristine)
        stored = await manager.load(None)
        stored["n"] = 1
        await manager.commit(stored, https=False)
        seen.append(stored.pristine)  # saved: no longer new
        return seen

    assert run(main()) == [True, False, False, False, False, False, False]
    assert "(none yet)" in repr(Session(MemoryStore(), None, {}, is_new=True))


def test_ids_are_random_urlsafe_and_long() -> None:
    async def main() -> None:
        manager = SessionManager()
        ids = {(await manager.load(None)).id for _ in range(1000)}
        assert len(ids) == 1000
        for id in ids:
            assert len(id) == 43  # 32 bytes = 256 bits
            assert set(id) <= set(string.ascii_letters + string.digits + "-_")

    run(main())


def test_changed_session_is_written_and_gets_a_cookie() -> None:
    async def main() -> None:
        store = RecordingStore()
        manager = SessionManager(store=store)
        session = await manager.load(None)
        session["user"] = "ada"
        assert session.changed
        header = await manager.commit(session, https=False)
        assert header is not None
        name, value, attributes = cookie_parts(header)
        assert (name, value) == ("_session", session.id)
        assert attributes == {"max-age": "3600", "path": "/", "httponly": "", "samesite": "Lax"}
        assert store.calls == [("set", session.id)]
        assert await store.get(session.id) == {"user": "ada"}
        assert not session.changed
        assert parse_cookies(header.split(";")[0]) == {"_session": session.id}

    run(main())


def test_cookie_attributes_follow_the_configuration() -> None:
    async def main() -> None:
        manager = SessionManager(
            cookie="sid", timeout=60, path="/app", domain="example.com", same_site="strict"
        )
        session = await manager.load(None)
        session["x"] = 1
        header = await manager.commit(session, https=True)
        assert header is not None
        _, _, attributes = cookie_parts(header)
        assert attributes["max-age"] == "60"
        assert attributes["path"] == "/app"
        assert attributes["domain"] == "example.com"
        assert attributes["samesite"] == "Strict"
        assert "secure" in attributes
        # secure=None follows the effective protocol.
        session["x"] = 2
        header = await manager.commit(session, https=False)
        assert header is not None
        assert "secure" not in cookie_parts(header)[2]

        forced = SessionManager(secure=True, http_only=False)
        session = await forced.load(None)
        session["x"] = 1
        header = await forced.commit(session, https=False)
        assert header is not None
        assert "secure" in cookie_parts(header)[2]
        assert "httponly" not in cookie_parts(header)[2]

        never = SessionManager(secure=False)
        session = await never.load(None)
        session["x"] = 1
        header = await never.commit(session, https=True)
        assert header is not None
        assert "secure" not in cookie_parts(header)[2]

        # Browsers drop SameSite=None and __Host- cookies that are not Secure.
        for manager in (SessionManager(same_site="none"), SessionManager(cookie="__Host-sid")):
            session = await manager.load(None)
            session["x"] = 1
            header = await manager.commit(session, https=False)
            assert header is not None
            assert "secure" in cookie_parts(header)[2]

    run(main())


@pytest.mark.parametrize(
    "options",
    [
        {"timeout": 0},
        {"timeout": 1.5},
        {"timeout": True},
        {"cookie": "bad name"},
        {"cookie": ""},
        {"same_site": "sometimes"},
        {"same_site": "none", "secure": False},
        {"path": "/a;b"},
        {"domain": "evil.com\r\nX: y"},
    ],
)
def test_bad_configuration_is_refused_up_front(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"(?i)timeout|cookie|same_?site|secure|path|domain"):
        SessionManager(**options)


def test_existing_unchanged_session_is_touched_and_cookie_rolls() -> None:
    async def main() -> None:
        clock = Clock()
        store = RecordingStore(clock=clock)
        manager = SessionManager(store=store, timeout=100)
        first = await manager.load(None)
        first["user"] = "ada"
        await manager.commit(first, https=False)

        clock.now += 90
        session = await manager.load(first.id)
        assert not session.is_new
        assert session.id == first.id
        assert session["user"] == "ada"
        assert not session.changed
        store.calls.clear()
        header = await manager.commit(session, https=False)
        assert store.calls == [("touch", first.id)]
        assert header is not None
        name, value, attributes = cookie_parts(header)
        assert (name, value, attributes["max-age"]) == ("_session", first.id, "100")

        clock.now += 90  # 180 s after creation, 90 s after the last use
        assert await store.get(first.id) == {"user": "ada"}
        clock.now += 11
        assert await store.get(first.id) is None

    run(main())


def test_regenerate_moves_the_data_and_removes_the_old_id() -> None:
    async def main() -> None:
        store = RecordingStore()
        manager = SessionManager(store=store)
        first = await manager.load(None)
        first["cart"] = [1]
        await manager.commit(first, https=False)
        old = first.id

        session = await manager.load(old)
        session.regenerate()
        assert session.changed
        assert session.id != old
        session["user"] = "ada"
        header = await manager.commit(session, https=False)
        assert header is not None
        assert cookie_parts(header)[1] == session.id
        assert await store.get(old) is None
        assert await store.get(session.id) == {"cart": [1], "user": "ada"}
        # The old id is now unknown: presenting it yields a fresh session.
        again = await manager.load(old)
        assert again.is_new
        assert again.id != old

    run(main())


def test_regenerate_alone_saves_under_the_new_id() -> None:
    async def main() -> None:
        store = MemoryStore()
        manager = SessionManager(store=store)
        first = await manager.load(None)
        first["n"] = 1
        await manager.commit(first, https=False)
        session = await manager.load(first.id)
        session.regenerate()
        session.regenerate()
        header = await manager.commit(session, https=False)
        assert header is not None
        assert cookie_parts(header)[1] == session.id
        assert await store.get(session.id) == {"n": 1}
        assert await store.get(first.id) is None
        assert len(store) == 1

        fresh = await manager.load(None)
        fresh.regenerate()
        assert await manager.commit(fresh, https=False) is not None
        assert await store.get(fresh.id) == {}

    run(main())


def test_destroy_removes_now_and_expires_the_cookie() -> None:
    async def main() -> None:
        store = MemoryStore()
        manager = SessionManager(store=store)
        first = await manager.load(None)
        first["user"] = "ada"
        await manager.commit(first, https=True)

        session = await manager.load(first.id)
        await session.destroy()
        assert await store.get(first.id) is None  # before commit
        assert session.changed
        assert len(session) == 0
        header = await manager.commit(session, https=True)
        assert header is not None
        name, value, attributes = cookie_parts(header)
        assert (name, value, attributes["max-age"]) == ("_session", "", "0")
        assert "secure" in attributes
        assert len(store) == 0

    run(main())


def test_writing_after_destroy_starts_a_new_session() -> None:
    async def main() -> None:
        store = MemoryStore()
        manager = SessionManager(store=store)
        first = await manager.load(None)
        first["user"] = "ada"
        await manager.commit(first, https=False)

        session = await manager.load(first.id)
        await session.destroy()
        session["flash"] = "logged out"
        header = await manager.commit(session, https=False)
        assert header is not None
        assert cookie_parts(header)[1] == session.id != first.id
        assert await store.get(session.id) == {"flash": "logged out"}
        assert await store.get(first.id) is None

    run(main())


def test_forged_id_of_valid_format_gets_a_new_id() -> None:
    async def main() -> None:
        store = RecordingStore()
        manager = SessionManager(store=store)
        forged = (await manager.load(None)).id  # right format, never stored
        session = await manager.load(forged)
        assert session.is_new
        assert session.id != forged
        assert store.calls == [("get", forged)]
        session["x"] = 1
        header = await manager.commit(session, https=False)
        assert header is not None
        assert cookie_parts(header)[1] == session.id
        assert await store.get(forged) is None

    run(main())


@pytest.mark.parametrize(
    "cookie",
    [
        "",
        "short",
        "A" * 42,
        "A" * 44,
        "A" * 42 + "B",  # a last letter token_urlsafe(32) never produces
        "A" * 41 + "+A",
        "A" * 41 + "=A",
        "A" * 41 + "%A",
        "A" * 41 + "éA",
        "A" * 42 + "\x00",
        "x" * 10_240,
    ],
)
def test_malformed_cookie_is_rejected_without_touching_the_store(cookie: str) -> None:
    async def main() -> None:
        store = RecordingStore()
        manager = SessionManager(store=store)
        session = await manager.load(cookie)
        assert session.is_new
        assert session.id != cookie
        assert store.calls == []

    run(main())


def test_huge_garbage_cookie_is_rejected_fast() -> None:
    async def main() -> None:
        manager = SessionManager(store=RecordingStore())
        garbage = "A" * 10_240
        start = time.perf_counter()
        for _ in range(2000):
            await manager.load(garbage)
        # The format check is O(1) on the length: 2000 loads are a few ms.
        assert time.perf_counter() - start < 0.5

    run(main())


def test_non_json_value_raises_type_error_naming_the_key() -> None:
    async def main() -> None:
        store = MemoryStore()
        manager = SessionManager(store=store)
        session = await manager.load(None)
        session["ok"] = 1
        session["when"] = {1, 2}
        with pytest.raises(TypeError, match="'when'"):
            await manager.commit(session, https=False)
        assert len(store) == 0

        saved = await manager.load(None)
        saved["n"] = 1
        await manager.commit(saved, https=False)
        session = await manager.load(saved.id)
        session["n"] = 2
        session["obj"] = object()
        with pytest.raises(TypeError, match="'obj'"):
            await manager.commit(session, https=False)
        assert await store.get(saved.id) == {"n": 1}

        with pytest.raises(TypeError, match="str"):
            session[1] = "x"  # type: ignore[index]

    run(main())


def test_in_place_changes_to_lists_and_dicts_are_saved() -> None:
    async def main() -> None:
        store = RecordingStore()
        manager = SessionManager(store=store)
        first = await manager.load(None)
        first["cart"] = [1]
        first["user"] = {"name": "ada"}
        await manager.commit(first, https=False)

        session = await manager.load(first.id)
        session["cart"].append(2)
        session.get("user")["name"] = "grace"
        assert session.changed
        await manager.commit(session, https=False)
        assert await store.get(first.id) == {"cart": [1, 2], "user": {"name": "grace"}}

        reader = await manager.load(first.id)
        assert dict(reader.items()) == {"cart": [1, 2], "user": {"name": "grace"}}
        assert not reader.changed
        store.calls.clear()
        await manager.commit(reader, https=False)
        assert store.calls == [("touch", first.id)]

    run(main())


def test_session_mapping_behaviour_and_repr() -> None:
    async def main() -> None:
        manager = SessionManager()
        session = await manager.load(None)
        session.update(a=1, b=2)
        assert session.setdefault("c", 3) == 3
        assert session.pop("a") == 1
        assert sorted(session) == ["b", "c"]
        assert len(session) == 2
        assert session == {"b": 2, "c": 3}
        assert session.id not in repr(session)
        assert isinstance(session, Session)

    run(main())


def test_concurrent_requests_merge_per_key() -> None:
    async def main() -> None:
        store = MemoryStore()
        manager = SessionManager(store=store)
        first = await manager.load(None)
        first.update(user="ada", cart=[], theme="dark")
        await manager.commit(first, https=False)

        one = await manager.load(first.id)
        two = await manager.load(first.id)
        one["cart"] = ["book"]
        two["user"] = "grace"
        del two["theme"]
        await manager.commit(one, https=False)
        await manager.commit(two, https=False)
        assert await store.get(first.id) == {"user": "grace", "cart": ["book"]}

    run(main())


def test_clear_replaces_the_whole_session() -> None:
    async def main() -> None:
        store = MemoryStore()
        manager = SessionManager(store=store)
        first = await manager.load(None)
        first.update(a=1, b=2)
        await manager.commit(first, https=False)

        other = await manager.load(first.id)
        session = await manager.load(first.id)
        other["c"] = 3
        await manager.commit(other, https=False)
        session.clear()
        session["d"] = 4
        await manager.commit(session, https=False)
        assert await store.get(first.id) == {"d": 4}

    run(main())


def test_a_logout_elsewhere_is_not_undone_by_a_slower_request() -> None:
    async def main() -> None:
        store = MemoryStore()
        manager = SessionManager(store=store)
        first = await manager.load(None)
        first.update(user="ada", cart=[])
        await manager.commit(first, https=False)

        slow = await manager.load(first.id)
        logout = await manager.load(first.id)
        await logout.destroy()
        await manager.commit(logout, https=False)
        slow["cart"] = ["book"]
        header = await manager.commit(slow, https=False)
        assert header is not None
        assert slow.id != first.id
        assert cookie_parts(header)[1] == slow.id
        assert await store.get(first.id) is None
        assert await store.get(slow.id) == {"cart": ["book"]}

    run(main())


def test_sessions_on_redis_end_to_end_with_concurrent_requests(
    redis_server: RedisProcess, prefix: str
) -> None:
    async def main() -> None:
        store = RedisStore(redis_server.url, prefix=prefix)
        raw = Redis.from_url(redis_server.url)
        manager = SessionManager(store=store, timeout=300)
        try:
            first = await manager.load(None)
            first.update(user="ada", stale=True)
            await manager.commit(first, https=False)
            assert 298 <= await raw.ttl(f"{prefix}{first.id}") <= 300

            async def request(i: int) -> str | None:
                session = await manager.load(first.id)
                await asyncio.sleep(0)  # let the requests overlap
                session[f"k{i}"] = i
                if i == 0:
                    del session["stale"]
                return await manager.commit(session, https=False)

            headers = await asyncio.gather(*(request(i) for i in range(30)))
            assert all(h is not None and cookie_parts(h)[1] == first.id for h in headers)
            data = await store.get(first.id)
            assert data == {"user": "ada", **{f"k{i}": i for i in range(30)}}

            await raw.expire(f"{prefix}{first.id}", 5)
            reader = await manager.load(first.id)
            await manager.commit(reader, https=False)
            assert 298 <= await raw.ttl(f"{prefix}{first.id}") <= 300

            reader.regenerate()
            await manager.commit(reader, https=False)
            assert await raw.exists(f"{prefix}{first.id}") == 0
            assert (await store.get(reader.id) or {}).get("user") == "ada"
        finally:
            await store.aclose()
            await raw.aclose()

    run(main())


def test_store_unavailable_propagates_from_load_commit_and_destroy() -> None:
    async def main() -> None:
        store = RedisStore(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5)
        manager = SessionManager(store=store)
        valid_id = (await manager.load(None)).id
        try:
            with pytest.raises(StoreUnavailable):
                await manager.load(valid_id)
            session = Session(store, valid_id, {"a": 1}, is_new=False)
            session["b"] = 2
            with pytest.raises(StoreUnavailable):
                await manager.commit(session, https=False)
            with pytest.raises(StoreUnavailable):
                await manager.commit(Session(store, valid_id, {}, is_new=False), https=False)
            with pytest.raises(StoreUnavailable):
                await Session(store, valid_id, {}, is_new=False).destroy()
            # A new untouched session never needs the store, so it still works.
            assert await manager.commit(await manager.load(None), https=False) is None
        finally:
            await store.aclose()

    run(main())


# --------------------------------------------------------------------------- wiring


def test_server_loads_and_commits_sessions_through_the_connection() -> None:
    import httpx

    import simples

    store = MemoryStore()
    app = simples.server()
    app.session(store=store, timeout=120)

    async def count(connection: Any) -> Any:
        connection.session["n"] = connection.session.get("n", 0) + 1
        return {"n": connection.session["n"]}

    async def look(connection: Any) -> Any:
        return {"n": connection.session.get("n")}

    async def login(connection: Any) -> Any:
        connection.session.regenerate()
        connection.session["user"] = "ada"
        return {"ok": True}

    async def logout(connection: Any) -> Any:
        await connection.session.destroy()
        return {"ok": True}

    async def bad(connection: Any) -> Any:
        connection.session["when"] = {1, 2}
        return {"ok": True}

    app.get("/count", count).get("/look", look).get("/login", login)
    app.get("/logout", logout).get("/bad", bad)

    async def main() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://test") as client:
            response = await client.get("/look")
            assert response.json() == {"n": None}
            assert "set-cookie" not in response.headers
            assert len(store) == 0

            response = await client.get("/count")
            assert response.json() == {"n": 1}
            name, first_id, attributes = cookie_parts(response.headers["set-cookie"])
            assert name == "_session"
            assert attributes["max-age"] == "120"
            assert "secure" in attributes  # the request came over https

            response = await client.get("/count")
            assert response.json() == {"n": 2}
            assert cookie_parts(response.headers["set-cookie"])[1] == first_id

            response = await client.get("/login")
            new_id = cookie_parts(response.headers["set-cookie"])[1]
            assert new_id != first_id
            assert await store.get(first_id) is None
            assert await store.get(new_id) == {"n": 2, "user": "ada"}

            response = await client.get("/logout")
            assert cookie_parts(response.headers["set-cookie"])[2]["max-age"] == "0"
            assert len(store) == 0

            client.cookies.clear()
            response = await client.get("/bad")
            assert response.status_code == 500
            assert len(store) == 0

    run(main())


def test_server_answers_503_while_the_store_is_down() -> None:
    import httpx

    import simples

    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5)
    app = simples.server()
    app.session(store=store)

    async def write(connection: Any) -> Any:
        connection.session["x"] = 1
        return "written"

    async def read(connection: Any) -> Any:
        return str(connection.session.get("x"))

    app.get("/write", write).get("/read", read)
    valid_id = (run(SessionManager().load(None))).id

    async def main() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            took = time.monotonic()
            response = await client.get("/read", headers={"cookie": f"_session={valid_id}"})
            assert response.status_code == 503
            response = await client.get("/write")
            assert response.status_code == 503
            assert "set-cookie" not in response.headers
            assert time.monotonic() - took < 3
            # A new session that is only read needs no store at all.
            response = await client.get("/read")
            assert (response.status_code, response.text) == (200, "None")
        await store.aclose()

    run(main())
