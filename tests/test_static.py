"""Static folders: mapping, index and redirects, sidecars, cache headers, SPA fallback,
per router and per host, and hostile paths. In process through simples.client, except
the tests that send raw request targets (which only a real server sees unnormalised)."""

from __future__ import annotations

import asyncio
import gzip
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import brotli
import pytest
import uvicorn
import zstandard

import simples
from simples import HTTPConnection
from simples.config import DEFAULTS
from simples.files import IMMUTABLE, Static, is_fingerprinted, safe_segments
from tests.conftest import body_of, head_of, raw_get, serve, serve_inprocess, status_of

SECRET = b"TOP SECRET outside the root"
STYLE = b"body { color: red; margin: 0 auto; }\n" * 50


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """tmp/secret.txt beside tmp/public/, the served root."""
    (tmp_path / "secret.txt").write_bytes(SECRET)
    (tmp_path / ".env").write_bytes(b"SECRET=outside")
    public = tmp_path / "public"
    public.mkdir()
    (public / "index.html").write_text("<h1>home</h1>")
    (public / "hello.txt").write_text("hello")
    (public / "app.3f2a9c1e.js").write_text("console.log(1)")
    (public / "style.css").write_bytes(STYLE)
    (public / "style.css.br").write_bytes(brotli.compress(STYLE))
    (public / "style.css.gz").write_bytes(gzip.compress(STYLE))
    (public / "style.css.zst").write_bytes(zstandard.ZstdCompressor().compress(STYLE))
    (public / "stale.css").write_bytes(STYLE)
    (public / "stale.css.gz").write_bytes(gzip.compress(b"old content"))
    past = time.time() - 3600
    os.utime(public / "stale.css.gz", (past, past))
    (public / "leak.css").write_bytes(STYLE)
    (public / "leak.css.br").symlink_to(tmp_path / "secret.txt")
    (public / ".env").write_text("SECRET=1")
    (public / ".hidden").mkdir()
    (public / ".hidden" / "file.txt").write_text("hidden")
    (public / ".well-known").mkdir()
    (public / ".well-known" / "security.txt").write_text("Contact: x")
    (public / "docs").mkdir()
    (public / "docs" / "index.html").write_text("<h1>docs</h1>")
    (public / "evil.com").mkdir()
    (public / "evil.com" / "index.html").write_text("<h1>not evil</h1>")
    (public / "empty").mkdir()
    (public / "sub").mkdir()
    (public / "sub" / "file.txt").write_text("in sub")
    (public / "café.txt").write_text("unicode")
    (public / "link-in").symlink_to(public / "hello.txt")
    (public / "link-out").symlink_to(tmp_path / "secret.txt")
    (public / "dir-out").symlink_to(tmp_path)
    (public / "to-dotfile").symlink_to(public / ".env")
    os.mkfifo(public / "pipe")
    return public


def static_app(root: Path, **options: object) -> simples.Server:
    app = simples.server()
    app.static(str(root), **options)
    return app


def test_files_index_and_validators(site: Path) -> None:
    with serve_inprocess(static_app(site)) as live:
        hello = live.get("/hello.txt")
        home = live.get("/")
        docs = live.get("/docs/")
        head = live.request("HEAD", "/hello.txt")
        cached = live.get("/hello.txt", headers={"if-none-match": hello.headers["etag"]})
        part = live.get("/hello.txt", headers={"range": "bytes=1-3"})
        unicode = live.get("/caf%C3%A9.txt")
        nested = live.get("/sub/file.txt")
        # %2F decodes to "/" once, for routing and files alike
        encoded_slash = live.get("/sub%2Ffile.txt")
        link_in = live.get("/link-in")
        post = live.request("POST", "/hello.txt")
    assert (hello.status_code, hello.text) == (200, "hello")
    assert hello.headers["content-type"] == "text/plain; charset=utf-8"
    assert hello.headers["content-length"] == "5"
    assert hello.headers["accept-ranges"] == "bytes"
    assert "etag" in hello.headers
    assert "last-modified" in hello.headers
    assert (home.status_code, home.text) == (200, "<h1>home</h1>")
    assert home.headers["content-type"] == "text/html; charset=utf-8"
    assert docs.text == "<h1>docs</h1>"
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == "5"
    assert cached.status_code == 304
    assert (part.status_code, part.text) == (206, "ell")
    assert unicode.text == "unicode"
    assert nested.text == "in sub"
    assert encoded_slash.text == "in sub"
    assert link_in.text == "hello"  # a symlink that stays inside the root is fine
    assert post.status_code == 404  # only GET and HEAD are served from the folder


