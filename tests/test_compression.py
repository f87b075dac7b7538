"""The ``compression`` section: codings and q-values, Vary, what is never compressed,
files compressed on the fly (in process: the bodies are read exactly as the app sent
them), and streams flushed per write (on a real server: it takes the wire)."""

from __future__ import annotations

import asyncio
import gzip
import json
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import brotli
import httpx
import pytest
import zstandard

import simples
from simples import HTTPConnection
from simples.compression import Compression
from simples.config import DEFAULTS
from simples.http.headers import with_token
from tests.conftest import AnyLive, serve, serve_inprocess

PAYLOAD = {
    "items": [
        {"id": i, "name": f"item {i}", "tags": ["alpha", "beta"], "price": i * 1.5}
        for i in range(160)
    ]
}
PAYLOAD_BYTES = json.dumps(PAYLOAD, separators=(",", ":")).encode()
TEXT = "All work and no play makes Jack a dull boy.\n" * 100


def decode(coding: str | None, data: bytes) -> bytes:
    if coding is None:
        return data
    if coding == "gzip":
        return gzip.decompress(data)
    if coding == "deflate":
        return zlib.decompress(data)
    if coding == "br":
        return bytes(brotli.decompress(data))
    assert coding == "zstd"
    return bytes(zstandard.ZstdDecompressor().decompressobj().decompress(data))


def fetch(
    live: AnyLive, path: str, accept: str | None, method: str = "GET"
) -> tuple[httpx.Response, bytes]:
    """The response and its body exactly as sent (not decoded by httpx)."""
    headers = {"accept-encoding": accept} if accept is not None else {"accept-encoding": ""}
    with live.client.stream(method, path, headers=headers) as response:
        raw = b"".join(response.iter_raw())
    return response, raw


def dynamic_app(**options: Any) -> simples.Server:
    app = simples.server(compression=options or True)

    @app.get("/json")
    async def payload(connection: HTTPConnection) -> Any:
        return PAYLOAD

    @app.get("/text")
    async def text(connection: HTTPConnection) -> str:
        return TEXT

    @app.get("/small")
    async def small(connection: HTTPConnection) -> str:
        return "tiny"

    @app.get("/png")
    async def png(connection: HTTPConnection) -> None:
        connection.type("png")
        await connection.send(b"\x89PNG" + b"\x00" * 5000)

    @app.get("/encoded")
    async def encoded(connection: HTTPConnection) -> None:
        connection.header("content-encoding", "gzip").type("txt")
        await connection.send(gzip.compress(TEXT.encode()))

    @app.get("/no-transform")
    async def no_transform(connection: HTTPConnection) -> str:
        connection.cache("no-transform")
        return TEXT

    @app.get("/no-content")
    async def no_content(connection: HTTPConnection) -> None:
        connection.status(204)
        await connection.send(None)

    @app.get("/vary")
    async def vary(connection: HTTPConnection) -> str:
        connection.header("vary", "Origin")
        return TEXT

    @app.get("/big")
    async def big(connection: HTTPConnection) -> str:
        return TEXT * 100  # past the size compressed in a worker thread

    @app.get("/stream")
    async def stream(connection: HTTPConnection) -> None:
        for index in range(50):
            await connection.write(f"line {index}: {TEXT[:60]}\n")
        await connection.end()

    return app


@pytest.fixture(scope="module")
def shared() -> Iterator[AnyLive]:
    with serve_inprocess(dynamic_app()) as live:
        yield live


@pytest.mark.parametrize("coding", ["br", "zstd", "gzip", "deflate"])
def test_each_coding_round_trips(shared: AnyLive, coding: str) -> None:
    response, raw = fetch(shared, "/json", coding)
    text_response, text_raw = fetch(shared, "/text", coding)
    big_response, big_raw = fetch(shared, "/big", coding)
    streamed, streamed_raw = fetch(shared, "/stream", coding)
    assert response.headers["content-encoding"] == coding
    assert response.headers["vary"] == "Accept-Encoding"
    assert response.headers["content-length"] == str(len(raw))
    assert len(raw) < len(PAYLOAD_BYTES)
    assert json.loads(decode(coding, raw)) == PAYLOAD
    assert decode(coding, text_raw).decode() == TEXT
    assert text_response.headers["content-type"] == "text/plain; charset=utf-8"
    assert decode(coding, big_raw).decode() == TEXT * 100
    assert big_response.headers["content-encoding"] == coding
    assert streamed.headers["content-encoding"] == coding
    assert "content-length" not in streamed.headers
    expected = "".join(f"line {index}: {TEXT[:60]}\n" for index in range(50))
    assert decode(coding, streamed_raw).decode() == expected


