"""The showcase app over plain HTTP (and one WebSocket): what needs no browser.

The browser suite (tests/browser) drives the same app through Chromium; here
the app runs in process through simples.client (a real uvicorn for the WebSocket
feed, driven by the websockets library, and for the CLI), and the checks are on
headers, statuses and log lines.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import brotli
import httpx
import pytest
import redis
from examples.showcase import build_assets
from examples.showcase.app import Options, content_disposition, create_app, safe_next
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

import simples
from tests.conftest import AnyLive, Live, head_of, raw_get, serve, serve_inprocess
from tests.redis_server import free_port, running_redis

ROOT = Path(__file__).resolve().parents[1]
ALLOWED_ORIGIN = "http://localhost:3000"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def showcase_options(tmp_path: Path) -> Options:
    return Options(data=tmp_path / "data", page_size=2, max_upload=100_000, debug=True)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[AnyLive]:
    with serve_inprocess(create_app(showcase_options(tmp_path))) as live:
        yield live


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Live]:
    """The showcase on a real uvicorn (a WebSocket client needs a port)."""
    with serve(create_app(showcase_options(tmp_path))) as live:
        yield live


def sign_in(live: AnyLive, name: str = "Ada") -> str:
    """Sign ``live.client`` in; returns the CSRF token of its session."""
    response = live.client.post("/login", data={"name": name})
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    page = live.get("/")
    found = CSRF.search(page.text)
    assert found is not None
    return found.group(1)


def post(live: AnyLive, csrf: str, text: str, **files: tuple[str, bytes, str]) -> httpx.Response:
    return live.client.post("/notes", data={"csrf": csrf, "text": text}, files=files or None)


def attachment_url(live: AnyLive) -> str:
    found = re.search(r'href="(/files/[0-9a-f]{32})"', live.get("/").text)
    assert found is not None
    return found.group(1)


# ------------------------------------------------------------------------ pages


def test_pages_are_private_revalidated_and_in_the_visitors_language(app: AnyLive) -> None:
    page = app.get("/", headers={"Accept-Language": "de-DE, fr-CA;q=0.8, en;q=0.5"})
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["cache-control"] == "private, no-cache"
    assert page.headers["content-language"] == "fr"  # German is not offered: French next
    assert '<html lang="fr">' in page.text
    assert "Accept-Language" in page.headers["vary"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "set-cookie" not in page.headers  # an untouched session sends no cookie
    english = app.get("/", headers={"Accept-Language": "en-GB"})
    assert english.headers["content-language"] == "en"
    # the cookie set by the switch wins over the browser's preference
    switched = app.get("/lang/fr", params={"next": "/login"})
    assert switched.status_code == 303
    assert switched.headers["location"] == "/login"
    assert "lang=fr" in switched.headers["set-cookie"]
    login = app.get("/login", headers={"Accept-Language": "en"})
    assert login.headers["content-language"] == "fr"


def test_dynamic_pages_are_compressed(app: AnyLive) -> None:
    page = app.get("/", headers={"Accept-Encoding": "br"})
    assert page.headers["content-encoding"] == "br"
    assert "Accept-Encoding" in page.headers["vary"]
    assert "<!doctype html>" in page.text


def test_static_assets_are_fingerprinted_precompressed_and_immutable(app: AnyLive) -> None:
    html = app.get("/").text
    found = re.search(r'href="/(site\.[0-9a-f]{10,}\.css)"', html)
    assert found is not None
    name = found.group(1)
    source = (build_assets.ASSETS / "site.css").read_bytes()
    for coding, sidecar in (("br", ".br"), ("gzip", ".gz")):
        response = app.get(f"/{name}", headers={"Accept-Encoding": coding})
        assert response.status_code == 200
        assert response.headers["content-encoding"] == coding
        assert response.headers["content-type"] == "text/css; charset=utf-8"
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert "accept-encoding" in response.headers["vary"].lower()
        on_disk = (build_assets.PUBLIC / (name + sidecar)).read_bytes()
        assert int(response.headers["content-length"]) == len(on_disk)  # the sidecar itself
        assert response.content == source  # httpx decoded it
    plain = app.get(f"/{name}", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.content == source
    # each representation has its own ETag, so a revalidation names the coding too
    for coding in ("identity", "br"):
        first = app.get(f"/{name}", headers={"Accept-Encoding": coding})
        again = {"Accept-Encoding": coding, "If-None-Match": first.headers["etag"]}
        assert app.get(f"/{name}", headers=again).status_code == 304
    assert app.get("/favicon.ico").headers["location"].startswith("/favicon.")


def test_public_folder_is_built_from_the_assets(tmp_path: Path) -> None:
    # (the app rebuilds public/ at startup when assets/ changed, so a stale
    # public/ shows up in `git status` as soon as the tests or the app ran)
    assert build_assets.stale() == [], "run: python -m examples.showcase.build_assets"
    # a build into an empty folder gives the same files
    assert build_assets.build(tmp_path) != []
    assert build_assets.stale(tmp_path) == []
    (tmp_path / "robots.txt").write_text("User-agent: *\n")
    (tmp_path / "site.0123456789abcdef.css").write_text("old")
    build_assets.build(tmp_path)
    assert (tmp_path / "robots.txt").exists()  # not ours: kept
    assert not (tmp_path / "site.0123456789abcdef.css").exists()  # an old build: removed
    for name in (build_assets.PUBLIC / "manifest.json").read_text().split('"')[3::4]:
        data = (build_assets.PUBLIC / name).read_bytes()
        assert brotli.decompress((build_assets.PUBLIC / f"{name}.br").read_bytes()) == data
        assert gzip.decompress((build_assets.PUBLIC / f"{name}.gz").read_bytes()) == data


def test_error_pages(app: AnyLive, caplog: pytest.LogCaptureFixture) -> None:
    missing = app.get("/nowhere", headers={"Accept-Language": "fr"})
    assert missing.status_code == 404
    assert "Erreur 404" in missing.text
    assert missing.headers["cache-control"] == "no-store"
    assert missing.headers["content-language"] == "fr"
    with caplog.at_level(logging.ERROR, logger="simples"):
        failed = app.get("/boom")
    assert failed.status_code == 500
    assert "Error 500" in failed.text
    assert "Something went wrong on our side" in failed.text
    assert "RuntimeError" not in failed.text  # the exception is logged, not shown
    assert any("boom" in str(record.exc_info and record.exc_info[1]) for record in caplog.records)
    # the API has its own error routes: JSON
    api = app.get("/api/nothing")
    assert api.status_code == 404
    assert api.json() == {"error": 404, "message": "There is nothing at this address."}


def test_the_failing_route_exists_only_in_debug(tmp_path: Path) -> None:
    with serve_inprocess(create_app(Options(data=tmp_path))) as live:
        assert live.get("/boom").status_code == 404


# ---------------------------------------------------------------- forms, notes


def test_post_redirect_get_and_pagination_links(app: AnyLive) -> None:
    csrf = sign_in(app)
    for number in range(4):
        created = post(app, csrf, f"note {number}")
        assert created.status_code == 303
        assert created.headers["location"] == "/"
    # 5 notes (with the welcome note), 2 per page: 3 pages
    first = app.get("/")
    assert first.headers["link"] == (
        '</?page=1>; rel="first", </?page=3>; rel="last", </?page=2>; rel="next"'
    )
    assert "Your note is on the board." in first.text  # the flash, shown once
    assert "Your note is on the board." not in app.get("/").text
    middle = app.get("/?page=2")
    assert '</?page=1>; rel="prev"' in middle.headers["link"]
    assert '</?page=3>; rel="next"' in middle.headers["link"]
    assert middle.text.count('class="note"') == 2
    assert app.get("/?page=4").status_code == 404
    assert app.get("/?page=zero").status_code == 404
    assert app.get("/?page=²").status_code == 404
    assert app.get("/?page=" + "9" * 5000).status_code == 404
    assert app.get("/api/notes/" + "9" * 5000).status_code == 404
    api = app.get("/api/notes", params={"page": 2})
    assert api.json()["pages"] == 3
    assert [note["text"] for note in api.json()["notes"]] == ["note 1", "note 0"]
    assert '</api/notes?page=3>; rel="next"' in api.headers["link"]


def test_forms_are_checked(app: AnyLive) -> None:
    # not signed in: posting sends you to the login page
    anonymous = app.client.post("/notes", data={"text": "hi"})
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/login"
    bad_name = app.client.post("/login", data={"name": "<script>"})
    assert bad_name.status_code == 422
    assert "1 to 40 characters" in bad_name.text
    assert "&lt;script&gt;" in bad_name.text  # autoescaped
    csrf = sign_in(app)
    assert post(app, "forged", "hi").status_code == 403
    empty = post(app, csrf, "   ")
    assert empty.status_code == 422
    assert "A note needs some text" in empty.text
    too_long = post(app, csrf, "x" * 2001)
    assert too_long.status_code == 422
    # over the attachment limit (100 kB here): 413 and the custom page
    big = post(app, csrf, "big", attachment=("big.bin", b"\0" * 150_000, "application/x-big"))
    assert big.status_code == 413
    assert "Attachments may be up to" in big.text
    # a note's text is escaped on the page
    assert post(app, csrf, "<b>bold</b>").status_code == 303
    assert "&lt;b&gt;bold&lt;/b&gt;" in app.get("/").text
    # logging out needs the token too
    assert app.client.post("/logout", data={"csrf": "nope"}).status_code == 403
    assert app.client.post("/logout", data={"csrf": csrf}).status_code == 303
    assert "Ada" not in app.get("/").text.split("<main>")[0]


def test_attachments_are_drained_with_ranges_and_safe_headers(app: AnyLive, tmp_path: Path) -> None:
    csrf = sign_in(app)
    data = bytes(range(256)) * 200
    page = b"<script>alert(1)</script>"
    assert post(app, csrf, "page", attachment=("../../evil.html", page, "text/html")).is_redirect
    evil = app.get(attachment_url(app))
    assert evil.headers["content-type"] == "application/octet-stream"  # never text/html
    assert evil.headers["content-disposition"].startswith('attachment; filename="evil.html"')
    assert evil.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in evil.headers["content-security-policy"]
    assert evil.content == page
    assert not (tmp_path / "evil.html").exists()

    assert post(app, csrf, "data", attachment=("données.txt", data, "text/plain")).is_redirect
    url = attachment_url(app)
    whole = app.get(url, headers={"Accept-Encoding": "identity"})
    assert whole.content == data
    assert whole.headers["content-type"] == "text/plain; charset=utf-8"
    assert whole.headers["content-disposition"] == (
        "inline; filename=\"donn_es.txt\"; filename*=UTF-8''donn%C3%A9es.txt"
    )
    assert whole.headers["accept-ranges"] == "bytes"
    assert whole.headers["cache-control"] == "public, max-age=31536000, immutable"
    part = app.get(url, headers={"Range": "bytes=100-299"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 100-299/{len(data)}"
    assert part.content == data[100:300]
    several = app.get(url, headers={"Range": "bytes=0-9, 20-29"})
    assert several.status_code == 206
    assert several.headers["content-type"].startswith("multipart/byteranges")
    assert app.get(url, headers={"Range": f"bytes={len(data)}-"}).status_code == 416
    assert app.get(url, headers={"If-None-Match": whole.headers["etag"]}).status_code == 304
    assert app.get("/files/" + "0" * 32).status_code == 404
    assert app.get("/files/..%2F..%2Fnotes.json").status_code == 404


def test_language_switch_stays_on_this_site(app: AnyLive) -> None:
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example", ""):
        response = app.get("/lang/en", params={"next": target})
        assert response.headers["location"] == "/"
    assert app.get("/lang/xx").status_code == 404
    assert safe_next("/notes?page=2") == "/notes?page=2"
    assert content_disposition("attachment", 'a"b\\c.txt').startswith(
        'attachment; filename="a_b_c.txt"'
    )


def test_language_switch_is_not_fooled_by_what_browsers_strip(served: Live) -> None:
    # Issue #18: ?next=/%09/evil.com passed the old safe_next, and browsers drop
    # the tab and go to //evil.com.
    for query in (b"/%09/evil.com", b"/%0D%0A/evil.com", b"%20//evil.com", b"/%5C%09evil.com",
                  b"https:evil.com", b"http://127.0.0.1%5C@evil.com", b"%01//evil.com"):
        raw = raw_get(served.port, b"/lang/en?next=" + query, host=b"127.0.0.1")
        assert head_of(raw)["location"] == "/", query
    assert served.get("/lang/en", params={"next": "/notes?page=2"}).headers["location"] == (
        "/notes?page=2"
    )
    assert safe_next("/\t/evil.com") == "/"


# --------------------------------------------------------------- log, api, live


def test_access_and_audit_log_lines(app: AnyLive, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="showcase"):
        sign_in(app, "Lin")
        app.get("/nowhere")

    def lines(logger: str) -> list[str]:
        return [record.getMessage() for record in caplog.records if record.name == logger]

    access = lines("showcase.access")
    assert any(
        re.fullmatch(
            r'127\.0\.0\.1 "POST http://127\.0\.0\.1:\d+/login" 303 - [\d.]+ ms '
            r"lang=- user=Lin",
            line,
        )
        for line in access
    ), access
    assert any(
        '"GET http' in line and '/nowhere" 404 ' in line and "lang=en" in line for line in access
    ), access
    assert "127.0.0.1 user=Lin signed in" in lines("showcase.audit")


def test_json_api_with_cors(app: AnyLive) -> None:
    allowed = app.get("/api/notes", headers={"Origin": ALLOWED_ORIGIN})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert allowed.headers["cache-control"] == "public, max-age=5"
    assert "set-cookie" not in allowed.headers
    assert allowed.json()["notes"][0]["author"] == "simples"
    refused = app.get("/api/notes", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in refused.headers
    preflight = app.request(
        "OPTIONS",
        "/api/notes",
        headers={"Origin": ALLOWED_ORIGIN, "Access-Control-Request-Method": "GET"},
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-max-age"] == "600"
    one = app.get("/api/notes/1")
    assert one.json()["id"] == 1
    assert app.get("/api/notes/abc").status_code == 404


def test_live_feed_sends_new_notes(served: Live) -> None:
    app = served
    csrf = sign_in(app, "AnyLive")

    async def scenario() -> dict[str, object]:
        async with connect(f"ws://127.0.0.1:{app.port}/live") as ws:
            presence = json.loads(await ws.recv())
            assert presence == {"type": "presence", "online": 1}
            await ws.send("ping")
            assert await ws.recv() == "pong"
            response = await asyncio.to_thread(post, app, csrf, "over the wire")
            assert response.status_code == 303
            message: dict[str, object] = json.loads(await ws.recv())
            return message

    async def foreign() -> None:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"ws://127.0.0.1:{app.port}/live", origin="http://evil.example"):
                pass
        assert refused.value.response.status_code == 403

    message = asyncio.run(asyncio.wait_for(scenario(), 15))
    asyncio.run(asyncio.wait_for(foreign(), 15))
    assert message["type"] == "note"
    assert message["total"] == 2
    html = message["html"]
    assert isinstance(html, dict)
    assert set(html) == {"en", "fr"}
    assert "over the wire" in html["en"]
    assert f'id="note-{message["id"]}"' in html["fr"]


# ---------------------------------------------------------------------- running


def read_session(url: str, session_id: str) -> Any:
    async def read() -> Any:
        store = simples.RedisStore(url, prefix="showcase:session:")
        try:
            return await store.get(session_id)
        finally:
            await store.aclose()

    return asyncio.run(read())


def test_sessions_in_redis_when_redis_url_is_set(tmp_path: Path) -> None:
    with running_redis() as server:
        client = redis.Redis.from_url(server.url)
        try:
            options = Options(data=tmp_path, redis_url=server.url)
            with serve_inprocess(create_app(options)) as live:
                csrf = sign_in(live, "Redis")
                session_id = live.client.cookies["_session"]
                assert client.keys("showcase:session:*") == [
                    f"showcase:session:{session_id}".encode()
                ]
                assert read_session(server.url, session_id)["user"] == "Redis"
                assert live.client.post("/logout", data={"csrf": csrf}).status_code == 303
                assert read_session(server.url, session_id) is None  # destroyed in Redis
        finally:
            client.close()


def test_runs_with_the_cli(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "SHOWCASE_DATA": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    env.pop("REDIS_URL", None)
    command = [sys.executable, "-m", "simples.cli", "run", "examples.showcase.app:server",
               "--port", str(port)]  # fmt: skip
    log = tmp_path / "out.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/", timeout=10)
                break
            except httpx.ConnectError:
                time.sleep(0.05)
        assert page.status_code == 200
        assert "simples" in page.text
    finally:
        process.terminate()
        process.wait(20)
