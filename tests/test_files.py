"""``connection.drain()``: the file pipeline (validators, conditional requests, ranges,
HEAD), streams, and what happens on bad input. In process through simples.client;
raw requests, chunked framing and client disconnects on a real server."""

from __future__ import annotations

import asyncio
import io
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import simples
from simples import HTTPConnection
from simples.files import NotRegularFile, status_for
from simples.http.dates import format_http_date, parse_http_date
from tests.conftest import head_of, raw_get, serve, serve_inprocess, status_of

TEXT = b"Hello, files!\n" * 3
BIG_SIZE = (1 << 20) + 123  # past many 64 KiB chunks, and not a multiple of one


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "hello.txt").write_bytes(TEXT)
    (tmp_path / "big.bin").write_bytes(os.urandom(BIG_SIZE))
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "data.unknownext").write_bytes(b"?")
    (tmp_path / "folder").mkdir()
    return tmp_path


def drain_app(root: Path) -> simples.Server:
    app = simples.server()

    @app.get("/file/:name")
    async def send(connection: HTTPConnection) -> None:
        await connection.drain(root / connection.params["name"])

    return app


def test_file_carries_type_length_validators_and_ranges(files: Path) -> None:
    with serve_inprocess(drain_app(files)) as live:
        response = live.get("/file/hello.txt")
    assert response.status_code == 200
    assert response.content == TEXT
    headers = response.headers
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert headers["content-length"] == str(len(TEXT))
    assert headers["accept-ranges"] == "bytes"
    assert re.fullmatch(r'"[0-9a-f]+-[0-9a-f]+"', headers["etag"])  # strong
    mtime = int(os.stat(files / "hello.txt").st_mtime)
    assert parse_http_date(headers["last-modified"]) == mtime
    assert "cache-control" not in headers  # drain() leaves caching to the handler


def test_type_argument_override_and_earlier_type(files: Path) -> None:
    app = simples.server()
    path = files / "hello.txt"

    @app.get("/json")
    async def as_json(connection: HTTPConnection) -> None:
        await connection.drain(str(path), "json")

    @app.get("/verbatim")
    async def verbatim(connection: HTTPConnection) -> None:
        await connection.drain(path, "text/x-thing", True)

    @app.get("/earlier")
    async def earlier(connection: HTTPConnection) -> None:
        connection.type("csv")
        await connection.drain(path)

    @app.get("/unknown")
    async def unknown(connection: HTTPConnection) -> None:
        await connection.drain(files / "data.unknownext")

    with serve_inprocess(app) as live:
        assert live.get("/json").headers["content-type"] == "application/json"
        assert live.get("/verbatim").headers["content-type"] == "text/x-thing"
        assert live.get("/earlier").headers["content-type"] == "text/csv; charset=utf-8"
        assert live.get("/unknown").headers["content-type"] == "application/octet-stream"


def test_large_file_is_streamed_intact_and_head_matches(files: Path) -> None:
    content = (files / "big.bin").read_bytes()
    with serve(drain_app(files)) as live:
        response = live.get("/file/big.bin")
        head = live.request("HEAD", "/file/big.bin")
        raw_head = raw_get(live.port, b"/file/big.bin", method=b"HEAD")
    assert response.status_code == 200
    assert response.content == content
    assert response.headers["content-length"] == str(BIG_SIZE)
    assert head.status_code == 200
    assert head.content == b""
    for name in ("content-type", "content-length", "etag", "last-modified", "accept-ranges"):
        assert head.headers[name] == response.headers[name]
    assert raw_head.endswith(b"\r\n\r\n")  # no body bytes on the wire


def test_empty_file(files: Path) -> None:
    with serve_inprocess(drain_app(files)) as live:
        response = live.get("/file/empty.txt")
        ranged = live.get("/file/empty.txt", headers={"range": "bytes=0-"})
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == "0"
    assert ranged.status_code == 416
    assert ranged.headers["content-range"] == "bytes */0"


