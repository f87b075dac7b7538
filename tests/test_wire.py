"""The wire, hardened (issue #16): request smuggling, repeated single fields,
trickled bodies, slow heads, closing after a 408/413.

Every test runs on the three engines simples serves with: uvicorn with
httptools, uvicorn with h11 (the parser of a plain install) and granian, each
in a subprocess running ``tests.apps.wire_app`` with short deadlines
(header_timeout 2 s, body_timeout 2 s, body_min_rate 100 B/s after 2 s).
Raw sockets only, and while each test runs another connection keeps asking
``GET /ping``: every answer must come quickly (the event loop never stalls).
A smuggled request would reach ``/smuggled``; the app records every path it
served, and no test may ever see that one.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import status_of

ROOT = Path(__file__).resolve().parent.parent
ENGINES = ["httptools", "h11", "granian"]
HEADER_TIMEOUT = 2.0  # tests/apps/wire_app.py
SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n"
PING = b"GET /ping HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _answer(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


@dataclass
class Engine:
    name: str
    port: int
    process: subprocess.Popen[str]

    def reached(self) -> list[str]:
        answer = _answer(self.port, PING.replace(b"/ping", b"/reached"))
        body = answer.partition(b"\r\n\r\n")[2].decode()
        paths: list[str] = json.loads(body)
        return paths


@contextmanager
def run_engine(name: str, *argv: str) -> Iterator[Engine]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    args = argv or ("-m", "tests.apps.wire_app", str(port), name)
    args = tuple(a.replace("{port}", str(port)) for a in args)
    child = subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own group: granian's worker goes with it
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if child.poll() is not None:
                raise RuntimeError(f"{name} exited: {child.communicate()[0]}")
            try:
                answer = _answer(port, PING)
                if answer.startswith(b"HTTP/1.1 200"):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not come up")
            time.sleep(0.1)
        yield Engine(name, port, child)
    finally:
        child.send_signal(signal.SIGINT)
        try:
            child.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.communicate(timeout=10)


@pytest.fixture(scope="module", params=ENGINES)
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    with run_engine(request.param) as running:
        yield running
        # whatever the tests sent, nothing was ever smuggled through
        assert "/smuggled" not in running.reached()


@pytest.fixture(autouse=True)
def responsive(request: pytest.FixtureRequest) -> Iterator[None]:
    """A concurrent client: GET /ping on a fresh connection every 50 ms, each
    answered within a second, for the whole test."""
    if "engine" not in request.fixturenames:
        yield
        return
    running: Engine = request.getfixturevalue("engine")
    stop = threading.Event()
    latencies: list[float] = []
    failures: list[str] = []

    def ping() -> None:
        while not stop.is_set():
            started = time.monotonic()
            try:
                answer = _answer(running.port, PING, 3)
                if not answer.endswith(b"pong"):
                    failures.append(repr(answer[:80]))
            except OSError as exc:
                failures.append(repr(exc))
            latencies.append(time.monotonic() - started)
            stop.wait(0.05)

    thread = threading.Thread(target=ping, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(5)
    assert not failures
    assert latencies
    assert max(latencies) < 1.0, f"the server stalled: {max(latencies):.2f} s"


class Wire:
    """One raw connection: send bytes, read what comes, see whether it closed."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.received = b""
        self.closed = False

    def __enter__(self) -> Wire:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def send(self, data: bytes) -> bool:
        """Send; False once the server has closed (reset or broken pipe)."""
        try:
            self.sock.sendall(data)
        except OSError:
            self.closed = True
            return False
        return True

    def read(self, seconds: float, until: bytes | None = None) -> bytes:
        """Read for up to ``seconds``, until EOF, or until ``until`` is seen."""
        deadline = time.monotonic() + seconds
        while not self.closed and time.monotonic() < deadline:
            if until is not None and until in self.received:
                break
            self.sock.settimeout(max(0.01, min(0.2, deadline - time.monotonic())))
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                self.closed = True
                break
            if not chunk:
                self.closed = True
                break
            self.received += chunk
        return self.received


