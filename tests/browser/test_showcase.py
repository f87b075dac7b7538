"""The showcase in a real browser (headless Chromium): what a new user does.

One showcase process serves the module (3 notes per page, a temp data folder);
each test opens its own browser contexts, so each is another visitor with its
own cookies. Every page is watched: a console error, an uncaught exception or a
failed request fails the test. Screenshots go to ``artifacts/screenshots/``.
"""

from __future__ import annotations

import array
import io
import math
import random
import re
import wave
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import FilePayload, Page, expect

from tests.browser.conftest import Showcase, Watched

Opener = Callable[..., Page]
Shooter = Callable[[Page, str], Path]


def sign_in(page: Page, name: str) -> None:
    page.goto("/")
    page.get_by_role("link", name="Sign in").first.click()
    expect(page).to_have_url(re.compile(r"/login$"))
    page.fill("#name", name)
    page.click("#login button[type=submit]")
    expect(page.locator("#user-name")).to_have_text(name)
    expect(page.locator(".flash")).to_have_text(f"Welcome, {name}!")


def post_note(page: Page, text: str, attachment: FilePayload | None = None) -> str:
    """Post from the form; returns the new note's element id (``note-7``)."""
    page.fill("#text", text)
    if attachment is not None:
        page.set_input_files("#attachment", files=[attachment])
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.click("#post")
    assert posted.value.status == 303  # redirect after POST
    expect(page.locator(".flash")).to_have_text("Your note is on the board.")
    page.wait_for_load_state("load")
    first = page.locator("#notes .note").first
    expect(first.locator(".note-text")).to_have_text(text)
    note_id = first.get_attribute("id")
    assert note_id is not None
    assert note_id.startswith("note-")
    return note_id


def live_is_on(page: Page) -> None:
    expect(page.locator("#live")).to_have_attribute("data-state", "open")


def looks_styled(page: Page) -> None:
    """The stylesheet is applied (not a bare HTML page)."""
    header = page.locator("header.top")
    expect(header).to_have_css("position", "sticky")
    expect(page.locator("body")).to_have_css("display", "flex")


# ---------------------------------------------------------------------- tests


def test_sign_in_post_with_attachment_live_download_and_range(
    open_page: Opener, showcase: Showcase, screenshot: Shooter
) -> None:
    viewer = open_page()  # a second browser context: another visitor
    viewer.goto("/")
    looks_styled(viewer)
    live_is_on(viewer)
    screenshot(viewer, "board-anonymous")
    viewer.evaluate("window.__sameDocument = 'yes'")  # gone if the page reloads

    author = open_page()
    author.goto("/login")
    screenshot(author, "login")
    sign_in(author, "Ada Lovelace")
    live_is_on(author)

    content = random.Random(8).randbytes(300_000)
    text = "Minutes of the engine meeting, with the full report attached."
    note_id = post_note(
        author,
        text,
        {"name": "rapport d'été.bin", "mimeType": "application/octet-stream", "buffer": content},
    )
    screenshot(author, "board-signed-in")

    # the viewer sees it arrive over the WebSocket, without a reload
    live_note = viewer.locator(f"#{note_id}")
    expect(live_note.locator(".note-text")).to_have_text(text)
    expect(live_note.locator(".author")).to_have_text("Ada Lovelace")
    expect(live_note.locator(".file-name")).to_have_text("rapport d'été.bin")
    expect(viewer.locator("#notes .note").first).to_have_attribute("id", note_id)
    assert viewer.evaluate("window.__sameDocument") == "yes"
    screenshot(viewer, "board-live-update")

    # download it from the live card: same bytes, the client's file name
    with viewer.expect_download() as info:
        live_note.locator("a.file").click()
    download = info.value
    assert download.suggested_filename == "rapport d'été.bin"
    assert Path(download.path()).read_bytes() == content

    # the attachment URL answers Range requests (what a video player seeks with)
    href = live_note.locator("a.file").get_attribute("href")
    assert href is not None
    assert re.fullmatch(r"/files/[0-9a-f]{32}", href)
    whole = viewer.request.get(href)
    assert whole.status == 200
    assert whole.headers["accept-ranges"] == "bytes"
    part = viewer.request.get(href, headers={"Range": "bytes=1000-1999"})
    assert part.status == 206
    assert part.headers["content-range"] == f"bytes 1000-1999/{len(content)}"
    assert part.body() == content[1000:2000]
    tail = viewer.request.get(href, headers={"Range": "bytes=-500"})
    assert tail.status == 206
    assert tail.body() == content[-500:]
    # the stored file has a generated name, never the client's
    stored = list((showcase.data / "attachments").iterdir())
    assert all(re.fullmatch(r"[0-9a-f]{32}", path.name) for path in stored)


