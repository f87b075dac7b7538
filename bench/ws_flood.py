#!/usr/bin/env python3
"""How each uvicorn WebSocket implementation copes with a fragment flood
(simples' own, ``simples.wire:WSProto``, and uvicorn's three).

    .venv/bin/python bench/ws_flood.py [--fragments 100000] [--impls websockets,...]

For each implementation (uvicorn's ``--ws``; ``granian``: ``simples run
--engine granian``), a uvicorn process serves a simples
echo app. One client sends one text message as ``--fragments`` frames of one
byte each (a first frame and continuations, all sent at once) while another
requests ``GET /ping`` every 2 ms on a kept-alive connection: the slowest of
those answers is how long the event loop was held. Also reported: the time until
the whole message came back, and echo round trips per second (one socket, 32
bytes, 2 s).
"""

from __future__ import annotations

import argparse
import base64
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# simples.wire:WSProto is what listen(), start() and `simples run` serve with
IMPLS = ("simples.wire:WSProto", "wsproto", "websockets-sansio", "websockets", "granian")
APP = """
import simples
app = simples.server()

@app.get("/ping")
async def ping(connection):
    return "pong"

@app.ws("/echo")
async def echo(ws):
    async for message in ws:
        await ws.send(message.data)
"""


def frame(opcode: int, payload: bytes, fin: bool) -> bytes:
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 1 << 16:
        head += bytes([0x80 | 126]) + struct.pack(">H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack(">Q", n)
    return head + b"\0\0\0\0" + payload  # all-zero mask key: payload unchanged


def handshake(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        f"Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(4096)
    assert data.startswith(b"HTTP/1.1 101"), data[:100]
    return sock


def _recv(sock: socket.socket) -> bytes:
    data = sock.recv(1 << 20)
    if not data:
        raise ConnectionError("the server closed the connection")
    return data


def read_message(sock: socket.socket, size: int) -> None:
    """Read frames until ``size`` payload bytes came back (a Close frame fails)."""
    got = 0
    buffer = b""
    while got < size:
        while len(buffer) < 2:
            buffer += _recv(sock)
        n = buffer[1] & 0x7F
        offset = 2
        if n == 126:
            while len(buffer) < 4:
                buffer += _recv(sock)
            n, offset = struct.unpack(">H", buffer[2:4])[0], 4
        elif n == 127:
            while len(buffer) < 10:
                buffer += _recv(sock)
            n, offset = struct.unpack(">Q", buffer[2:10])[0], 10
        while len(buffer) < offset + n:
            buffer += _recv(sock)
        if buffer[0] & 0x0F == 0x8:
            code = struct.unpack(">H", buffer[offset : offset + 2])[0] if n >= 2 else None
            reason = buffer[offset + 2 : offset + n]
            raise ConnectionError(f"closed by the server: {code} {reason!r}")
        got += n
        buffer = buffer[offset + n :]


def ping_loop(port: int, stop: threading.Event, latencies: list[float]) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while not stop.is_set():
            started = time.perf_counter()
            sock.sendall(b"GET /ping HTTP/1.1\r\nHost: t\r\n\r\n")
            data = b""
            while not data.endswith(b"pong"):
                data += sock.recv(4096)
            latencies.append(time.perf_counter() - started)
            time.sleep(0.002)


def flood(port: int, fragments: int) -> tuple[float, float, float, str]:
    """(slowest ping during the flood, median ping, seconds until the echo or
    the close, how it ended)."""
    sock = handshake(port)
    frames = [frame(0x1, b"a", False)]
    frames += [frame(0x0, b"a", False)] * (fragments - 2)
    frames.append(frame(0x0, b"a", True))
    data = b"".join(frames)
    latencies: list[float] = []
    stop = threading.Event()
    pinger = threading.Thread(target=ping_loop, args=(port, stop, latencies))
    pinger.start()
    time.sleep(0.2)
    before = len(latencies)
    started = time.perf_counter()
    outcome = "echoed"
    try:
        sock.sendall(data)
        read_message(sock, fragments)
    except (ConnectionError, TimeoutError) as exc:
        outcome = str(exc)
    elapsed = time.perf_counter() - started
    time.sleep(0.05)
    stop.set()
    pinger.join()
    sock.close()
    during = sorted(latencies[before:])
    return during[-1], during[len(during) // 2], elapsed, outcome


def echo_rate(port: int, seconds: float = 2.0) -> float:
    sock = handshake(port)
    message = frame(0x1, b"x" * 32, True)
    count = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        sock.sendall(message)
        read_message(sock, 32)
        count += 1
    sock.close()
    return count / seconds


def serve(impl: str, port: int) -> subprocess.Popen[bytes]:
    app_dir = Path("/tmp") / f"ws_flood_{os.getpid()}"
    app_dir.mkdir(exist_ok=True)
    (app_dir / "ws_flood_app.py").write_text(APP)
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{app_dir}"}
    if impl == "granian":  # its WebSocket frames are parsed in Rust
        command = [sys.executable, "-m", "simples.cli", "run", "ws_flood_app:app",
                   "--port", str(port), "--engine", "granian"]  # fmt: skip
    else:
        command = [
            sys.executable, "-m", "uvicorn", "ws_flood_app:app", "--port", str(port),
            "--host", "127.0.0.1", "--ws", impl, "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip
    process = subprocess.Popen(command, env=env)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"uvicorn --ws {impl} did not start")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fragments", type=int, default=100_000)
    parser.add_argument("--impls", default=",".join(IMPLS))
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"{args.fragments} one-byte fragments of one message; best of {args.runs} runs")
    columns = f"{'slowest ping':>14}{'median ping':>13}{'end after':>12}{'echo/s':>10}"
    print(f"{'--ws':<20}{columns}  end")
    for impl in args.impls.split(","):
        port = free_port()
        process = serve(impl, port)
        try:
            runs = [flood(port, args.fragments) for _ in range(args.runs)]
            worst, median, elapsed, outcome = min(runs)
            rate = echo_rate(port)
        finally:
            process.terminate()
            process.wait(10)
        print(
            f"{impl:<20}{worst * 1000:>11.1f} ms{median * 1000:>10.1f} ms"
            f"{elapsed * 1000:>9.0f} ms{rate:>10.0f}  {outcome}"
        )


if __name__ == "__main__":
    main()