def test_routes_come_before_files(site: Path) -> None:
    app = static_app(site)
    app.get("/hello.txt", lambda connection: "from the route")
    with serve_inprocess(app) as live:
        assert live.get("/hello.txt").text == "from the route"


def test_directories_redirect_to_their_slash(site: Path) -> None:
    with serve(static_app(site)) as live:
        docs = live.get("/docs")
        with_query = live.get("/docs?page=2&q=a%20b")
        evil = live.get("/evil.com")
        no_index = live.get("/empty")
        no_index_slash = live.get("/empty/")
        file_with_slash = live.get("/hello.txt/")
        protocol_relative = raw_get(live.port, b"//evil.com")
        encoded = raw_get(live.port, b"/%2fevil.com")
        backslashed = raw_get(live.port, b"/\\evil.com")
    assert docs.status_code == 301
    assert docs.headers["location"] == "/docs/"
    assert with_query.headers["location"] == "/docs/?page=2&q=a%20b"
    assert evil.headers["location"] == "/evil.com/"
    assert no_index.status_code == 404
    assert no_index_slash.status_code == 404  # no directory listings
    assert file_with_slash.status_code == 404
    for response in (protocol_relative, encoded, backslashed):
        assert 400 <= status_of(response) < 500
        assert "location" not in head_of(response)


TRAVERSALS = [
    b"/../secret.txt",
    b"/../../../../../../etc/passwd",
    b"/%2e%2e/secret.txt",
    b"/%2E%2E/secret.txt",
    b"/.%2e/secret.txt",
    b"/%2e%2e%2fsecret.txt",
    b"/..%2fsecret.txt",
    b"/..%2Fsecret.txt",
    b"/sub/..%2f..%2fsecret.txt",
    b"/sub/../../secret.txt",
    b"/./../secret.txt",
    b"/%252e%252e/secret.txt",  # double encoding: decoded once, a literal "%2e%2e"
    b"/%c0%ae%c0%ae/secret.txt",  # overlong UTF-8 for "."
    b"/%c0%ae%c0%ae%c0%afsecret.txt",
    b"/%e0%80%ae%e0%80%ae/secret.txt",
    b"/%00",
    b"/hello.txt%00.html",
    b"/%00/../secret.txt",
    b"/a\\..\\secret.txt",
    b"/..\\secret.txt",
    b"/a%5c..%5csecret.txt",
    b"/%5c..%5csecret.txt",
    b"//etc/passwd",
    b"///etc/passwd",
    b"/%2fetc/passwd",
    b"/C:/Windows/win.ini",
    b"/C:%5cWindows%5cwin.ini",
    b"/c:secret.txt",
    b"/hello.txt::$DATA",
    b"/\\\\server\\share\\secret.txt",
    b"/%5c%5cserver%5cshare",
    b"/%01hello.txt",
    b"/hello%0d%0aSet-Cookie:%20x=1",
    b"/hello%7f.txt",
    b"/.env",
    b"/%2eenv",
    b"/sub/../.env",
    b"/.hidden/file.txt",
    b"/link-out",
    b"/dir-out/secret.txt",
    b"/dir-out/.env",
    b"/to-dotfile",
    b"/" + b"a" * 5000,
    b"/" + b"a/" * 3000,
    b"http://t/../secret.txt",  # absolute-form request target
]


