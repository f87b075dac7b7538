"""The server as users run it: start/stop, mirrors, TLS, listen(), the CLI, granian."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

import simples
from simples import HTTPConnection
from tests.conftest import serve

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_up(url: str, process: subprocess.Popen[str], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early: {process.communicate()[0]}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up in {seconds} s")


@contextmanager
def process(*args: str) -> Iterator[subprocess.Popen[str]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        yield child
    finally:
        if child.poll() is None:
            child.kill()
        child.communicate(timeout=10)


def wait_for_line(child: subprocess.Popen[str], text: str, seconds: float = 15.0) -> None:
    """Read the child's output until a line holds ``text`` (bounded in time)."""
    seen = threading.Event()

    def read() -> None:
        assert child.stdout is not None
        for line in child.stdout:
            if text in line:
                seen.set()
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(seconds)
    assert seen.is_set(), f"{text!r} not printed within {seconds} s"


def test_start_returns_addresses_and_stop_frees_the_port() -> None:
    app = simples.server()
    app.get("/", lambda c: "up")
    with serve(app) as live:
        assert live.get("/").text == "up"
        port = live.port
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))  # the port is free again


def test_start_on_a_taken_port_raises() -> None:
    app = simples.server()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        import asyncio

        with pytest.raises(OSError, match="in use"):
            asyncio.run(app.start(port))


def test_mirror_serves_the_same_routes() -> None:
    app = simples.server()
    app.get("/", lambda c: "same")
    mirror_port = free_port()
    app.mirror(mirror_port)
    with serve(app) as live:
        assert live.get("/").text == "same"
        assert httpx.get(f"http://127.0.0.1:{mirror_port}/").text == "same"
        assert len(app.addresses) == 2


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return {"cert": str(cert), "key": str(key)}


def test_https_with_a_plain_http_mirror(certificate: dict[str, str]) -> None:
    app = simples.server(https=certificate)

    @app.get("/")
    async def home(connection: HTTPConnection) -> str:
        return f"{connection.protocol} {connection.url.scheme}"

    plain = free_port()
    app.mirror(plain)
    with serve(app) as live:
        secure = httpx.get(f"https://127.0.0.1:{live.port}/", verify=False)
        assert secure.text == "https https"
        assert httpx.get(f"http://127.0.0.1:{plain}/").text == "http http"


def test_https_option_is_checked() -> None:
    with pytest.raises(ValueError, match="cert"):
        simples.server().mirror(1, https={"cert": "x"})


def test_listen_stops_gracefully_on_sigterm() -> None:
    port = free_port()
    with process(PYTHON, "-m", "tests.apps.core_app", str(port)) as child:
        wait_until_up(f"http://127.0.0.1:{port}/", child)
        result: list[str] = []

        def slow() -> None:
            result.append(httpx.get(f"http://127.0.0.1:{port}/slow?s=1", timeout=10).text)

        thread = threading.Thread(target=slow)
        thread.start()
        # Signalled once the request is in the handler (a fixed sleep lost the
        # race on a loaded machine: the signal came before the request).
        wait_for_line(child, "slow started")
        child.send_signal(signal.SIGTERM)
        thread.join(10)
        assert child.wait(15) == 0
        output = child.communicate()[0]
    assert result == ["finished"]  # the in-flight request completed
    assert "stop callback ran" in output


def test_cli_run_serves_the_app() -> None:
    port = free_port()
    with process(
        PYTHON, "-m", "simples.cli", "run", "tests.apps.core_app:server", "--port", str(port)
    ) as child:
        wait_until_up(f"http://127.0.0.1:{port}/", child)
        response = httpx.get(f"http://127.0.0.1:{port}/users/7?q=x")
        assert response.json() == {"id": "7", "q": "x", "langs": []}
        assert "server" not in response.headers  # uvicorn configured by us
        child.send_signal(signal.SIGINT)
        assert child.wait(15) == 0


