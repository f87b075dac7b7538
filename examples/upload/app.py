"""Uploads: a form page and a POST handler that saves files under safe names.

python -m examples.upload.app                   # saves into ./uploads
UPLOAD_DIR=/tmp/up python -m examples.upload.app

Then open http://127.0.0.1:8000/ and upload a few files.

What it shows: ``await connection.body().form()`` on a multipart body, text
fields and ``UploadedFile`` objects, ``await upload.save(path)`` (big files are
spooled to a temporary file while they arrive and copied in a worker thread),
per-router ``limits``, and error routes for what a client can get wrong.
"""

from __future__ import annotations

import asyncio
import html
import os
import re
import secrets
import unicodedata
from pathlib import Path

import simples
from simples import HTTPConnection

MiB = 1 << 20
LIMITS = {
    "part_size": 20 * MiB,  # one file
    "upload_size": 60 * MiB,  # the whole multipart body
    "form_files": 10,
    "form_fields": 20,
}

PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>simples uploads</title></head>
<body>
<h1>Upload files</h1>
{message}
<form method="post" action="/upload" enctype="multipart/form-data">
  <p><label>Title <input name="title" maxlength="200"></label></p>
  <p><input type="file" name="files" multiple></p>
  <p><button>Upload</button></p>
</form>
<p>At most {files} files, {part} MiB each, {total} MiB in all.</p>
<h2>Saved so far</h2>
{saved}
</body>
</html>
"""

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(filename: str) -> str:
    """A name that is safe on any file system, unique, and still recognisable.

    ``UploadedFile.filename`` is already the last path segment without control
    characters, but it is still client input: it may be empty, ``.htaccess``,
    ``CON`` on Windows, very long, or the same as another upload. So: ASCII
    letters, digits, ``.``, ``_`` and ``-`` only, no leading dot, at most 100
    characters, behind a random prefix.
    """
    ascii_name = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode()
    stem = _UNSAFE.sub("_", ascii_name).strip("._")[-100:] or "upload"
    return f"{secrets.token_hex(8)}-{stem}"


def page(directory: Path, message: str = "") -> str:
    entries = sorted(directory.iterdir()) if directory.is_dir() else []
    saved = "".join(
        f"<li>{html.escape(entry.name)} ({entry.stat().st_size:,} bytes)</li>"
        for entry in entries
        if entry.is_file()
    )
    return PAGE.format(
        message=message,
        files=LIMITS["form_files"],
        part=LIMITS["part_size"] // MiB,
        total=LIMITS["upload_size"] // MiB,
        saved=f"<ul>{saved}</ul>" if saved else "<p>Nothing yet.</p>",
    )


def create(directory: str | os.PathLike[str] | None = None) -> simples.Server:
    folder = Path(directory or os.environ.get("UPLOAD_DIR", "uploads")).resolve()
    server = simples.server()
    server.logger()
    server.limits(**LIMITS)
    server.on("start", lambda: folder.mkdir(parents=True, exist_ok=True))

    @server.get("/")
    async def home(connection: HTTPConnection) -> None:
        connection.type("html")
        # Listing a folder is blocking I/O: keep it off the event loop.
        await connection.send(await asyncio.to_thread(page, folder))

    @server.post("/upload")
    async def upload(connection: HTTPConnection) -> None:
        form = await connection.body().form()
        title = form.fields.get("title", "").strip()
        lines = []
        for upload in form.files.getall("files"):
            name = safe_name(upload.filename)
            # Copied from memory or from the spooled temporary file, in a worker
            # thread; the temporary file itself is deleted when the exchange ends.
            await upload.save(folder / name)
            lines.append(
                f"<li>{html.escape(upload.filename or '(no name)')} → "
                f"{html.escape(name)} ({upload.size:,} bytes)</li>"
            )
        if not lines:
            message = "<p><em>No file chosen.</em></p>"
        else:
            heading = f"“{html.escape(title)}”: " if title else ""
            message = f"<p><em>{heading}saved {len(lines)} file(s):</em></p>"
            message += f"<ul>{''.join(lines)}</ul>"
        connection.type("html")
        await connection.send(await asyncio.to_thread(page, folder, message))

    @server.error(413)
    async def too_large(connection: HTTPConnection) -> str:
        return (
            f"Too large: at most {LIMITS['part_size'] // MiB} MiB per file and "
            f"{LIMITS['upload_size'] // MiB} MiB in all.\n"
        )

    @server.error(400)
    async def bad_form(connection: HTTPConnection) -> str:
        return f"That form could not be read (at most {LIMITS['form_files']} files).\n"

    @server.error(415)
    async def not_a_form(connection: HTTPConnection) -> str:
        return "Send the form as multipart/form-data.\n"

    return server


server = create()

if __name__ == "__main__":
    server.listen(8000)