CHOICES = [
    ("gzip", "gzip"),
    ("gzip, deflate, br, zstd", "br"),  # alike: the smallest output first
    ("gzip;q=1, br;q=0.5", "gzip"),
    ("br;q=0, gzip", "gzip"),  # q=0 refuses
    ("br;q=0, zstd;q=0, gzip;q=0, deflate;q=0", None),
    ("*", "br"),
    ("*;q=0", None),  # nothing acceptable: the body goes out as it is
    ("identity", None),
    ("identity;q=1, gzip;q=0.5", None),  # identity rated higher
    ("x-gzip", "gzip"),
    ("compress, unknown", None),
    ("GZIP", "gzip"),
    ("gzip;q=abc", None),  # unreadable q: that member is dropped
    ("", None),
    (None, None),
]


def test_choice_follows_the_client_qualities() -> None:
    with serve_inprocess(dynamic_app()) as live:
        answers = [(accept, chosen, *fetch(live, "/json", accept)) for accept, chosen in CHOICES]
    for accept, chosen, response, raw in answers:
        assert response.headers.get("content-encoding") == chosen, accept
        assert response.headers["vary"] == "Accept-Encoding"
        assert json.loads(decode(chosen, raw)) == PAYLOAD, accept


def test_preferred_breaks_ties_only() -> None:
    with serve_inprocess(dynamic_app(preferred="gzip")) as live:
        tie, _ = fetch(live, "/json", "br, gzip, zstd")
        rated, _ = fetch(live, "/json", "br, gzip;q=0.9")
    assert tie.headers["content-encoding"] == "gzip"
    assert rated.headers["content-encoding"] == "br"


def test_what_is_never_compressed() -> None:
    with serve_inprocess(dynamic_app()) as live:
        small, small_raw = fetch(live, "/small", "gzip")
        png, png_raw = fetch(live, "/png", "gzip")
        encoded, encoded_raw = fetch(live, "/encoded", "br")
        no_transform, _ = fetch(live, "/no-transform", "gzip")
        no_content, _ = fetch(live, "/no-content", "gzip")
        head, head_raw = fetch(live, "/json", "gzip", method="HEAD")
    assert small_raw == b"tiny"
    assert "content-encoding" not in small.headers
    assert small.headers["vary"] == "Accept-Encoding"  # compressible: varies anyway
    assert "content-encoding" not in png.headers
    assert "vary" not in png.headers  # never compressed, so never varies
    assert len(png_raw) == 5004
    assert encoded.headers["content-encoding"] == "gzip"  # the handler's own, untouched
    assert gzip.decompress(encoded_raw).decode() == TEXT
    assert "content-encoding" not in no_transform.headers
    assert no_content.status_code == 204
    assert "content-encoding" not in no_content.headers
    assert head.status_code == 200
    assert head_raw == b""
    assert "content-encoding" not in head.headers
    assert head.headers["vary"] == "Accept-Encoding"
    assert head.headers["content-length"] == str(len(PAYLOAD_BYTES))


def test_vary_is_merged_with_what_the_handler_set() -> None:
    with serve_inprocess(dynamic_app()) as live:
        response, _ = fetch(live, "/vary", "gzip")
    assert response.headers["vary"] == "Origin, Accept-Encoding"
    out = {"vary": ["Accept-Encoding"]}
    out["vary"] = with_token(out["vary"], "accept-encoding") or out["vary"]
    assert out == {"vary": ["Accept-Encoding"]}
    star = {"vary": ["*"]}
    star["vary"] = with_token(star["vary"], "Accept-Encoding") or star["vary"]
    assert star == {"vary": ["*"]}


def test_min_size_and_levels() -> None:
    with serve_inprocess(dynamic_app(min_size=2, level=9)) as live:
        small, small_raw = fetch(live, "/small", "gzip")
    assert small.headers["content-encoding"] == "gzip"
    assert gzip.decompress(small_raw) == b"tiny"
    with serve_inprocess(dynamic_app(level={"gzip": 1, "br": 11})) as live:
        _, fast_raw = fetch(live, "/json", "gzip")
        _, dense_raw = fetch(live, "/json", "br")
    assert json.loads(gzip.decompress(fast_raw)) == PAYLOAD
    assert json.loads(brotli.decompress(dense_raw)) == PAYLOAD