def test_cli_with_two_workers_uses_two_processes() -> None:
    port = free_port()
    with process(
        PYTHON,
        "-m",
        "simples.cli",
        "run",
        "tests.apps.core_app:server",
        "--port",
        str(port),
        "--workers",
        "2",
    ) as child:
        wait_until_up(f"http://127.0.0.1:{port}/", child, seconds=30)
        pids = set()
        deadline = time.monotonic() + 20
        while len(pids) < 2 and time.monotonic() < deadline:
            with httpx.Client() as client:  # a new connection each time
                pids.add(client.get(f"http://127.0.0.1:{port}/").json()["pid"])
        assert len(pids) == 2
        child.send_signal(signal.SIGINT)
        assert child.wait(20) == 0


def test_cli_reports_a_bad_target() -> None:
    done = subprocess.run(
        [PYTHON, "-m", "simples.cli", "run", "no_such_module:server"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode != 0
    assert "cannot import 'no_such_module'" in done.stderr


def test_granian_smoke() -> None:
    port = free_port()
    with process(PYTHON, "-m", "tests.apps.core_app", str(port), "granian") as child:
        wait_until_up(f"http://127.0.0.1:{port}/", child, seconds=30)
        base = f"http://127.0.0.1:{port}"
        user = httpx.get(f"{base}/users/5?q=z", headers={"Accept-Language": "de, en;q=0.5"})
        assert user.json() == {"id": "5", "q": "z", "langs": ["de", "en"]}
        assert user.headers["x-id"] == "5"
        assert "HttpOnly" in user.headers["set-cookie"]
        assert httpx.get(f"{base}/nope").status_code == 404
        assert httpx.request("POST", f"{base}/").status_code == 405
        assert httpx.head(f"{base}/users/5").content == b""
        assert httpx.get(f"{base}/stream").text == "0\n1\n2\n"
        child.send_signal(signal.SIGINT)
        assert child.wait(20) == 0


def test_cli_reload_picks_up_a_changed_file(tmp_path: Path) -> None:
    app_file = tmp_path / "reload_app.py"
    app_file.write_text(
        "import simples\nserver = simples.server()\nserver.get('/', lambda c: 'one')\n"
    )
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [PYTHON, "-m", "simples.cli", "run", "reload_app:server", "--port", str(port), "--reload"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until_up(f"http://127.0.0.1:{port}/", child, seconds=30)
        assert httpx.get(f"http://127.0.0.1:{port}/").text == "one"
        changed = app_file.read_text().replace("'one'", "'two'")
        deadline = time.monotonic() + 30
        text = ""
        attempt = 0
        while time.monotonic() < deadline and text != "two":
            # written again now and then: on a loaded machine the watcher may
            # start watching only after the first write
            if attempt % 10 == 0:
                app_file.write_text(changed)
            attempt += 1
            time.sleep(0.3)
            try:
                text = httpx.get(f"http://127.0.0.1:{port}/", timeout=2).text
            except httpx.HTTPError:
                continue
        assert text == "two"
    finally:
        child.send_signal(signal.SIGINT)
        try:
            child.wait(15)
        except subprocess.TimeoutExpired:
            child.kill()
        child.communicate(timeout=10)


def test_access_log_shows_up_without_any_logging_setup() -> None:
    port = free_port()
    script = (
        "import simples\n"
        "server = simples.server()\n"
        "server.logger()\n"
        "server.get('/', lambda c: 'hi')\n"
        f"server.listen({port})\n"
    )
    with process(PYTHON, "-c", script) as child:
        wait_until_up(f"http://127.0.0.1:{port}/", child)
        httpx.get(f"http://127.0.0.1:{port}/?from=test")
        child.send_signal(signal.SIGINT)
        assert child.wait(15) == 0
        output = child.communicate()[0]
    assert "simples.access" in output
    assert f"GET http://127.0.0.1:{port}/?from=test" in output