def smuggle(te_line: bytes) -> bytes:
    """A POST framed both by Content-Length (body + smuggled request) and by
    Transfer-Encoding (an empty chunked body, the smuggled request after it)."""
    body = b"0\r\n\r\n" + SMUGGLED
    return (
        b"POST /a HTTP/1.1\r\nHost: h\r\n"
        + te_line
        + b"Content-Length: %d\r\n\r\n" % len(body)
        + body
    )


# name -> (request, statuses by engine); every one must close the connection
# and none may let /smuggled through
AMBIGUOUS = {
    "te_and_cl": smuggle(b"Transfer-Encoding: chunked\r\n"),
    "te_upper_case": smuggle(b"Transfer-Encoding: CHUNKED\r\n"),
    "te_trailing_space": smuggle(b"Transfer-Encoding: chunked \r\n"),
    "te_trailing_tab": smuggle(b"Transfer-Encoding: chunked\t\r\n"),
    "te_obs_fold": smuggle(b"Transfer-Encoding:\r\n chunked\r\n"),
    "te_bare_lf": smuggle(b"Transfer-Encoding: chunked\n"),
    "te_chunked_not_last": b"POST /a HTTP/1.1\r\nHost: h\r\n"
    b"Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n" + SMUGGLED,
    "te_chunked_twice": b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED,
    "te_in_http_1_0": b"POST /a HTTP/1.0\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"0\r\n\r\n" + SMUGGLED,
    "cl_differing": b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n"
    b"Content-Length: %d\r\n\r\n" % len(SMUGGLED) + SMUGGLED,
    "cl_not_a_number": b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: +3\r\n\r\nabc" + SMUGGLED,
}

# Where an engine answers other than 400. granian (hyper) drops Content-Length
# when Transfer-Encoding is there, reads the chunks and closes the connection
# after the response (RFC 9112 §6.3 allows exactly that); simples never sees the
# Content-Length. An HTTP/1.0 request is closed after its response anyway.
NOT_400 = {
    ("granian", "te_and_cl"): 200,
    ("granian", "te_upper_case"): 200,
    ("granian", "te_trailing_space"): 200,
    ("granian", "te_trailing_tab"): 200,
    ("granian", "te_bare_lf"): 200,
}


@pytest.mark.parametrize("case", list(AMBIGUOUS))
def test_ambiguous_framing_is_refused_and_the_connection_closed(engine: Engine, case: str) -> None:
    with Wire(engine.port) as wire:
        wire.send(AMBIGUOUS[case])
        answer = wire.read(5)
        assert wire.closed, answer
    assert status_of(answer) == NOT_400.get((engine.name, case), 400), answer
    assert answer.count(b"HTTP/1.") == 1, answer  # one response: nothing after it was read
    assert b"/smuggled" not in answer
    if status_of(answer) == 400:
        assert b"connection: close" in answer.lower()
    assert "/smuggled" not in engine.reached()