def wav(seconds: float, rate: int = 22_050) -> bytes:
    """A mono 16-bit WAV of a 440 Hz tone, made here (no media files in the repo)."""
    frames = int(seconds * rate)
    samples = array.array(
        "h", (int(8000 * math.sin(2 * math.pi * 440 * n / rate)) for n in range(frames))
    )
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(samples.tobytes())
    return out.getvalue()


def test_media_attachment_plays_inline_and_seeks(open_page: Opener) -> None:
    # A media element reads its source with Range requests; seeking proves they work.
    author = open_page()
    sign_in(author, "Grace")
    sound = wav(8.0)
    note_id = post_note(
        author, "A short tone", {"name": "tone.wav", "mimeType": "audio/wav", "buffer": sound}
    )
    player = author.locator(f"#{note_id} audio")
    expect(player).to_have_count(1)
    selector = f"#{note_id} audio"
    # every wait is bounded by the default timeout (wait_for_function, not a bare promise)
    author.wait_for_function("s => document.querySelector(s).readyState >= 1", arg=selector)
    duration = player.evaluate("a => a.duration")
    assert abs(duration - 8.0) < 0.1
    player.evaluate("a => { a.currentTime = 6; }")
    author.wait_for_function(
        "s => { const a = document.querySelector(s); "
        "return !a.seeking && Math.abs(a.currentTime - 6) < 0.5; }",
        arg=selector,
    )
    player.evaluate(
        "a => { a.muted = true; a.play().catch(e => { window.__playError = String(e); }); }"
    )
    author.wait_for_function(
        "s => window.__playError || document.querySelector(s).currentTime > 6.05", arg=selector
    )
    assert author.evaluate("window.__playError || null") is None
    assert player.evaluate("a => a.error") is None


def test_attachment_over_the_limit(
    open_page: Opener, watched: Watched, screenshot: Shooter
) -> None:
    watched.allow(r"the server responded with a status of 413 ")  # the 413 page itself
    page = open_page()
    sign_in(page, "Heavy")
    posts: list[str] = []
    page.on(
        "request", lambda request: posts.append(request.url) if request.method == "POST" else None
    )
    page.fill("#text", "Far too big")
    big: FilePayload = {
        "name": "big.bin",
        "mimeType": "application/octet-stream",
        "buffer": bytes(1_200_000),  # the showcase under test allows 1 MiB
    }
    page.set_input_files("#attachment", files=[big])
    # the page checks the size first: nothing is sent
    expect(page.locator("#too-big")).to_be_visible()
    page.click("#post")
    expect(page.locator("#too-big")).to_have_text("That is too big. Attachments may be up to 1 MB.")
    assert posts == []
    # without that courtesy, the server refuses it, and the browser shows its 413 page
    page.evaluate("document.getElementById('compose').removeAttribute('data-max-bytes')")
    with page.expect_response(lambda response: response.request.method == "POST") as posted:
        page.click("#post")
    assert posted.value.status == 413
    expect(page.locator("h1")).to_have_text("Error 413")
    expect(page.locator("main")).to_contain_text("That is too big.")
    screenshot(page, "too-big")


def test_switch_language(open_page: Opener, screenshot: Shooter) -> None:
    # the browser says French first: the board comes in French
    page = open_page(locale="fr-FR")
    response = page.goto("/")
    assert response is not None
    assert response.headers["content-language"] == "fr"
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.locator("#notes-title")).to_have_text("Notes")
    expect(page.get_by_role("link", name="Se connecter").first).to_be_visible()
    live_is_on(page)
    expect(page.locator("#live-label")).to_have_text("En direct")
    screenshot(page, "board-french")

    # the switch in the header wins over the browser's preference, and sticks
    page.locator(".langs a[hreflang=en]").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("link", name="Sign in").first).to_be_visible()
    expect(page.locator("#live-label")).to_have_text("Live")
    page.reload()
    expect(page.locator("html")).to_have_attribute("lang", "en")

    # and back, on another page: the switch returns to where it was used
    page.goto("/login")
    page.locator(".langs a[hreflang=fr]").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.locator("h1")).to_have_text("Connectez-vous pour publier")