def test_conditional_requests_in_rfc_order(files: Path) -> None:
    with serve(drain_app(files)) as live:
        first = live.get("/file/hello.txt")
        etag = first.headers["etag"]
        modified = first.headers["last-modified"]
        earlier = format_http_date(parse_http_date(modified) - 3600)  # type: ignore[operator]

        def status(**headers: str) -> int:
            return live.get("/file/hello.txt", headers=headers).status_code

        assert status(**{"if-none-match": etag}) == 304
        assert status(**{"if-none-match": "W/" + etag}) == 304
        assert status(**{"if-none-match": f'"nope", {etag}'}) == 304
        assert status(**{"if-none-match": "*"}) == 304
        assert status(**{"if-none-match": '"nope"'}) == 200
        assert status(**{"if-modified-since": modified}) == 304
        assert status(**{"if-modified-since": earlier}) == 200
        # If-None-Match decides alone when present
        assert status(**{"if-none-match": '"nope"', "if-modified-since": modified}) == 200
        assert status(**{"if-match": etag}) == 200
        assert status(**{"if-match": '"nope"'}) == 412
        assert status(**{"if-match": "W/" + etag}) == 412
        assert status(**{"if-unmodified-since": earlier}) == 412
        assert status(**{"if-unmodified-since": modified}) == 200
        assert status(**{"if-match": '"nope"', "if-none-match": etag}) == 412
        raw = raw_get(live.port, b"/file/hello.txt", b"If-None-Match: " + etag.encode())
    assert status_of(raw) == 304
    fields = head_of(raw)
    assert fields["etag"] == etag
    assert "content-length" not in fields
    assert "content-type" not in fields
    assert raw.endswith(b"\r\n\r\n")  # no body


@pytest.mark.parametrize(
    "date",
    [
        b"garbage",
        b"Sun, 31 Feb 2021 10:00:00 GMT",
        b"Sun, 06 Nov 1994 08:49:61 GMT",
        b"Sun, \xd9\xa0\xd9\xa6 Nov 1994 08:49:37 GMT",  # Arabic-Indic digits, UTF-8
        b"-1",
        b"99999999999999999999",
        b"Thu, 01 Jan 10000 00:00:00 GMT",
    ],
)
def test_invalid_if_modified_since_dates_are_ignored(files: Path, date: bytes) -> None:
    with serve(drain_app(files)) as live:
        response = raw_get(live.port, b"/file/hello.txt", b"If-Modified-Since: " + date)
        unmodified = raw_get(live.port, b"/file/hello.txt", b"If-Unmodified-Since: " + date)
    assert status_of(response) == 200
    assert response.endswith(TEXT)
    assert status_of(unmodified) == 200


def test_validators_follow_changes_and_last_modified_is_never_in_the_future(
    files: Path,
) -> None:
    path = files / "hello.txt"
    with serve_inprocess(drain_app(files)) as live:
        before = live.get("/file/hello.txt").headers["etag"]
        path.write_bytes(TEXT + b"more")
        future = time.time() + 86_400
        os.utime(path, (future, future))
        after = live.get("/file/hello.txt")
    assert after.headers["etag"] != before
    assert parse_http_date(after.headers["last-modified"]) <= time.time() + 1  # type: ignore[operator]


def test_headers_set_by_the_handler_are_kept(files: Path) -> None:
    app = simples.server()

    @app.get("/")
    async def tagged(connection: HTTPConnection) -> None:
        connection.header("etag", '"mine"').cache({"type": "public", "max_age": 60})
        await connection.drain(files / "hello.txt")

    with serve_inprocess(app) as live:
        response = live.get("/")
        revalidated = live.get("/", headers={"if-none-match": '"mine"'})
    assert response.headers["etag"] == '"mine"'
    assert response.headers["cache-control"] == "public, max-age=60"
    assert revalidated.status_code == 304
    assert revalidated.headers["cache-control"] == "public, max-age=60"