def test_gzip_then_chunked_is_sound(engine: Engine) -> None:
    # chunked is the last coding: the framing is clear (h11 supports no other
    # coding and refuses it itself)
    request = (
        b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n"
        b"Connection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    )
    with Wire(engine.port) as wire:
        wire.send(request)
        answer = wire.read(5)
    if engine.name == "h11":
        assert status_of(answer) == 400
    else:
        assert status_of(answer) == 200
        assert answer.endswith(b"/a 3")


def test_repeated_content_length(engine: Engine) -> None:
    # The same value twice is no ambiguity (RFC 9110 §8.6 lets a recipient keep
    # one): h11 and granian fold them before simples sees the head, httptools
    # refuses them. Either way the body is 3 bytes and the next request on the
    # connection is answered as itself.
    for value in (b"Content-Length: 3\r\nContent-Length: 3\r\n", b"Content-Length: 3, 3\r\n"):
        with Wire(engine.port) as wire:
            wire.send(b"POST /a HTTP/1.1\r\nHost: h\r\n" + value + b"\r\nabc")
            answer = wire.read(5, until=b"/a 3")
            if status_of(answer) == 200:
                assert engine.name in ("h11", "granian")
                assert answer.endswith(b"/a 3")
                wire.send(b"GET /ping HTTP/1.1\r\nHost: h\r\n\r\n")
                assert wire.read(5, until=b"pong").endswith(b"pong")
            else:
                assert status_of(answer) == 400
                wire.read(5)
                assert wire.closed


@pytest.mark.parametrize(
    "field",
    [
        b"host",
        b"content-type",
        b"range",
        b"if-range",
        b"if-modified-since",
        b"if-unmodified-since",
        b"origin",
    ],
)
def test_a_single_field_sent_twice_is_refused(engine: Engine, field: bytes) -> None:
    value = b"h" if field == b"host" else b"bytes=0-1" if field == b"range" else b"x"
    path = b"/single/" + field
    base = b"GET " + path + b" HTTP/1.1\r\n"
    if field != b"host":
        base += b"Host: h\r\n"
    once = base + field + b": " + value + b"\r\nConnection: close\r\n\r\n"
    assert status_of(_answer(engine.port, once)) == 200
    twice = base + field + b": " + value + b"\r\n" + field + b": " + value + b"2\r\n\r\n"
    with Wire(engine.port) as wire:
        wire.send(twice)
        answer = wire.read(5)
        assert wire.closed
    assert status_of(answer) == 400
    assert engine.reached().count(path.decode()) == 1  # only the sound request


def _trickle(engine: Engine, head: bytes, piece: bytes, every: float, seconds: float) -> Wire:
    """Send ``head``, then ``piece`` every ``every`` s until the server answers
    and closes, or ``seconds`` pass."""
    wire = Wire(engine.port)
    wire.send(head)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not wire.closed:
        if b"\r\n\r\n" not in wire.received and not wire.send(piece):
            break
        wire.read(every)
    return wire


def test_a_trickled_body_is_cut_by_the_minimum_rate(engine: Engine) -> None:
    # a byte every 0.5 s never leaves the body idle for body_timeout (2 s), but
    # averages 2 B/s, under body_min_rate (100 B/s) once the 2 s grace is over
    started = time.monotonic()
    head = b"POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 100000\r\n\r\n"
    with _trickle(engine, head, b"x", 0.5, 10) as wire:
        elapsed = time.monotonic() - started
        answer = wire.received
        assert wire.closed
    assert status_of(answer) == 408
    assert b"connection: close" in answer.lower()
    assert 1.8 < elapsed < 4.5, elapsed
    assert answer.count(b"HTTP/1.") == 1


def test_a_body_within_the_rate_is_not_cut(engine: Engine) -> None:
    head = b"POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 1800\r\nConnection: close\r\n\r\n"
    with Wire(engine.port) as wire:
        wire.send(head)
        for _ in range(6):  # 300 B every 0.5 s: 600 B/s over 3 s, past the grace
            time.sleep(0.5)
            wire.send(b"y" * 300)
        answer = wire.read(5)
    assert status_of(answer) == 200
    assert answer.endswith(b"/upload 1800")


def test_a_body_over_the_total_deadline_is_cut(engine: Engine) -> None:
    # /total: body_deadline 2 s and no rate; 200 B every 0.5 s is never idle
    started = time.monotonic()
    head = b"POST /total/upload HTTP/1.1\r\nHost: h\r\nContent-Length: 100000\r\n\r\n"
    with _trickle(engine, head, b"z" * 200, 0.5, 10) as wire:
        elapsed = time.monotonic() - started
        answer = wire.received
        assert wire.closed
    assert status_of(answer) == 408
    assert 1.8 < elapsed < 4.5, elapsed


def test_a_413_with_an_unread_body_closes_the_connection(engine: Engine) -> None:
    # over the limit by its Content-Length: refused before a byte is read; the
    # client never sends the rest, and the connection must not wait for it
    # (granian closes at once, uvicorn after header_timeout)
    with Wire(engine.port) as wire:
        wire.send(b"POST /small HTTP/1.1\r\nHost: h\r\nContent-Length: 2000000\r\n\r\nabc")
        started = time.monotonic()
        answer = wire.read(HEADER_TIMEOUT + 3)
        assert wire.closed
        assert time.monotonic() - started < HEADER_TIMEOUT + 1.5
    assert status_of(answer) == 413


def test_bodies_read_to_their_content_length_keep_the_connection(engine: Engine) -> None:
    # The reader stops at the declared length without asking for the server's
    # end-of-body message (granian sends it separately): the next request on
    # the connection must still be read and answered, whole or in pieces.
    with Wire(engine.port) as wire:
        for path, pieces in (
            (b"/upload", [b"hello"]),
            (b"/stream", [b"abc", b"defg"]),
            (b"/upload", [b"x" * 70000]),
        ):
            size = sum(len(piece) for piece in pieces)
            wire.send(b"POST %s HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n" % (path, size))
            for piece in pieces:
                time.sleep(0.05)
                wire.send(piece)
            expected = b"%s %d" % (path, size)
            assert wire.read(5, until=expected).endswith(expected)
            wire.received = b""
        wire.send(b"GET /ping HTTP/1.1\r\nHost: h\r\n\r\n")
        assert wire.read(5, until=b"pong").endswith(b"pong")
        assert not wire.closed


def test_slow_heads_are_cut(engine: Engine) -> None:
    # five clients each sending a byte of their head every 0.3 s
    started = time.monotonic()
    wires = [Wire(engine.port) for _ in range(5)]
    try:
        head = b"GET /ping HTTP/1.1\r\nHost: h\r\nX-Slow: " + b"a" * 100
        for index in range(len(head)):
            for wire in wires:
                if not wire.closed:
                    wire.send(head[index : index + 1])
                    wire.read(0.01)
            if all(wire.closed for wire in wires) or time.monotonic() - started > 10:
                break
            time.sleep(0.3)
        elapsed = time.monotonic() - started
    finally:
        for wire in wires:
            wire.sock.close()
    assert all(wire.closed for wire in wires)
    assert HEADER_TIMEOUT - 0.2 < elapsed < HEADER_TIMEOUT + 2.5, elapsed
    assert all(b"200" not in wire.received for wire in wires)


def test_a_slow_next_head_on_a_kept_alive_connection_is_cut(engine: Engine) -> None:
    with Wire(engine.port) as wire:
        wire.send(b"GET /ping HTTP/1.1\r\nHost: h\r\n\r\n")
        assert wire.read(5, until=b"pong").endswith(b"pong")
        started = time.monotonic()
        for byte in b"GET /ping HTTP/1.1\r\nHost: h\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa":
            if not wire.send(bytes([byte])):
                break
            wire.read(0.3)
            if wire.closed:
                break
        assert wire.closed
        elapsed = time.monotonic() - started
    assert elapsed < HEADER_TIMEOUT + 2.5, elapsed


def test_quick_heads_on_a_long_kept_alive_connection_are_not_cut(engine: Engine) -> None:
    # the head deadline counts per head, not per connection
    with Wire(engine.port) as wire:
        for _ in range(4):  # 4 requests 1 s apart: 4 s > header_timeout
            wire.send(b"GET /ping HTTP/1.1\r\nHost: h\r\n\r\n")
            assert wire.read(5, until=b"pong").endswith(b"pong")
            wire.received = b""
            time.sleep(1.0)
        assert not wire.closed


def test_the_cli_runs_uvicorn_with_h11_and_its_guards() -> None:
    argv = ("-m", "simples.cli", "run", "tests.apps.wire_app:server", "--port", "{port}")
    with run_engine("cli-h11", *argv, "--http", "h11") as running:
        answer = _answer(running.port, AMBIGUOUS["te_and_cl"])
        assert status_of(answer) == 400
        assert "/smuggled" not in running.reached()
        with Wire(running.port) as wire:  # the app's header_timeout (2 s) applies
            wire.send(b"GET /ping HTTP/1.1\r\n")
            wire.read(HEADER_TIMEOUT + 3)
            assert wire.closed
            assert wire.received == b""