def test_pagination_links(open_page: Opener, showcase: Showcase, screenshot: Shooter) -> None:
    page = open_page()
    sign_in(page, "Pagination")
    for number in range(4):  # 3 per page: at least two pages
        post_note(page, f"Page filler {number}")
    count = int(re.sub(r"\D", "", page.locator("#count").inner_text()))
    pages = -(-count // 3)
    assert pages >= 2

    first = page.goto("/")
    assert first is not None
    link = first.headers["link"]
    assert '</?page=2>; rel="next"' in link
    assert 'rel="prev"' not in link
    expect(page.locator("#notes .note")).to_have_count(3)
    expect(page.locator("link[rel=next]")).to_have_attribute("href", "/?page=2")

    page.get_by_role("link", name="Older →").click()
    expect(page).to_have_url(re.compile(r"/\?page=2$"))
    expect(page.locator(".page-of")).to_have_text(f"Page 2 of {pages}")
    expect(page.locator("#notes")).to_have_attribute("data-live-insert", "false")
    screenshot(page, "board-page-2")
    second = page.request.get("/?page=2")
    assert '</?page=1>; rel="prev"' in second.headers["link"]

    page.get_by_role("link", name="← Newer").click()
    expect(page).to_have_url(re.compile(r"/\?page=1$"))
    expect(page.locator(".page-of")).to_have_text(f"Page 1 of {pages}")


def test_sign_out(open_page: Opener) -> None:
    page = open_page()
    sign_in(page, "Charles")
    expect(page.locator("#compose")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator(".flash")).to_have_text("You are signed out. See you soon!")
    expect(page.locator("#user-name")).to_have_count(0)
    expect(page.locator("#compose")).to_have_count(0)
    expect(page.get_by_role("link", name="Sign in").first).to_be_visible()
    # the old session is gone: posting now sends the visitor to the login page
    response = page.request.post("/notes", multipart={"text": "sneaky"}, max_redirects=0)
    assert response.status == 303
    assert response.headers["location"] == "/login"


def test_missing_page_is_the_custom_404(
    open_page: Opener, watched: Watched, screenshot: Shooter
) -> None:
    # Chromium logs the 404 status of the page itself as a console error: expected here
    watched.allow(r"status of 404 \(Not Found\)")
    page = open_page()
    response = page.goto("/no/such/page")
    assert response is not None
    assert response.status == 404
    expect(page.locator(".error-code")).to_have_text("404")
    expect(page.locator("h1")).to_have_text("Error 404")
    expect(page.locator("main")).to_contain_text("There is nothing at this address.")
    looks_styled(page)
    screenshot(page, "not-found")
    page.get_by_role("link", name="Back to the board").click()
    expect(page).to_have_url(re.compile(r"/$"))
    live_is_on(page)


def test_json_api_with_cors(open_page: Opener) -> None:
    page = open_page()
    allowed = page.request.get("/api/notes", headers={"Origin": "http://localhost:3000"})
    assert allowed.status == 200
    assert allowed.headers["content-type"] == "application/json"
    assert allowed.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert "link" in allowed.headers["access-control-expose-headers"].lower()
    assert "origin" in allowed.headers["vary"].lower()
    body = allowed.json()
    assert body["page"] == 1
    assert body["total"] >= 1
    assert body["notes"]
    assert {"id", "author", "text", "created", "attachment"} <= set(body["notes"][0])
    assert "set-cookie" not in allowed.headers  # no sessions under /api

    refused = page.request.get("/api/notes", headers={"Origin": "https://evil.example"})
    assert refused.status == 200
    assert "access-control-allow-origin" not in refused.headers

    preflight = page.request.fetch(
        "/api/notes",
        method="OPTIONS",
        headers={"Origin": "http://localhost:3000", "Access-Control-Request-Method": "GET"},
    )
    assert preflight.status == 204
    assert preflight.headers["access-control-allow-origin"] == "http://localhost:3000"

    missing = page.request.get("/api/notes/999999")
    assert missing.status == 404
    assert missing.json()["error"] == 404