def test_hostile_paths_never_leave_the_root(site: Path) -> None:
    # One server for every path: each is a separate connection all the same.
    with serve(static_app(site)) as live:
        responses = {target: raw_get(live.port, target) for target in TRAVERSALS}
    for target, response in responses.items():
        assert status_of(response) == 404, (target, response[:200])
        assert SECRET not in response, target
        assert b"SECRET=" not in response, target
        assert b"root:" not in response, target


def test_special_files_are_refused_without_waiting(site: Path) -> None:
    with serve_inprocess(static_app(site)) as live:
        started = time.perf_counter()
        pipe = live.get("/pipe")
        elapsed = time.perf_counter() - started
    assert pipe.status_code == 404
    assert elapsed < 2


def test_dotfiles_when_enabled_and_well_known_always(site: Path) -> None:
    with serve(static_app(site)) as live:
        well_known = live.get("/.well-known/security.txt")
    assert (well_known.status_code, well_known.text) == (200, "Contact: x")
    with serve(static_app(site, dotfiles=True)) as live:
        env = live.get("/.env")
        hidden = live.get("/.hidden/file.txt")
        outside = raw_get(live.port, b"/../.env")
    assert (env.status_code, env.text) == (200, "SECRET=1")
    assert hidden.text == "hidden"
    assert status_of(outside) == 404
    assert b"outside" not in outside


SIDECAR_CASES = [
    ("br", "br", ".br"),
    ("gzip", "gzip", ".gz"),
    ("zstd", "zstd", ".zst"),
    ("gzip, deflate, br, zstd", "br", ".br"),  # alike: the smallest first
    ("br;q=0.5, gzip", "gzip", ".gz"),
    ("br;q=0, zstd;q=0.1", "zstd", ".zst"),
    ("*", "br", ".br"),
    ("deflate", None, None),  # no sidecar for it
    ("identity", None, None),
    ("br;q=0, gzip;q=0, zstd;q=0", None, None),
    (None, None, None),
]


def test_precompressed_sidecars(site: Path) -> None:
    with serve(static_app(site)) as live:
        plain = raw_get(live.port, b"/style.css")
        answers = []
        for accept, coding, sidecar in SIDECAR_CASES:
            lines = [b"Accept-Encoding: " + accept.encode()] if accept is not None else []
            answers.append((accept, coding, sidecar, raw_get(live.port, b"/style.css", *lines)))
    for accept, coding, sidecar, response in answers:
        fields = head_of(response)
        assert status_of(response) == 200, accept
        assert fields["content-type"] == "text/css; charset=utf-8"
        assert "accept-encoding" in fields["vary"].lower(), accept
        expected = (site / ("style.css" + sidecar)).read_bytes() if sidecar else STYLE
        assert body_of(response) == expected, accept
        assert fields["content-length"] == str(len(expected))
        if coding is None:
            assert "content-encoding" not in fields, accept
            assert fields["etag"] == head_of(plain)["etag"]
        else:
            assert fields["content-encoding"] == coding, accept
            assert fields["etag"] != head_of(plain)["etag"]  # another representation


def test_sidecars_that_are_stale_or_leave_the_root_are_ignored(site: Path) -> None:
    with serve(static_app(site)) as live:
        stale = raw_get(live.port, b"/stale.css", b"Accept-Encoding: gzip")
        leak = raw_get(live.port, b"/leak.css", b"Accept-Encoding: br")
        ranged = raw_get(live.port, b"/style.css", b"Accept-Encoding: gzip", b"Range: bytes=0-9")
    assert body_of(stale) == STYLE
    assert "content-encoding" not in head_of(stale)
    assert body_of(leak) == STYLE
    assert SECRET not in leak
    # a range of the encoded representation
    assert status_of(ranged) == 206
    assert body_of(ranged) == (site / "style.css.gz").read_bytes()[:10]
    assert head_of(ranged)["content-encoding"] == "gzip"