def test_bad_settings_fail_when_configured() -> None:
    for options in (
        {"preferred": "lzma"},
        {"level": {"lzma": 3}},
        {"level": "max"},
        {"level": {"gzip": 1.5}},
        {"min_size": -1},
        {"min_size": "1k"},
    ):
        with pytest.raises((ValueError, TypeError)):
            simples.server().compression(**options)
    section = dict(DEFAULTS["compression"])
    with pytest.raises(ValueError, match="preferred"):
        Compression({**section, "preferred": "lzma"})
    with pytest.raises(ValueError, match="level"):
        Compression({**section, "level": {"lzma": 3}})
    with pytest.raises(TypeError, match="level"):
        Compression({**section, "level": "max"})
    # one number for every coding: each gets it within its own scale
    assert Compression({**section, "level": 20}).levels == {
        "br": 11,
        "zstd": 20,
        "gzip": 9,
        "deflate": 9,
    }


def test_off_by_default_and_per_router() -> None:
    app = simples.server()
    app.get("/text", lambda connection: TEXT)
    api = app.router("/api")
    api.compression()
    api.get("/text", lambda connection: TEXT)
    with serve_inprocess(app) as live:
        plain, _ = fetch(live, "/text", "gzip")
        compressed, raw = fetch(live, "/api/text", "gzip")
    assert "content-encoding" not in plain.headers
    assert "vary" not in plain.headers
    assert compressed.headers["content-encoding"] == "gzip"
    assert gzip.decompress(raw).decode() == TEXT


DECOMPRESSORS: dict[str, Callable[[], Callable[[bytes], bytes]]] = {
    "gzip": lambda: zlib.decompressobj(31).decompress,
    "deflate": lambda: zlib.decompressobj(15).decompress,
    "br": lambda: brotli.Decompressor().process,
    "zstd": lambda: zstandard.ZstdDecompressor().decompressobj().decompress,
}


def test_server_sent_events_arrive_promptly() -> None:
    app = simples.server(compression={"min_size": 0})
    releases: dict[str, asyncio.Event] = {}

    @app.get("/events/:coding")
    async def events(connection: HTTPConnection) -> None:
        release = releases.setdefault(connection.params["coding"], asyncio.Event())
        connection.type("text/event-stream")
        await connection.write("data: first\n\n")
        await release.wait()  # the second event waits until the first has arrived
        await connection.write("data: second\n\n")
        await connection.end()

    with serve(app) as live:
        for coding, make in DECOMPRESSORS.items():
            decompress = make()
            seen = b""
            with live.client.stream(
                "GET", f"/events/{coding}", headers={"accept-encoding": coding}
            ) as response:
                assert response.headers["content-encoding"] == coding
                chunks = response.iter_raw()
                for chunk in chunks:
                    seen += decompress(chunk)
                    if b"data: first\n\n" in seen:
                        break
                assert seen == b"data: first\n\n", coding  # arrived before the end
                live.loop.call_soon_threadsafe(
                    lambda c=coding: releases.setdefault(c, asyncio.Event()).set()
                )
                for chunk in chunks:
                    seen += decompress(chunk)
            assert seen == b"data: first\n\ndata: second\n\n", coding


def test_files_are_compressed_on_the_fly_but_not_their_ranges(tmp_path: Path) -> None:
    path = tmp_path / "book.txt"
    path.write_text(TEXT * 40)  # ~180 KB: streamed in several chunks
    small = tmp_path / "note.txt"
    small.write_text(TEXT)  # one chunk: compressed whole
    app = simples.server(compression=True)
    app.get("/book", lambda connection: connection.drain(path))
    app.get("/note", lambda connection: connection.drain(small))
    with serve_inprocess(app) as live:
        plain = live.request("HEAD", "/book", headers={"accept-encoding": ""})
        book, book_raw = fetch(live, "/book", "gzip")
        note, note_raw = fetch(live, "/note", "br")
        ranged = live.get("/book", headers={"accept-encoding": "gzip", "range": "bytes=0-9"})
        revalidated = live.get(
            "/book", headers={"accept-encoding": "gzip", "if-none-match": book.headers["etag"]}
        )
    assert plain.headers["accept-ranges"] == "bytes"
    assert book.headers["content-encoding"] == "gzip"
    assert "content-length" not in book.headers
    assert "accept-ranges" not in book.headers
    assert book.headers["etag"] == "W/" + plain.headers["etag"]  # not the identity bytes
    assert gzip.decompress(book_raw).decode() == TEXT * 40
    assert note.headers["content-encoding"] == "br"
    assert note.headers["content-length"] == str(len(note_raw))
    assert brotli.decompress(note_raw).decode() == TEXT
    assert ranged.status_code == 206
    assert "content-encoding" not in ranged.headers
    assert ranged.content == (TEXT * 40).encode()[:10]
    assert revalidated.status_code == 304  # the weak tag still revalidates
    assert revalidated.headers["vary"] == "Accept-Encoding"
