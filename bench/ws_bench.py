#!/usr/bin/env python3
"""WebSocket benchmark: echo round trips and a broadcast fan-out, simples vs Starlette.

    .venv/bin/python bench/ws_bench.py [--quick] [--rounds 3] [--duration 5]
        [--connections 50] [--sockets 1000] [--broadcasts 20]
        [--apps simples,starlette] [--json results.json]

Both apps run in the same way, in the same run: one uvicorn process (uvloop,
httptools, the WebSocket protocol of ``--ws``: by default
``simples.wire:WSProto``, what simples serves with; the same ping settings), pinned to
CPU 0 when there are two CPUs, the client pinned to CPU 1. The apps are
interleaved within each round; the report gives medians over the rounds.

The client is a lean one written here (asyncio protocol, frames built by hand,
all-zero mask key) so that the client costs little next to the servers; it
never negotiates compression, so both servers send plain frames.

- echo: ``--connections`` sockets each send a 32-byte text message and wait for
  it to come back, for ``--duration`` seconds. Reported: round trips per second
  and the median and 99th percentile round-trip time.
- in-process echo: the app driven by an in-memory ASGI server in the client
  process, so only the framework's own cost per message is measured (best of
  three runs of 50,000 messages). On a busy machine the network numbers above
  swing by tens of percent between rounds; this one does not.
- fan-out: ``--sockets`` sockets join one room; one of them asks for a
  broadcast of a 64-byte message, ``--broadcasts`` times in a row. Reported:
  the median time from the request until every socket has the message, and
  messages delivered per second. simples uses ``channel.broadcast``; Starlette
  has no broadcast, so its app loops over the sockets and awaits
  ``send_text`` on each, as its documentation and FastAPI's show.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
HOST = "127.0.0.1"
ECHO_MESSAGE = b"x" * 32
FAN_MESSAGE = "y" * 64


# --------------------------------------------------------------------------- #
# The apps (imported by the server process as ws_bench:simples_app, ...).
# --------------------------------------------------------------------------- #


def build_simples() -> Any:
    import simples

    app = simples.server()
    room = app.channel("room")

    @app.ws("/echo")
    async def echo(ws: Any) -> None:
        async for message in ws:
            await ws.send(message.data)

    @app.ws("/fan")
    async def fan(ws: Any) -> None:
        room.bind(ws)
        async for message in ws:
            if message.data.startswith("go:"):
                await room.broadcast(message.data[3:])

    return app


def build_starlette() -> Any:
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket, WebSocketDisconnect

    members: set[WebSocket] = set()

    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            while True:
                await websocket.send_text(await websocket.receive_text())
        except WebSocketDisconnect:
            pass

    async def fan(websocket: WebSocket) -> None:
        await websocket.accept()
        members.add(websocket)
        try:
            while True:
                text = await websocket.receive_text()
                if text.startswith("go:"):
                    for member in list(members):
                        await member.send_text(text[3:])
        except WebSocketDisconnect:
            pass
        finally:
            members.discard(websocket)

    return Starlette(routes=[WebSocketRoute("/echo", echo), WebSocketRoute("/fan", fan)])


def __getattr__(name: str) -> Any:
    # Build only the app the server process asks for.
    if name == "simples_app":
        return build_simples()
    if name == "starlette_app":
        return build_starlette()
    raise AttributeError(name)


APPS = ("simples", "starlette")


# --------------------------------------------------------------------------- #
# A lean client.
# --------------------------------------------------------------------------- #


class Client(asyncio.Protocol):
    """One WebSocket client connection: handshake, then frames in and out."""

    def __init__(self, path: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n\r\n"
        ).encode()
        self.buffer = bytearray()
        self.open: asyncio.Future[None] = loop.create_future()
        self.waiter: asyncio.Future[bytes] | None = None
        self.received = 0
        self.on_message: Any = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        error = ConnectionError("the server closed the connection")
        if not self.open.done():
            self.open.set_exception(error)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(error)

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        if not self.open.done():
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buffer[:end])
            del buffer[: end + 4]
            if not head.startswith(b"HTTP/1.1 101"):
                self.open.set_exception(ConnectionError(head.decode("latin-1")))
                return
            self.open.set_result(None)
        while len(buffer) >= 2:
            size = buffer[1] & 0x7F
            start = 2
            if size == 126:
                if len(buffer) < 4:
                    return
                size = int.from_bytes(buffer[2:4], "big")
                start = 4
            elif size == 127:
                if len(buffer) < 10:
                    return
                size = int.from_bytes(buffer[2:10], "big")
                start = 10
            if len(buffer) < start + size:
                return
            opcode = buffer[0] & 0x0F
            payload = bytes(buffer[start : start + size])
            del buffer[: start + size]
            if opcode == 0x9:
                self.send(payload, opcode=0xA)
            elif opcode in (0x1, 0x2):
                self.received += 1
                if self.waiter is not None and not self.waiter.done():
                    self.waiter.set_result(payload)
                if self.on_message is not None:
                    self.on_message()

    def send(self, payload: bytes, opcode: int = 0x1) -> None:
        size = len(payload)
        if size < 126:
            header = bytes((0x80 | opcode, 0x80 | size))
        elif size < 1 << 16:
            header = bytes((0x80 | opcode, 0x80 | 126)) + size.to_bytes(2, "big")
        else:
            header = bytes((0x80 | opcode, 0x80 | 127)) + size.to_bytes(8, "big")
        # an all-zero mask key: masking leaves the payload as it is
        assert self.transport is not None
        self.transport.write(header + b"\x00\x00\x00\x00" + payload)

    async def round_trip(self, payload: bytes) -> bytes:
        self.waiter = asyncio.get_running_loop().create_future()
        self.send(payload)
        return await self.waiter

    def close(self) -> None:
        if self.transport is not None:
            with contextlib.suppress(Exception):
                self.send(b"\x03\xe8", opcode=0x8)
            self.transport.close()


async def open_client(port: int, path: str) -> Client:
    loop = asyncio.get_running_loop()
    _, client = await loop.create_connection(lambda: Client(path, port), HOST, port)
    await asyncio.wait_for(client.open, 20)
    return client


async def open_many(port: int, path: str, count: int) -> list[Client]:
    gate = asyncio.Semaphore(100)

    async def one() -> Client:
        async with gate:
            return await open_client(port, path)

    return list(await asyncio.gather(*(one() for _ in range(count))))


# --------------------------------------------------------------------------- #
# Measurements.
# --------------------------------------------------------------------------- #


async def measure_echo(port: int, connections: int, duration: float) -> dict[str, float]:
    clients = await open_many(port, "/echo", connections)
    try:
        for client in clients:  # check the answer once
            if await client.round_trip(ECHO_MESSAGE) != ECHO_MESSAGE:
                raise RuntimeError("echo answered something else")
        samples: list[float] = []
        stop = time.perf_counter() + duration
        counts = [0] * connections

        async def loop(index: int, client: Client) -> None:
            clock = time.perf_counter
            while clock() < stop:
                started = clock()
                await client.round_trip(ECHO_MESSAGE)
                if index % 5 == 0:
                    samples.append(clock() - started)
                counts[index] += 1

        started = time.perf_counter()
        await asyncio.gather(*(loop(index, client) for index, client in enumerate(clients)))
        elapsed = time.perf_counter() - started
    finally:
        for client in clients:
            client.close()
    samples.sort()
    return {
        "round_trips_per_s": sum(counts) / elapsed,
        "p50_ms": samples[len(samples) // 2] * 1000,
        "p99_ms": samples[int(len(samples) * 0.99)] * 1000,
    }


async def measure_overhead(app: Any, messages: int) -> float:
    """The framework alone: the app driven in this process by an in-memory ASGI
    server (no sockets, no framing), echoing ``messages`` text messages.
    Returns messages per second."""
    scope = {
        "type": "websocket", "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1", "scheme": "ws", "server": (HOST, 80), "client": (HOST, 5000),
        "root_path": "", "path": "/echo", "raw_path": b"/echo", "query_string": b"",
        "headers": [(b"host", b"bench")], "subprotocols": [],
        "extensions": {"websocket.http.response": {}},
    }  # fmt: skip
    incoming = {"type": "websocket.receive", "text": ECHO_MESSAGE.decode()}
    received = 0
    sent = 0

    async def receive() -> dict[str, Any]:
        nonlocal received
        received += 1
        if received == 1:
            return {"type": "websocket.connect"}
        if received > messages + 1:
            return {"type": "websocket.disconnect", "code": 1000}
        return incoming

    async def send(message: Any) -> None:
        nonlocal sent
        sent += 1

    started = time.perf_counter()
    await app(scope, receive, send)
    elapsed = time.perf_counter() - started
    if sent < messages:
        raise RuntimeError(f"the app echoed {sent} of {messages} messages")
    return messages / elapsed


class Countdown:
    """Resolves ``done`` when ``count`` sockets have had their message."""

    def __init__(self, count: int, done: asyncio.Future[None]) -> None:
        self.remaining = count
        self.done = done

    def arrived(self) -> None:
        self.remaining -= 1
        if self.remaining == 0 and not self.done.done():
            self.done.set_result(None)


async def measure_fan_out(port: int, sockets: int, broadcasts: int) -> dict[str, float]:
    clients = await open_many(port, "/fan", sockets)
    try:
        await asyncio.sleep(0.2)  # every handler has joined the room
        loop = asyncio.get_running_loop()
        times: list[float] = []
        for _ in range(broadcasts):
            countdown = Countdown(sockets, loop.create_future())
            for client in clients:
                client.on_message = countdown.arrived
            started = time.perf_counter()
            clients[0].send(f"go:{FAN_MESSAGE}".encode())
            await asyncio.wait_for(countdown.done, 30)
            times.append(time.perf_counter() - started)
        for client in clients:
            if client.received != broadcasts:
                raise RuntimeError(f"a socket got {client.received} of {broadcasts} broadcasts")
    finally:
        for client in clients:
            client.close()
    median = statistics.median(times)
    return {"fan_out_ms": median * 1000, "messages_per_s": sockets / median}


# --------------------------------------------------------------------------- #
# Servers and the run.
# --------------------------------------------------------------------------- #


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def start_server(app: str, port: int, cpu: int | None, ws: str) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "uvicorn", f"ws_bench:{app}_app", "--app-dir", str(BENCH),
        "--host", HOST, "--port", str(port), "--loop", "uvloop", "--http", "httptools",
        "--ws", ws, "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    if cpu is not None and shutil.which("taskset"):
        command = ["taskset", "-c", str(cpu), *command]
    env = {**os.environ, "PYTHONPATH": str(BENCH.parent / "src")}
    process = subprocess.Popen(command, env=env, start_new_session=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.5):
            return process
        if process.poll() is not None:
            raise RuntimeError(f"{app} exited at start")
        time.sleep(0.05)
    stop_server(process)
    raise RuntimeError(f"{app} did not start within 20 s")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 round, 2 s, 10 broadcasts")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--broadcasts", type=int, default=20)
    parser.add_argument("--apps", default=",".join(APPS))
    parser.add_argument("--ws", default="simples.wire:WSProto",
                        help="uvicorn's --ws for both apps")  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.duration, args.broadcasts = 1, 2.0, 10
    apps = [name for name in args.apps.split(",") if name]
    unknown = set(apps) - set(APPS)
    if unknown:
        parser.error(f"unknown apps: {sorted(unknown)}; known: {APPS}")

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 4 * args.sockets + 256
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, wanted), hard))
    two_cpus = (os.cpu_count() or 1) >= 2
    server_cpu = 0 if two_cpus else None
    if two_cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {1})

    results: dict[str, list[dict[str, float]]] = {name: [] for name in apps}
    for round_index in range(args.rounds):
        for name in apps:
            port = free_port()
            server = start_server(name, port, server_cpu, args.ws)
            try:
                echo = asyncio.run(measure_echo(port, args.connections, args.duration))
                fan = asyncio.run(measure_fan_out(port, args.sockets, args.broadcasts))
            finally:
                stop_server(server)
            # the framework's own cost per message, measured in this process
            app = build_simples() if name == "simples" else build_starlette()
            overhead = max(asyncio.run(measure_overhead(app, 50_000)) for _ in range(3))
            results[name].append({**echo, **fan, "in_process_msgs_per_s": overhead})
            print(f"round {round_index + 1} {name}: {json.dumps(results[name][-1])}", flush=True)

    keys = ("round_trips_per_s", "p50_ms", "p99_ms", "fan_out_ms", "messages_per_s",
            "in_process_msgs_per_s")
    medians = {
        name: {key: statistics.median(run[key] for run in runs) for key in keys}
        for name, runs in results.items()
    }
    print()
    print(f"WebSocket, uvicorn (uvloop, --ws {args.ws}), {args.rounds} round(s), "
          f"echo: {args.connections} connections x {args.duration:g} s, "
          f"fan-out: {args.sockets} sockets x {args.broadcasts} broadcasts")
    print()
    print("| app | echo round trips/s | echo p50 ms | echo p99 ms | fan-out ms | fan-out msg/s "
          "| in-process echo msg/s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, row in medians.items():
        print(f"| {name} | {row['round_trips_per_s']:,.0f} | {row['p50_ms']:.2f} | "
              f"{row['p99_ms']:.2f} | {row['fan_out_ms']:.2f} | {row['messages_per_s']:,.0f} "
              f"| {row['in_process_msgs_per_s']:,.0f} |")
    if args.json:
        args.json.write_text(json.dumps({"rounds": results, "medians": medians}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