def test_cache_headers(site: Path) -> None:
    with serve_inprocess(static_app(site)) as live:
        regular = live.get("/hello.txt").headers.get("cache-control")
        fingerprinted = live.get("/app.3f2a9c1e.js").headers.get("cache-control")
    assert regular == "no-cache"
    assert fingerprinted == IMMUTABLE == "public, max-age=31536000, immutable"
    with serve_inprocess(static_app(site, cache=False)) as live:
        assert "cache-control" not in live.get("/hello.txt").headers
        assert "cache-control" not in live.get("/app.3f2a9c1e.js").headers
    with serve_inprocess(static_app(site, cache=600)) as live:
        assert live.get("/hello.txt").headers["cache-control"] == "public, max-age=600"
        assert live.get("/app.3f2a9c1e.js").headers["cache-control"] == IMMUTABLE
    with serve_inprocess(static_app(site, cache={"type": "public", "max_age": 60})) as live:
        assert live.get("/hello.txt").headers["cache-control"] == "public, max-age=60"
    with serve_inprocess(static_app(site, cache="private, max-age=5")) as live:
        assert live.get("/hello.txt").headers["cache-control"] == "private, max-age=5"

    def by_name(name: str) -> str | None:
        return "no-store" if name.endswith(".txt") else None

    with serve_inprocess(static_app(site, cache=by_name)) as live:
        assert live.get("/hello.txt").headers["cache-control"] == "no-store"
        assert "cache-control" not in live.get("/app.3f2a9c1e.js").headers
        assert "cache-control" not in live.get("/").headers


def test_fingerprint_detection() -> None:
    assert is_fingerprinted("app.3f2a9c1e.js")
    assert is_fingerprinted("assets/index-BfV2rk_5.js")
    assert is_fingerprinted("main.a1b2c3d4e5f6.chunk.css")
    assert not is_fingerprinted("app.js")
    assert not is_fingerprinted("jquery-3.6.0.min.js")
    assert not is_fingerprinted("report-20240101.pdf")  # digits only: a date
    assert not is_fingerprinted("my-component.js")  # letters only: a word
    assert not is_fingerprinted("3f2a9c1e.js")  # nothing before the hash


def test_safe_segments() -> None:
    assert safe_segments("/a/b.txt", False) == (["a", "b.txt"], False)
    assert safe_segments("/a/", False) == (["a"], True)
    assert safe_segments("/", False) == ([], True)
    assert safe_segments("", False) == ([], False)
    assert safe_segments("/.well-known/x", False) == ([".well-known", "x"], False)
    assert safe_segments("/a/.well-known/x", False) is None
    assert safe_segments("/.env", True) == ([".env"], False)
    for refused in (
        "/..",
        "/a/../b",
        "/./a",
        "//a",
        "/a//b",
        "/a\\b",
        "/a\x00",
        "/C:",
        "/a\ufffd",
        "/\x7f",
        "a/b",
        "/.env",
        "/" + "x" * 256,
    ):
        assert safe_segments(refused, False) is None, refused
    assert safe_segments("/..", True) is None  # dotfiles never allow ".."