def test_single_ranges(files: Path) -> None:
    content = (files / "big.bin").read_bytes()
    size = len(content)
    with serve_inprocess(drain_app(files)) as live:

        def ranged(value: str) -> httpx.Response:
            return live.get("/file/big.bin", headers={"range": value})

        first = ranged("bytes=0-9")
        assert first.status_code == 206
        assert first.content == content[:10]
        assert first.headers["content-range"] == f"bytes 0-9/{size}"
        assert first.headers["content-length"] == "10"
        # across chunk boundaries, in the middle of the file
        middle = ranged("bytes=60000-200000")
        assert middle.content == content[60000:200001]
        assert middle.headers["content-range"] == f"bytes 60000-200000/{size}"
        suffix = ranged("bytes=-100")
        assert suffix.content == content[-100:]
        assert suffix.headers["content-range"] == f"bytes {size - 100}-{size - 1}/{size}"
        open_ended = ranged(f"bytes={size - 5}-")
        assert open_ended.content == content[-5:]
        clipped = ranged(f"bytes={size - 5}-{size * 2}")
        assert clipped.headers["content-range"] == f"bytes {size - 5}-{size - 1}/{size}"
        # overlapping ranges merged into one: a plain 206, not multipart
        merged = ranged("bytes=0-99,50-149,150-199")
        assert merged.status_code == 206
        assert merged.headers["content-range"] == f"bytes 0-199/{size}"
        assert merged.content == content[:200]
        # a Range covering everything is still a 206 (the client asked for one)
        everything = ranged("bytes=0-")
        assert everything.status_code == 206
        assert everything.content == content


def test_multiple_ranges_give_multipart_byteranges(files: Path) -> None:
    content = (files / "big.bin").read_bytes()
    size = len(content)
    with serve_inprocess(drain_app(files)) as live:
        response = live.get("/file/big.bin", headers={"range": "bytes=500-599,0-9,-10"})
    assert response.status_code == 206
    kind = response.headers["content-type"]
    assert kind.startswith("multipart/byteranges; boundary=")
    boundary = kind.partition("boundary=")[2].encode()
    assert int(response.headers["content-length"]) == len(response.content)
    body = response.content
    assert body.endswith(b"\r\n--" + boundary + b"--\r\n")
    parts = body[: -len(b"\r\n--" + boundary + b"--\r\n")].split(b"--" + boundary + b"\r\n")
    assert parts[0] == b""
    found = []
    for part in parts[1:]:
        head, _, data = part.partition(b"\r\n\r\n")
        data = data.removesuffix(b"\r\n")
        fields = dict(line.split(": ", 1) for line in head.decode().split("\r\n") if line)
        assert fields["content-type"] == "application/octet-stream"
        first, last = map(int, fields["content-range"].split(" ")[1].split("/")[0].split("-"))
        assert data == content[first : last + 1]
        found.append((first, last))
    assert found == [(0, 9), (500, 599), (size - 10, size - 1)]  # sorted


def test_unsatisfiable_and_ignored_ranges(files: Path) -> None:
    size = BIG_SIZE
    with serve(drain_app(files)) as live:

        def ranged(value: str) -> httpx.Response:
            return live.get("/file/big.bin", headers={"range": value})

        beyond = ranged(f"bytes={size}-")
        assert beyond.status_code == 416
        assert beyond.headers["content-range"] == f"bytes */{size}"
        zero = ranged("bytes=-0")
        assert zero.status_code == 416
        assert zero.headers["content-range"] == f"bytes */{size}"
        # invalid or foreign: the whole file, 200
        for value in ("bytes=5-1", "items=0-5", "bytes=abc", "bytes=0-1-2", "bytes"):
            ignored = ranged(value)
            assert ignored.status_code == 200, value
            assert len(ignored.content) == size
        many = ",".join(f"{i * 10}-{i * 10 + 1}" for i in range(17))
        over = ranged("bytes=" + many)
        assert over.status_code == 200
        assert len(over.content) == size
        unicode_digits = raw_get(
            live.port, b"/file/hello.txt", "Range: bytes=٠-٤".encode(), b"Range-x: 1"
        )
        superscript = raw_get(live.port, b"/file/hello.txt", "Range: bytes=²-3".encode())
    assert status_of(unicode_digits) == 200
    assert unicode_digits.endswith(TEXT)
    assert status_of(superscript) == 200


