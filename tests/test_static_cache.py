"""The memory cache of static folders: small files kept with their validators,
revalidated by one stat per request, bounded, and switched off with 0."""

from __future__ import annotations

import gzip
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import simples
from simples.config import DEFAULTS
from simples.files import CACHE_FILE_MAX, FileCache, Static

OLD = time.time() - 3600  # files older than the settling margin are cached at once


def age(*paths: Path) -> None:
    for path in paths:
        os.utime(path, (OLD, OLD))


@pytest.fixture
def public(tmp_path: Path) -> Path:
    root = tmp_path / "public"
    root.mkdir()
    (root / "a.txt").write_bytes(b"first")
    (root / "data.bin").write_bytes(b"\x00\x01binary")
    (root / "big.bin").write_bytes(b"x" * (CACHE_FILE_MAX + 1))
    (root / "index.html").write_text("<h1>home</h1>")
    (root / "docs").mkdir()
    (root / "docs" / "index.html").write_text("<h1>docs</h1>")
    (root / "secret").mkdir()
    (tmp_path / "outside.txt").write_bytes(b"outside")
    age(*root.rglob("*"), root, tmp_path / "outside.txt")
    return root


def app_for(root: Path, **options: object) -> simples.Server:
    app = simples.server()
    app.static(str(root), **options)
    return app


def memory_of(app: simples.Server) -> FileCache:
    state = app.settings.state(simples.files.FEATURE)  # type: ignore[attr-defined]
    assert isinstance(state, Static)
    assert state.memory is not None
    return state.memory


@pytest.fixture
def client(public: Path) -> Iterator[tuple[simples.Server, object]]:
    app = app_for(public)
    with simples.client(app).sync() as live:
        yield app, live


def test_a_cached_file_is_served_like_a_fresh_one(public: Path) -> None:
    app = app_for(public)
    with simples.client(app).sync() as live:
        first = live.get("/a.txt")
        assert len(memory_of(app)) == 1
        second = live.get("/a.txt")
        head = live.head("/a.txt")
        revalidated = live.get("/a.txt", headers={"if-none-match": first.headers["etag"]})
        since = live.get("/a.txt", headers={"if-modified-since": first.headers["last-modified"]})
        failed = live.get("/a.txt", headers={"if-match": '"other"'})
        part = live.get("/a.txt", headers={"range": "bytes=1-2"})
        assert first.buffer() == second.buffer() == b"first"
    assert list(first.headers.items()) == list(second.headers.items())
    assert list(head.headers.items()) == list(first.headers.items())
    assert first.headers["content-type"] == "text/plain; charset=utf-8"
    assert first.headers["cache-control"] == "no-cache"
    assert first.headers["accept-ranges"] == "bytes"
    assert revalidated.status == 304
    assert since.status == 304
    assert revalidated.headers["etag"] == first.headers["etag"]
    assert failed.status == 412
    assert part.status == 206
    assert part.headers["content-range"] == "bytes 1-2/5"


def test_a_replaced_file_is_served_new_at_once(public: Path) -> None:
    app = app_for(public)
    with simples.client(app).sync() as live:
        old = live.get("/a.txt")
        live.get("/a.txt")
        # same size, written in place: the mtime moves
        (public / "a.txt").write_bytes(b"again")
        fresh = live.get("/a.txt")
        assert fresh.buffer() == b"again"
        assert fresh.headers["etag"] != old.headers["etag"]
        # atomically replaced by another file (another inode), even with an old mtime
        replacement = public / "a.tmp"
        replacement.write_bytes(b"third!")
        age(replacement)
        live.get("/a.txt")
        os.replace(replacement, public / "a.txt")
        third = live.get("/a.txt")
        assert third.buffer() == b"third!"
        assert third.headers["content-length"] == "6"