def test_spa_fallback(site: Path) -> None:
    app = static_app(site, fallback="index.html")
    app.post("/api/login", lambda connection: "posted")
    with serve(app) as live:
        page = live.get("/app/settings", headers={"accept": "text/html,*/*;q=0.8"})
        plain = live.get("/app/settings")
        asset = live.get("/missing.js")
        json_client = live.get("/app/settings", headers={"accept": "application/json"})
        other_method = live.get("/api/login", headers={"accept": "text/html"})
        traversal = raw_get(live.port, b"/../secret.txt", b"Accept: text/html")
        real_file = live.get("/hello.txt")
    assert (page.status_code, page.text) == (200, "<h1>home</h1>")
    assert page.headers["cache-control"] == "no-cache"
    assert plain.status_code == 200  # no Accept header: a browser-like default
    assert asset.status_code == 404
    assert json_client.status_code == 404
    assert other_method.status_code == 405
    assert status_of(traversal) == 404
    assert SECRET not in traversal
    assert real_file.text == "hello"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("fallback", "../secret.txt"),
        ("fallback", "docs/"),
        ("index", ["../index.html"]),
        ("index", [""]),
        ("cache", -1),
        ("cache", 1.5),
        ("cache", "public\r\nSet-Cookie: x=1"),
        ("dotfiles", "yes"),
        ("location", 42),
        ("location", ""),
    ],
)
def test_bad_static_options_fail_when_configured(site: Path, key: str, value: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        simples.server().config(static={"location": str(site), key: value})
    section = {**DEFAULTS["static"], "location": str(site), key: value}
    with pytest.raises((ValueError, TypeError)):
        Static(section, str(site))


def test_a_cache_function_cannot_smuggle_headers(site: Path) -> None:
    app = static_app(site, cache=lambda name: "no-cache\r\nSet-Cookie: x=1")
    with serve(app) as live:
        response = raw_get(live.port, b"/hello.txt")
    assert status_of(response) == 500
    assert b"set-cookie" not in response.lower()


def test_per_router_and_per_host(site: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "hello.txt").write_text("other host")
    app = simples.server()
    assets = app.router("/assets")
    assets.static(str(site))
    app.host("files.test").static(str(other))
    with serve(app) as live:
        routed = live.get("/assets/hello.txt")
        bare = live.get("/assets")
        index = live.get("/assets/")
        root = live.get("/hello.txt")
        outside = raw_get(live.port, b"/assets/../secret.txt")
        hosted = live.get("/hello.txt", headers={"host": "files.test"})
        other_host = live.get("/hello.txt", headers={"host": "else.test"})
    assert routed.text == "hello"
    assert bare.status_code == 301
    assert bare.headers["location"] == "/assets/"
    assert index.text == "<h1>home</h1>"
    assert root.status_code == 404  # the static section belongs to /assets only
    assert status_of(outside) == 404
    assert hosted.text == "other host"
    assert other_host.status_code == 404


def test_relative_location_is_taken_from_the_working_directory_at_start(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    app = simples.server()
    app.static("public")
    with serve_inprocess(app) as live:
        monkeypatch.chdir(site / "sub")  # later moves do not move the folder
        assert live.get("/hello.txt").text == "hello"


@pytest.fixture
def no_lifespan() -> Iterator[object]:
    """Serve on uvicorn with the lifespan protocol off (startup never runs)."""
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(app: simples.Server) -> int:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        config = uvicorn.Config(app, lifespan="off", log_level="warning")
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True
        )
        thread.start()
        servers.append((server, thread))
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        return int(sock.getsockname()[1])

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(10)


def test_static_works_without_lifespan_startup(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_lifespan: object
) -> None:
    monkeypatch.chdir(tmp_path)
    app = simples.server()
    app.static("public")
    port = no_lifespan(app)  # type: ignore[operator]
    response = raw_get(port, b"/hello.txt")
    assert status_of(response) == 200
    assert body_of(response) == b"hello"
    assert status_of(raw_get(port, b"/../secret.txt")) == 404


def test_error_routes_answer_for_missing_files(site: Path) -> None:
    app = static_app(site)

    @app.error(404)
    async def not_found(connection: HTTPConnection) -> str:
        return "nothing here"

    with serve(app) as live:
        missing = live.get("/nope.txt")
        refused = raw_get(live.port, b"/%2e%2e/secret.txt")
    assert (missing.status_code, missing.text) == (404, "nothing here")
    assert status_of(refused) == 404
    assert body_of(refused) == b"nothing here"


def test_static_switched_by_a_function(site: Path) -> None:
    app = simples.server()
    app.config(static={"location": str(site), "enabled": lambda c: "x-static" in c.headers})
    with serve_inprocess(app) as live:
        assert live.get("/hello.txt").status_code == 404
        assert live.get("/hello.txt", headers={"x-static": "1"}).text == "hello"
