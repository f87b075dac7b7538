"""Every response is well-formed whatever features are combined.

Features {compression, CORS, sessions with a working and a failing store,
logger, timeout} x answers {JSON reply, write/end stream, drain, static
200/206/304/HEAD, error route, raised exception, 503 from the store}: the body
decodes with the announced Content-Encoding, Content-Length matches, Vary is
there where the answer depends on a request header, a 206 and a 304 carry what
their 200 would, CORS headers survive every answer.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import zlib
from pathlib import Path
from typing import Any

import brotli
import pytest
import zstandard

import simples
from simples.sessions import StoreUnavailable

ORIGIN = "https://app.example"
TEXT = "simples matrix line of text, compressible enough\n" * 200
BIG = {"items": [{"n": n, "text": "compressible"} for n in range(100)]}


class DownStore:
    """A store that cannot be reached at all: loading fails (503 before the handler)."""

    async def get(self, id: str) -> dict[str, Any] | None:
        raise StoreUnavailable("down for the test")

    async def set(self, id: str, data: dict[str, Any], timeout: int) -> None:
        raise StoreUnavailable("down for the test")

    async def touch(self, id: str, timeout: int) -> None:
        raise StoreUnavailable("down for the test")

    async def remove(self, id: str) -> None:
        raise StoreUnavailable("down for the test")


class SaveFailsStore(DownStore):
    """Loads (as a new session) but cannot save: the 503 comes from the start hook."""

    async def get(self, id: str) -> dict[str, Any] | None:
        return None


FEATURES = ("compression", "cors", "session", "session_down", "logger", "timeout")
# (name, method, path, extra request headers, expected status)
ANSWERS = (
    ("json", "GET", "/json", {}, 200),
    ("stream", "GET", "/stream", {}, 200),
    ("drain", "GET", "/drain", {}, 200),
    ("static", "GET", "/big.txt", {}, 200),
    ("static_206", "GET", "/big.txt", {"range": "bytes=10-4000"}, 206),
    ("static_304", "GET", "/big.txt", {"if-none-match": "ETAG"}, 304),
    ("static_head", "HEAD", "/big.txt", {}, 200),
    ("error_route", "GET", "/missing", {}, 404),
    ("exception", "GET", "/boom", {}, 500),
    ("store_503", "GET", "/save/it", {}, 503),
)
FEATURE_SETS = [(name,) for name in FEATURES] + [
    ("compression", "cors", "session", "logger", "timeout"),
    ("compression", "cors", "session_down", "logger", "timeout"),
]


def build(features: tuple[str, ...], folder: Path, lines: list[str]) -> simples.Server:
    app = simples.server()
    if "compression" in features:
        app.compression(min_size=16)
    if "cors" in features:
        app.cors(origins=[ORIGIN], credentials=True, expose=["X-Id"])
    if "session" in features:
        app.session(store=simples.MemoryStore())
    if "session_down" in features:
        app.session(store=DownStore())
    if "logger" in features:
        app.logger(log=lines.append, format="%method %path %status")
    if "timeout" in features:
        app.timeout(5)
    app.static(str(folder), cache=60)

    @app.get("/json")
    async def json_reply(connection: simples.HTTPConnection) -> Any:
        if connection.session is not None:
            connection.session["n"] = 1
        connection.header("X-Id", "7")
        return BIG

    @app.get("/stream")
    async def stream(connection: simples.HTTPConnection) -> None:
        connection.type("text")
        for _ in range(5):
            await connection.write(TEXT[:500])
        await connection.end("done")

    @app.get("/drain")
    async def drain(connection: simples.HTTPConnection) -> None:
        await connection.drain(str(folder / "big.txt"))

    @app.get("/boom")
    async def boom(connection: simples.HTTPConnection) -> None:
        raise RuntimeError("boom for the matrix")

    @app.error(404)
    async def missing(connection: simples.HTTPConnection) -> Any:
        return {"missing": connection.path, "padding": "x" * 200}

    saving = app.router("/save")
    saving.session(store=SaveFailsStore())

    @saving.get("/it")
    async def save(connection: simples.HTTPConnection) -> Any:
        assert connection.session is not None
        connection.session["n"] = 1
        return BIG

    return app


def decode(coding: str | None, raw: bytes) -> bytes:
    if coding is None:
        return raw
    if coding == "gzip":
        return zlib.decompress(raw, 31)
    if coding == "deflate":
        return zlib.decompress(raw)
    if coding == "br":
        return bytes(brotli.decompress(raw))
    if coding == "zstd":
        return bytes(zstandard.ZstdDecompressor().decompressobj().decompress(raw))
    raise AssertionError(f"unknown coding {coding}")


# A well-formed session id, so that a store is asked for it (and fails when down).
SESSION_COOKIE = "_session=" + secrets.token_urlsafe(32)


async def exchange(
    client: Any, method: str, path: str, headers: dict[str, str]
) -> tuple[int, Any, bytes]:
    base = {"accept-encoding": "gzip, br, zstd", "origin": ORIGIN, "cookie": SESSION_COOKIE}
    request = client.request(method, path)
    for name, value in {**base, **headers}.items():
        request.header(name, value)
    response = await request
    raw = await response.buffer(limit=0)
    return response.status, response.headers, raw


def check(
    features: tuple[str, ...],
    answer: str,
    status: int,
    headers: Any,
    raw: bytes,
    full: tuple[int, Any, bytes] | None,
    identity: tuple[int, Any, bytes] | None = None,
) -> None:
    coding = headers.get("content-encoding")
    where = f"{features} x {answer}"
    if status in (204, 304) or answer == "static_head":
        assert raw == b"", where
    else:
        body = decode(coding, raw)  # the announced coding is the body's coding
        assert body, where
        length = headers.get("content-length")
        if length is not None:
            assert int(length) == len(raw), where
    if status == 304:
        assert "content-length" not in headers, where
        assert coding is None, where
    if answer == "static_head":
        # Compression skips HEAD: its length is the identity body's.
        assert identity is not None
        assert headers.get("content-length") == identity[1].get("content-length"), where
    types = headers.get("content-type") or ""
    compressible = types.startswith(("text/", "application/json"))
    if "compression" in features and status in (200, 206) and compressible:
        assert "accept-encoding" in headers.get("vary", "").lower(), where
    if answer in ("static_206", "static_304"):
        # A 206 is a range of the identity representation: compared with the 200
        # of that one; a 304 stands for the 200 the request would have had.
        reference = identity if answer == "static_206" else full
        assert reference is not None
        for name in ("etag", "last-modified", "cache-control", "vary"):
            assert headers.get(name) == reference[1].get(name), (where, name)
    if "cors" in features:
        assert headers.get("access-control-allow-origin") == ORIGIN, where
        assert "origin" in headers.get("vary", "").lower(), where


@pytest.mark.parametrize("features", FEATURE_SETS, ids="+".join)
def test_every_answer_is_well_formed(features: tuple[str, ...], tmp_path: Path) -> None:
    (tmp_path / "big.txt").write_text(TEXT)
    lines: list[str] = []
    app = build(features, tmp_path, lines)

    async def run() -> None:
        async with simples.client(app, raise_app_exceptions=False) as client:
            full = await exchange(client, "GET", "/big.txt", {})
            identity = await exchange(client, "GET", "/big.txt", {"accept-encoding": "identity"})
            if "session_down" not in features:
                assert full[0] == 200
            etag = full[1].get("etag") or "none"
            for answer, method, path, extra, expected in ANSWERS:
                extra = {k: v.replace("ETAG", etag) for k, v in extra.items()}
                status, headers, raw = await exchange(client, method, path, extra)
                if "session_down" in features and answer != "store_503":
                    # the store is down: every exchange of that router is a 503
                    expected = 503
                assert status == expected, (features, answer, status)
                check(features, answer, status, headers, raw, full, identity)

    asyncio.run(run())
    if "logger" in features:
        # one line per exchange, whatever the answer
        assert len(lines) == 2 + len(ANSWERS)
        assert any(line.endswith(" 503") for line in lines)


def test_a_failed_start_hook_leaves_no_half_applied_feature(tmp_path: Path) -> None:
    """The bug that started it: compression on, the session store down at save time,
    and a 503 went out with ``content-encoding: gzip`` over a plain body."""
    app = build(("compression",), tmp_path, [])

    async def run() -> tuple[int, Any, bytes]:
        async with simples.client(app) as client:
            return await exchange(client, "GET", "/save/it", {})

    status, headers, raw = asyncio.run(run())
    assert status == 503
    assert decode(headers.get("content-encoding"), raw) == b"Service Unavailable"
    assert "set-cookie" not in headers


def test_matrix_covers_every_pair() -> None:
    pairs = {(feature, answer[0]) for feature in FEATURES for answer in ANSWERS}
    covered = {
        (feature, answer[0])
        for features, answer in itertools.product(FEATURE_SETS, ANSWERS)
        for feature in features
    }
    assert pairs <= covered