def test_a_deleted_file_is_404_at_once(public: Path) -> None:
    app = app_for(public)
    with simples.client(app).sync() as live:
        assert live.get("/data.bin").status == 200
        assert live.get("/data.bin").status == 200
        (public / "data.bin").unlink()
        assert live.get("/data.bin").status == 404
        assert len(memory_of(app)) == 0


def test_index_files_are_cached_and_revalidated(public: Path) -> None:
    app = app_for(public, index=["index.htm", "index.html"])
    with simples.client(app).sync() as live:
        assert live.get("/docs/").text() == "<h1>docs</h1>"
        assert live.get("/docs/").text() == "<h1>docs</h1>"
        # an index name earlier in the list appears: it wins on the next request
        (public / "docs" / "index.htm").write_text("<h1>new</h1>")
        assert live.get("/docs/").text() == "<h1>new</h1>"
        assert live.get("/docs", follow_redirects=False).status == 301


def test_a_sidecar_added_later_is_negotiated_at_once(public: Path) -> None:
    app = app_for(public)
    with simples.client(app).sync() as live:
        plain = live.get("/a.txt", headers={"accept-encoding": "gzip"})
        assert "content-encoding" not in plain.headers
        assert "vary" not in plain.headers
        (public / "a.txt.gz").write_bytes(gzip.compress(b"first"))
        os.utime(public / "a.txt.gz", None)  # newer than its file
        packed = live.get("/a.txt", headers={"accept-encoding": "gzip"})
        assert packed.headers["content-encoding"] == "gzip"
        assert packed.headers["vary"] == "Accept-Encoding"
        # files with sidecars are not kept: the answer depends on the request
        assert len(memory_of(app)) == 0


def test_large_and_fresh_files_are_not_kept(public: Path) -> None:
    app = app_for(public)
    with simples.client(app).sync() as live:
        assert len(live.get("/big.bin").buffer()) == CACHE_FILE_MAX + 1
        assert len(memory_of(app)) == 0
        (public / "new.txt").write_text("just written")
        assert live.get("/new.txt").text() == "just written"
        assert len(memory_of(app)) == 0  # changed within the settling margin
        # so is a file in a folder changed just now (a sidecar may have come)
        assert live.get("/a.txt").status == 200
        assert len(memory_of(app)) == 0
        age(public)
        assert live.get("/new.txt").status == 200
        assert live.get("/a.txt").status == 200
        assert len(memory_of(app)) == 1


def test_the_bound_is_kept(public: Path) -> None:
    names = [f"f{n}.txt" for n in range(10)]
    for name in names:
        (public / name).write_bytes(name.encode() * 10)  # 60 bytes each
    age(*(public / name for name in names), public)
    app = app_for(public, cache_entries=4)
    with simples.client(app).sync() as live:
        for name in names:
            assert live.get(f"/{name}").buffer() == name.encode() * 10
        memory = memory_of(app)
        assert len(memory) == 4
        assert memory.size == 240
    app = app_for(public, cache_bytes=150)
    with simples.client(app).sync() as live:
        for name in names:
            live.get(f"/{name}")
        memory = memory_of(app)
        assert len(memory) == 2
        assert memory.size == 120
        # the most recently used stay
        assert memory.get("/f9.txt") is not None
        assert memory.get("/f0.txt") is None


@pytest.mark.parametrize("key", ["cache_entries", "cache_bytes"])
def test_zero_turns_the_cache_off(public: Path, key: str) -> None:
    app = app_for(public, **{key: 0})
    with simples.client(app).sync() as live:
        assert live.get("/a.txt").text() == "first"
        assert live.get("/a.txt").text() == "first"
        state = app.settings.state(simples.files.FEATURE)  # type: ignore[attr-defined]
        assert state.memory is None


@pytest.mark.parametrize("value", [-1, 1.5, "10", True, None])
@pytest.mark.parametrize("key", ["cache_entries", "cache_bytes"])
def test_bad_cache_sizes_fail_when_configured(public: Path, key: str, value: object) -> None:
    with pytest.raises(ValueError, match="static cache_"):
        simples.server().config(static={"location": str(public), key: value})
    with pytest.raises(ValueError, match="static cache_"):
        Static({**DEFAULTS["static"], "location": str(public), key: value}, str(public))