def test_ten_thousand_ranges(files: Path) -> None:
    header = b"Range: bytes=" + b",".join([b"0-0"] * 10_000)
    with serve(drain_app(files)) as live:
        refused = raw_get(live.port, b"/file/big.bin", header)
    # 40 KB is over the default 8 KiB per header: refused before any parsing
    assert status_of(refused) == 431
    app = drain_app(files)
    app.limits(header_size=64 << 10)
    with serve(app) as live:
        started = time.perf_counter()
        response = live.get(
            "/file/hello.txt", headers={"range": "bytes=" + ",".join(["0-0"] * 10_000)}
        )
        elapsed = time.perf_counter() - started
    assert response.status_code == 200  # ignored, not multiplied
    assert response.content == TEXT
    assert elapsed < 2


def test_if_range(files: Path) -> None:
    content = (files / "big.bin").read_bytes()
    with serve_inprocess(drain_app(files)) as live:
        full = live.request("HEAD", "/file/big.bin")
        etag, modified = full.headers["etag"], full.headers["last-modified"]

        def ranged(condition: str) -> httpx.Response:
            return live.get("/file/big.bin", headers={"range": "bytes=0-3", "if-range": condition})

        assert ranged(etag).status_code == 206
        assert ranged(etag).content == content[:4]
        assert ranged(modified).status_code == 206
        stale = ranged('"stale"')
        assert stale.status_code == 200
        assert stale.content == content
        assert ranged("W/" + etag).status_code == 200
        assert ranged("Thu, 01 Jan 1970 00:00:00 GMT").status_code == 200
        assert ranged("garbage").status_code == 200


def test_head_and_non_get_ignore_range(files: Path) -> None:
    app = drain_app(files)

    @app.post("/upload-result")
    async def posted(connection: HTTPConnection) -> None:
        await connection.drain(files / "hello.txt")

    with serve_inprocess(app) as live:
        head = live.request("HEAD", "/file/big.bin", headers={"range": "bytes=0-3"})
        post = live.request("POST", "/upload-result", headers={"range": "bytes=0-3"})
    assert head.status_code == 200
    assert head.headers["content-length"] == str(BIG_SIZE)
    assert post.status_code == 200
    assert post.content == TEXT


def test_missing_unreadable_and_special_files_run_error_routes(files: Path) -> None:
    os.mkfifo(files / "pipe")
    app = drain_app(files)

    @app.error(404)
    async def not_found(connection: HTTPConnection) -> str:
        return "custom 404"

    @app.error(403)
    async def forbidden(connection: HTTPConnection) -> str:
        return "custom 403"

    @app.get("/nul")
    async def nul(connection: HTTPConnection) -> None:
        await connection.drain(str(files / "a\x00b"))

    locked = files / "locked.txt"
    locked.write_bytes(b"secret")
    locked.chmod(0)
    with serve_inprocess(app) as live:
        missing = live.get("/file/nothing.txt")
        folder = live.get("/file/folder")
        started = time.perf_counter()
        pipe = live.get("/file/pipe")  # opening a FIFO must not wait for a writer
        pipe_time = time.perf_counter() - started
        unreadable = live.get("/file/locked.txt")
        nul_path = live.get("/nul")
    assert (missing.status_code, missing.text) == (404, "custom 404")
    assert (folder.status_code, folder.text) == (404, "custom 404")
    assert (pipe.status_code, pipe.text) == (404, "custom 404")
    assert pipe_time < 2
    assert nul_path.status_code == 404
    if os.geteuid() == 0:
        # root reads through file modes, so the file is readable here
        assert (unreadable.status_code, unreadable.content) == (200, b"secret")
    else:
        assert (unreadable.status_code, unreadable.text) == (403, "custom 403")


