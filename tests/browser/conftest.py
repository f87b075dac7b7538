"""Browser fixtures: the showcase as the README runs it (a subprocess of
``python -m examples.showcase.app``), and Debian's Chromium driven headless by
Playwright. No browser is ever downloaded: Playwright's Python package ships
its driver and is pointed at ``/usr/bin/chromium``."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Playwright,
    Request,
    expect,
    sync_playwright,
)

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
TIMEOUT_MS = 10_000
START_SECONDS = 30
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
_URL = re.compile(rb"Showcase running on (http://127\.0\.0\.1:\d+)")


def chromium_path() -> str:
    """Debian's Chromium (``apt-get install chromium``; ``./dev`` installs it)."""
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError(
        "Chromium not found: install Debian's package (sudo apt-get install chromium, "
        "which ./dev does) or point CHROMIUM at the executable"
    )


@dataclass
class Showcase:
    url: str
    data: Path
    log: Path
    process: subprocess.Popen[bytes]

    def output(self) -> str:
        return self.log.read_text("utf-8", errors="replace")


@contextmanager
def running_showcase(folder: Path, **env: str) -> Iterator[Showcase]:
    """Start ``python -m examples.showcase.app`` on a free port (PORT=0) and wait
    for the URL it prints; SIGTERM (a graceful stop) at the end."""
    log = folder / "showcase.log"
    environment = {
        **os.environ,
        "PORT": "0",
        "SHOWCASE_DATA": str(folder / "data"),
        "PYTHONUNBUFFERED": "1",
        **env,
    }
    if "REDIS_URL" not in env:
        environment.pop("REDIS_URL", None)  # sessions in memory unless asked
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "examples.showcase.app"],
            cwd=ROOT,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + START_SECONDS
        url = None
        while url is None:
            found = _URL.search(log.read_bytes())
            if found:
                url = found.group(1).decode()
            elif process.poll() is not None:
                raise RuntimeError(f"the showcase exited at start:\n{log.read_text()}")
            elif time.monotonic() > deadline:
                raise RuntimeError(
                    f"the showcase printed no URL in {START_SECONDS} s:\n{log.read_text()}"
                )
            else:
                time.sleep(0.05)
        yield Showcase(url, folder / "data", log, process)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


@pytest.fixture(scope="module")
def showcase(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Showcase]:
    # module scope: Playwright's sync API and the app process end with the module
    folder = tmp_path_factory.mktemp("showcase")
    with running_showcase(folder, SHOWCASE_PAGE_SIZE="3", SHOWCASE_MAX_UPLOAD=str(1 << 20)) as app:
        yield app
    # a graceful stop: SIGTERM ends with exit status 0
    assert app.process.returncode == 0, app.output()


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(
        executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS, timeout=30_000
    )
    expect.set_options(timeout=TIMEOUT_MS)
    yield browser
    browser.close()


@dataclass
class Watched:
    """Pages opened by a test, with every console error, page error and failed
    response they produced (checked when the test ends)."""

    allowed: list[re.Pattern[str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    contexts: list[BrowserContext] = field(default_factory=list)

    def allow(self, pattern: str) -> None:
        """Expect console errors matching ``pattern`` (a 404 page logs its status)."""
        self.allowed.append(re.compile(pattern))

    def _console(self, page: Page, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.problems.append(f"console error on {page.url}: {message.text}")

    def watch(self, page: Page) -> Page:
        page.on("console", lambda message: self._console(page, message))
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("requestfailed", self._failed)
        return page

    def _failed(self, request: Request) -> None:
        # ERR_ABORTED is the browser cancelling a request itself: a navigation
        # leaving a page whose favicon was still loading, a media element that
        # seeks. A failure of the server shows otherwise (reset, empty response;
        # an error status is a console error).
        if request.failure == "net::ERR_ABORTED":
            return
        self.problems.append(f"request failed: {request.method} {request.url} {request.failure}")

    def unexpected(self) -> list[str]:
        return [p for p in self.problems if not any(a.search(p) for a in self.allowed)]


@pytest.fixture
def watched() -> Iterator[Watched]:
    state = Watched()
    yield state
    for context in state.contexts:
        context.close()
    assert not state.unexpected(), "\n".join(state.unexpected())


@pytest.fixture
def open_page(browser: Browser, watched: Watched, showcase: Showcase) -> Callable[..., Page]:
    """``open_page(locale="fr-FR")``: a page in a fresh browser context (its own
    cookies: another user), watched for console errors."""

    def opener(**options: Any) -> Page:
        options.setdefault("locale", "en-US")
        options.setdefault("viewport", {"width": 1280, "height": 860})
        context = browser.new_context(base_url=showcase.url, accept_downloads=True, **options)
        context.set_default_timeout(TIMEOUT_MS)
        context.set_default_navigation_timeout(TIMEOUT_MS)
        watched.contexts.append(context)
        return watched.watch(context.new_page())

    return opener


@pytest.fixture(scope="session")
def screenshot() -> Callable[[Page, str], Path]:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page: Page, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True, animations="disabled")
        return path

    return take