def test_symlinks_and_traversal_are_checked_before_the_cache(public: Path) -> None:
    app = app_for(public)
    with simples.client(app).sync() as live:
        assert live.get("/a.txt").status == 200
        assert live.get("/a.txt").status == 200
        (public / ".env").write_text("SECRET=1")
        age(public / ".env", public)
        for _ in range(2):  # the dotfile rule comes before the cache
            assert live.get("/.env").status == 404
        assert live.get("/%2e%2e/outside.txt").status == 404
        # the cached file becomes a symlink leaving the folder: not served
        (public / "a.txt").unlink()
        (public / "a.txt").symlink_to(public.parent / "outside.txt")
        assert live.get("/a.txt").status == 404
        # a folder on the way is swapped for a symlink leaving the folder
        (public / "secret" / "s.txt").write_text("in")
        age(public / "secret" / "s.txt", public / "secret")
        assert live.get("/secret/s.txt").text() == "in"
        assert live.get("/secret/s.txt").text() == "in"
        (public / "secret" / "s.txt").rename(public.parent / "s.txt")
        (public / "secret").rmdir()
        (public / "secret").symlink_to(public.parent)
        assert live.get("/secret/s.txt").status == 404


def test_a_cached_answer_takes_start_hooks_and_middleware_headers_as_a_fresh_one(
    public: Path,
) -> None:
    # A hit with nothing set before it sends the lines prepared when the file was
    # kept, and start hooks still shape it; a header a middleware set sends it
    # the long way. Either way the answer is the first one's.
    hooked = app_for(public)

    @hooked.use
    async def stamp(connection: simples.HTTPConnection, next: Any) -> None:
        async def hook(connection: simples.HTTPConnection, body: bytes | None) -> bytes | None:
            connection.header("x-hook", connection.response.headers["etag"][0])
            return body

        connection.on_start(hook)
        await next()

    tagged = app_for(public)

    @tagged.use
    async def tag(connection: simples.HTTPConnection, next: Any) -> None:
        connection.header("x-tag", "on")
        await next()

    answers = {}
    for name, app in (("hooked", hooked), ("tagged", tagged)):
        with simples.client(app).sync() as live:
            first = live.get("/a.txt")
            assert len(memory_of(app)) == 1
            second = live.get("/a.txt")  # from memory
            head = live.head("/a.txt")
            assert first.buffer() == second.buffer() == b"first"
        assert list(first.headers.items()) == list(second.headers.items())
        assert list(head.headers.items()) == list(first.headers.items())
        answers[name] = second
    assert answers["hooked"].headers["x-hook"] == answers["hooked"].headers["etag"]
    assert answers["tagged"].headers["x-tag"] == "on"


def test_a_middleware_editing_the_head_in_place_does_not_change_the_kept_answer(
    public: Path,
) -> None:
    # Starlette's MutableHeaders edits the start message's list in place; the
    # lines prepared for a kept file are shared by every hit.
    from starlette.datastructures import MutableHeaders

    def stamping(app: Any) -> Any:
        async def wrapped(scope: Any, receive: Any, send: Any) -> None:
            async def stamp(message: Any) -> None:
                if message["type"] == "http.response.start":
                    MutableHeaders(scope=message).append("x-seen", "1")
                await send(message)

            await app(scope, receive, stamp)

        return wrapped

    app = app_for(public).wrap(stamping)
    with simples.client(app).sync() as live:
        answers = [live.get("/a.txt") for _ in range(3)]
        assert len(memory_of(app)) == 1
        assert [answer.buffer() for answer in answers] == [b"first"] * 3
    for answer in answers:
        assert answer.headers.getall("x-seen") == ["1"]
    assert list(answers[1].headers.items()) == list(answers[2].headers.items())