def test_os_errors_map_to_statuses() -> None:
    assert status_for(PermissionError(13, "denied")) == 403
    assert status_for(FileNotFoundError(2, "missing")) == 404
    assert status_for(NotADirectoryError(20, "not a dir")) == 404
    assert status_for(NotRegularFile(2, "fifo")) == 404
    assert status_for(OSError(40, "loop")) == 404  # ELOOP
    assert status_for(OSError(36, "name too long")) == 404  # ENAMETOOLONG
    assert status_for(OSError(5, "EIO")) is None  # a real failure: the 500 route
    assert status_for(OSError(24, "EMFILE")) is None


def test_drain_in_an_error_route_keeps_the_status(files: Path) -> None:
    (files / "404.html").write_text("<h1>gone</h1>")
    app = simples.server()

    @app.error(404)
    async def not_found(connection: HTTPConnection) -> None:
        await connection.drain(files / "404.html")

    with serve_inprocess(app) as live:
        page = live.get("/nowhere")
        etag = page.headers["etag"]
        again = live.get("/nowhere", headers={"if-none-match": etag, "range": "bytes=0-1"})
    assert page.status_code == 404
    assert page.text == "<h1>gone</h1>"
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    # preconditions and ranges only apply to a successful answer
    assert again.status_code == 404
    assert again.text == "<h1>gone</h1>"


def test_file_objects_are_streamed_chunked_and_closed(files: Path) -> None:
    opened: list[Any] = []
    app = simples.server()

    @app.get("/real")
    async def real(connection: HTTPConnection) -> None:
        handle = await asyncio.to_thread(open, files / "big.bin", "rb")
        opened.append(handle)
        await connection.drain(handle)

    @app.get("/memory")
    async def memory(connection: HTTPConnection) -> None:
        buffer = io.BytesIO(b"in memory")
        opened.append(buffer)
        await connection.drain(buffer, "txt")

    with serve(app) as live:
        real_response = live.get("/real")
        memory_response = live.get("/memory")
        raw = raw_get(live.port, b"/memory")
    assert real_response.content == (files / "big.bin").read_bytes()
    assert "content-length" not in real_response.headers
    assert real_response.headers["transfer-encoding"] == "chunked"
    # the type comes from the file object's name when none is given
    assert real_response.headers["content-type"] == "application/octet-stream"
    assert memory_response.text == "in memory"
    assert memory_response.headers["content-type"] == "text/plain; charset=utf-8"
    assert b"transfer-encoding: chunked" in raw.lower()
    assert all(handle.closed for handle in opened)


def test_iterators_and_async_iterators(files: Path) -> None:
    app = simples.server()
    closed = threading.Event()

    def produce() -> Iterator[bytes]:
        try:
            yield b"one "
            yield b"two "
            yield b"three"
        finally:
            closed.set()

    async def produce_async() -> AsyncIterator[bytes | str]:
        yield b"async "
        await asyncio.sleep(0)
        yield "text"

    @app.get("/list")
    async def from_list(connection: HTTPConnection) -> None:
        await connection.drain([b"a", b"b", b""], "txt")

    @app.get("/generator")
    async def from_generator(connection: HTTPConnection) -> None:
        await connection.drain(produce())

    @app.get("/async")
    async def from_async(connection: HTTPConnection) -> None:
        await connection.drain(produce_async(), "text/plain")

    with serve(app) as live:
        listed = live.get("/list")
        generated = live.get("/generator")
        asynchronous = live.get("/async")
        head = live.request("HEAD", "/generator")
    assert listed.text == "ab"
    assert listed.headers["content-type"] == "text/plain; charset=utf-8"
    assert generated.content == b"one two three"
    assert generated.headers["content-type"] == "application/octet-stream"
    assert generated.headers["transfer-encoding"] == "chunked"
    assert asynchronous.text == "async text"
    assert head.status_code == 200
    assert head.content == b""
    assert closed.wait(5)


