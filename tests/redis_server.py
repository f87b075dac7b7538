"""A real, throw-away redis-server for tests: free loopback port, temp dir, no persistence.

Usage from a fixture::

    from tests.redis_server import running_redis

    @pytest.fixture(scope="module")
    def redis_url():
        with running_redis() as redis:
            yield redis.url

``RedisProcess.kill()`` / ``pause()`` simulate a crash or a hung server, and
``start()`` after a stop brings the server back on the same port, so tests can
check that clients recover without being recreated. Only the standard library is
used here, so the helper works whatever client the test uses.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["RedisProcess", "find_redis_server", "free_port", "running_redis"]

_START_DEADLINE = 10.0
_STOP_DEADLINE = 5.0


def find_redis_server() -> str:
    """The redis-server executable: ``$REDIS_SERVER``, then ``PATH``, then Debian's."""
    candidates = [os.environ.get("REDIS_SERVER"), shutil.which("redis-server")]
    candidates.append("/usr/bin/redis-server")
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError(
        "redis-server not found: install it (apt-get install redis-server) "
        "or point REDIS_SERVER at the executable"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _answers_ping(port: int, deadline: float) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            conn.settimeout(max(0.05, min(0.5, deadline - time.monotonic())))
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisProcess:
    """One redis-server bound to 127.0.0.1:``port``, data in a private temp dir."""

    def __init__(self, port: int | None = None, *, executable: str | None = None) -> None:
        self.executable = executable or find_redis_server()
        self.port = port if port is not None else free_port()
        self._tmp = tempfile.TemporaryDirectory(prefix="simples-redis-")
        self.dir = Path(self._tmp.name)
        self.log = self.dir / "redis.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> RedisProcess:
        """Start the server (again, on the same port) and wait until it answers PING."""
        if self.running:
            return self
        command = [
            self.executable,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.dir),
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--logfile", str(self.log),
        ]  # fmt: skip
        self._process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + _START_DEADLINE
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"redis-server exited at start: {self._diagnostics()}")
            if _answers_ping(self.port, deadline):
                return self
            time.sleep(0.02)
        self.kill()
        raise RuntimeError(
            f"redis-server did not answer PING within {_START_DEADLINE}s: {self._diagnostics()}"
        )

    def stop(self) -> None:
        """Shut the server down (SIGTERM, then SIGKILL if it lingers). Idempotent."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            self.resume()  # a stopped process would never act on SIGTERM
            process.terminate()
            try:
                process.wait(_STOP_DEADLINE)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(_STOP_DEADLINE)
        self._reap()

    def kill(self) -> None:
        """Crash the server (SIGKILL): connections drop without a goodbye."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.kill()
            process.wait(_STOP_DEADLINE)
        self._reap()

    def restart(self) -> RedisProcess:
        """Stop, then start on the same port with an empty dataset."""
        self.stop()
        return self.start()

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): it accepts TCP connections but never answers."""
        if self.running and self._process is not None:
            self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Undo ``pause``."""
        if self.running and self._process is not None:
            self._process.send_signal(signal.SIGCONT)

    def close(self) -> None:
        """Stop the server and delete its temp dir."""
        self.stop()
        self._tmp.cleanup()

    def _reap(self) -> None:
        if self._process is not None and self._process.stderr is not None:
            self._process.stderr.close()
        self._process = None

    def _diagnostics(self) -> str:
        parts = []
        process = self._process
        if process is not None and process.poll() is not None and process.stderr is not None:
            parts.append(process.stderr.read().decode(errors="replace").strip())
        with contextlib.suppress(OSError):
            parts.append(self.log.read_text(errors="replace")[-2000:].strip())
        return " | ".join(part for part in parts if part) or "no output"

    def __enter__(self) -> RedisProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<RedisProcess {self.url} {state}>"


@contextlib.contextmanager
def running_redis(port: int | None = None) -> Iterator[RedisProcess]:
    """A started ``RedisProcess``, stopped and cleaned up on exit.

    Without a ``port``, a free one is picked; if another process grabs it before
    redis binds, a new port is tried a couple of times.
    """
    attempts = 1 if port is not None else 3
    for attempt in range(attempts):
        redis = RedisProcess(port)
        try:
            redis.start()
        except RuntimeError:
            redis.close()
            if attempt == attempts - 1:
                raise
            continue
        try:
            yield redis
        finally:
            redis.close()
        return
