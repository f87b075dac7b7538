#!/usr/bin/env python3
"""Peak memory of a simples server process while it receives a 50 MiB upload.

    .venv/bin/python bench/upload_memory.py [--size-mib 50] [--budget-mb 30]

A child process serves a small simples app on uvicorn (uvloop + httptools, as
in bench/run.py). The script warms it up (one small upload and one small
stream, so imports and worker threads are counted as idle), reads its idle
resident set (``VmRSS`` in ``/proc/<pid>/status``), resets its high-water mark
(``echo 5 > /proc/<pid>/clear_refs``), sends the upload over a raw socket in
64 KiB pieces, and reads the high-water mark (``VmHWM``) back. A thread also
samples ``VmRSS`` every few milliseconds: the kernel updates ``VmHWM``
lazily, so the peak reported is the higher of the two (the sample alone
where ``clear_refs`` is not writable).

Two routes are measured:

- ``form``: ``await connection.body().form()`` on a multipart body holding one
  file part of the given size (spooled to a temporary file past 1 MiB), then
  ``await upload.save(path)``;
- ``stream``: ``async for chunk in connection.body(limit=0)`` over the same
  number of bytes, hashing each chunk.

The exit status is 0 when both peaks stay under ``--budget-mb`` above idle
(MB = 10^6 bytes), 1 otherwise. Linux only (``/proc``).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
PROJECT = BENCH.parent
HOST = "127.0.0.1"
BOUNDARY = b"----simplesMemoryBench"
PIECE = 64 << 10


# --------------------------------------------------------------------------- #
# The server side (run in the child: ``upload_memory.py --serve PORT DIR``).
# --------------------------------------------------------------------------- #


def serve(port: int, save_dir: str) -> None:
    import uvicorn

    import simples
    from simples import HTTPConnection

    app = simples.server()
    app.limits(part_size=1 << 30, upload_size=1 << 30)

    async def ping(connection: HTTPConnection) -> str:
        return "pong"

    async def form(connection: HTTPConnection) -> dict[str, Any]:
        parsed = await connection.body().form()
        upload = parsed.files["file"]
        target = os.path.join(save_dir, "saved.bin")
        await upload.save(target)
        saved = os.path.getsize(target)  # noqa: ASYNC240 - a stat, once
        os.remove(target)
        return {"size": upload.size, "saved": saved, "spooled": not upload.in_memory}

    async def stream(connection: HTTPConnection) -> dict[str, Any]:
        digest = hashlib.sha256()
        size = 0
        async for chunk in connection.body(limit=0):
            digest.update(chunk)
            size += len(chunk)
        return {"size": size, "sha256": digest.hexdigest()}

    app.get("/ping", ping)
    app.post("/form", form)
    app.post("/stream", stream)
    uvicorn.run(
        app, host=HOST, port=port, loop="uvloop", http="httptools",
        access_log=False, log_level="warning",
    )  # fmt: skip


# --------------------------------------------------------------------------- #
# The measuring side.
# --------------------------------------------------------------------------- #


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


def reset_peak(pid: int) -> bool:
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


class Sampler:
    """The highest VmRSS seen by polling while the block runs."""

    def __init__(self, pid: int, every: float = 0.002) -> None:
        self.pid, self.every = pid, every
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(OSError, RuntimeError):
                self.peak = max(self.peak, status_kib(self.pid, "VmRSS"))
            time.sleep(self.every)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


def multipart_pieces(size: int) -> tuple[int, Iterator[bytes]]:
    """(total length, pieces) of a multipart body with one file of ``size`` bytes."""
    head = (
        b"--" + BOUNDARY + b"\r\n"
        b'Content-Disposition: form-data; name="file"; filename="big.bin"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n"
    )
    tail = b"\r\n--" + BOUNDARY + b"--\r\n"

    def pieces() -> Iterator[bytes]:
        yield head
        yield from raw_pieces(size)
        yield tail

    return len(head) + size + len(tail), pieces()


def raw_pieces(size: int) -> Iterator[bytes]:
    block = (bytes(range(256)) * (PIECE // 256))[:PIECE]
    sent = 0
    while sent < size:
        piece = block[: min(PIECE, size - sent)]
        sent += len(piece)
        yield piece


def request(port: int, path: str, length: int, pieces: Iterator[bytes],
            content_type: str | None = None, timeout: float = 120.0) -> dict[str, Any]:  # fmt: skip
    lines = [f"POST {path} HTTP/1.1", f"Host: {HOST}", f"Content-Length: {length}",
             "Connection: close"]  # fmt: skip
    if content_type:
        lines.append(f"Content-Type: {content_type}")
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        for piece in pieces:
            sock.sendall(piece)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    if status != 200:
        raise RuntimeError(f"{path}: status {status}: {body[:200]!r}")
    result: dict[str, Any] = json.loads(body)
    return result


def upload_form(port: int, size: int) -> dict[str, Any]:
    length, pieces = multipart_pieces(size)
    content_type = "multipart/form-data; boundary=" + BOUNDARY.decode()
    return request(port, "/form", length, pieces, content_type)


def upload_stream(port: int, size: int) -> dict[str, Any]:
    return request(port, "/stream", size, raw_pieces(size))


def wait_ready(proc: subprocess.Popen[bytes], port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with code {proc.returncode}")
        try:
            with socket.create_connection((HOST, port), timeout=1) as sock:
                sock.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if sock.recv(100).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"the server did not answer within {timeout:.0f} s")


@contextlib.contextmanager
def server_process() -> Iterator[tuple[int, int]]:
    """(pid, port) of a fresh server child, always killed afterwards."""
    port = free_port()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(PROJECT / "src"), *filter(None, [env.get("PYTHONPATH")])]
    )
    with tempfile.TemporaryDirectory(prefix="simples-memory-") as save_dir:
        proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--serve", str(port), save_dir],
            env=env, cwd=PROJECT, start_new_session=True,
        )  # fmt: skip
        try:
            wait_ready(proc, port)
            yield proc.pid, port
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


def measure(size: int, warmup: bool = True) -> dict[str, dict[str, float]]:
    """Peak RSS above idle, in MB, for each route; plus the raw figures."""
    figures: dict[str, dict[str, float]] = {}
    with server_process() as (pid, port):
        cold = status_kib(pid, "VmRSS")
        # Warm-up: imports (multipart), the worker threads of to_thread, buffers.
        if warmup:
            upload_form(port, 3 << 20)
            upload_stream(port, 3 << 20)
        for name, send in (("form", upload_form), ("stream", upload_stream)):
            idle = status_kib(pid, "VmRSS")
            hwm_ok = reset_peak(pid)
            started = time.monotonic()
            with Sampler(pid) as sampler:
                result = send(port, size)
            elapsed = time.monotonic() - started
            if result["size"] != size:
                raise RuntimeError(f"{name}: the server saw {result['size']} bytes, not {size}")
            # The kernel updates VmHWM lazily; a sample may see a higher value.
            peak = max(status_kib(pid, "VmHWM"), sampler.peak) if hwm_ok else sampler.peak
            figures[name] = {
                "cold_kib": cold,
                "idle_kib": idle,
                "peak_kib": peak,
                "sampled_peak_kib": sampler.peak,
                "above_idle_mb": (peak - idle) * 1024 / 1e6,
                "seconds": elapsed,
                "hwm": float(hwm_ok),
            }
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=50, help="upload size (default 50 MiB)")
    parser.add_argument("--budget-mb", type=float, default=30.0,
                        help="allowed peak above idle, MB (default 30)")  # fmt: skip
    parser.add_argument("--no-warmup", action="store_true",
                        help="measure from a cold server (imports and threads count)")  # fmt: skip
    parser.add_argument("--serve", nargs=2, metavar=("PORT", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(int(args.serve[0]), args.serve[1])
        return 0
    size = args.size_mib << 20
    figures = measure(size, warmup=not args.no_warmup)
    worst = 0.0
    print(f"# Upload memory: {args.size_mib} MiB, simples on uvicorn (uvloop + httptools)\n")
    print("| route | idle RSS | peak RSS (sampled) | peak above idle | time |")
    print("|---|---:|---:|---:|---:|")
    for name, f in figures.items():
        worst = max(worst, f["above_idle_mb"])
        print(
            f"| {name} | {f['idle_kib'] / 1024:.1f} MiB | {f['peak_kib'] / 1024:.1f} MiB "
            f"({f['sampled_peak_kib'] / 1024:.1f}) | "
            f"**{f['above_idle_mb']:.1f} MB** | {f['seconds']:.2f} s |"
        )
    method = (
        "the higher of VmHWM (reset by clear_refs) and sampled VmRSS"
        if all(f["hwm"] for f in figures.values())
        else "sampled VmRSS (clear_refs not writable)"
    )
    print(f"\npeak measured as {method}; budget {args.budget_mb:.0f} MB above idle")
    ok = worst < args.budget_mb
    print("OK" if ok else f"OVER BUDGET: {worst:.1f} MB")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