def test_an_endless_stream_stops_when_the_client_leaves() -> None:
    app = simples.server()
    stopped = threading.Event()
    waiting_stopped = threading.Event()

    async def endless() -> AsyncIterator[bytes]:
        try:
            while True:
                yield b"x" * 1024
                await asyncio.sleep(0)
        finally:
            stopped.set()

    async def quiet() -> AsyncIterator[bytes]:
        try:
            yield b"first"
            await asyncio.Event().wait()  # never produces again
            yield b"never"
        finally:
            waiting_stopped.set()

    @app.get("/endless")
    async def send_endless(connection: HTTPConnection) -> None:
        await connection.drain(endless())

    @app.get("/quiet")
    async def send_quiet(connection: HTTPConnection) -> None:
        await connection.drain(quiet())

    with serve(app) as live:
        for path, event in ((b"/endless", stopped), (b"/quiet", waiting_stopped)):
            with socket.create_connection(("127.0.0.1", live.port), timeout=5) as sock:
                sock.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: t\r\n\r\n")
                assert sock.recv(1024).startswith(b"HTTP/1.1 200")
            assert event.wait(5), path


def test_drain_rejects_what_it_cannot_send() -> None:
    app = simples.server()

    @app.get("/")
    async def wrong(connection: HTTPConnection) -> str:
        try:
            await connection.drain(b"raw bytes")
        except TypeError as error:
            return str(error)
        return "no error"

    with serve_inprocess(app) as live:
        assert "send()" in live.get("/").text


def test_granian_sends_files_itself_with_pathsend(files: Path, tmp_path: Path) -> None:
    module = tmp_path / "granian_files_app.py"
    module.write_text(
        "import os\n"
        "import simples\n"
        "app = simples.server()\n"
        "@app.get('/file')\n"
        "async def file(connection):\n"
        "    offered = 'http.response.pathsend' in (connection.scope.get('extensions') or {})\n"
        "    connection.header('x-pathsend', 'yes' if offered else 'no')\n"
        "    await connection.drain(os.environ['SIMPLES_TEST_FILE'])\n"
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    source = Path(simples.__file__).resolve().parent.parent
    env = {
        **os.environ,
        "SIMPLES_TEST_FILE": str(files / "big.bin"),
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(source)]),
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "granian",
            "--interface",
            "asgi",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-ws",
            "--log-level",
            "warning",
            "granian_files_app:app",
        ],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                assert time.monotonic() < deadline, "granian did not start"
                time.sleep(0.05)
        content = (files / "big.bin").read_bytes()
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            whole = client.get("/file")
            part = client.get("/file", headers={"range": "bytes=10-19"})
            revalidated = client.get("/file", headers={"if-none-match": whole.headers["etag"]})
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        if process.stderr is not None:
            process.stderr.close()
    assert whole.headers["x-pathsend"] == "yes"
    assert whole.status_code == 200
    assert whole.content == content
    assert whole.headers["content-length"] == str(BIG_SIZE)
    assert part.status_code == 206
    assert part.content == content[10:20]
    assert revalidated.status_code == 304


def test_the_files_example_runs() -> None:
    from examples.files.app import PUBLIC, server

    with serve_inprocess(server) as live:
        home = live.get("/")
        notes = live.get("/notes.txt", headers={"range": "bytes=0-4"})
        download = live.get("/download")
        numbers = live.get("/numbers")
        report = live.get("/report", headers={"accept-encoding": "gzip"})
        docs = live.get("/docs")
        missing = live.get("/nothing")
    assert "Files with simples" in home.text
    assert home.headers["cache-control"] == "public, max-age=60"
    assert (notes.status_code, notes.text) == (206, "   1 ")
    assert download.content == (PUBLIC / "notes.txt").read_bytes()
    assert download.headers["content-disposition"] == 'attachment; filename="notes.txt"'
    assert numbers.text == "".join(f"{number}\n" for number in range(1, 1001))
    assert report.headers["content-encoding"] == "gzip"
    assert len(report.json()["rows"]) == 200
    assert (docs.status_code, docs.headers["location"]) == (301, "/docs/")
    assert missing.status_code == 404
