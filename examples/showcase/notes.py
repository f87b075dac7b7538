"""The board's storage: notes in one JSON file, attachments as files beside it.

Attachments are stored under a random name (``secrets.token_hex``); the name the
client sent is kept only as metadata, for the download's ``Content-Disposition``,
and is never used as a path. Everything lives in one folder (``SHOWCASE_DATA``).
One process owns the folder: notes are kept in memory and the JSON file is
rewritten (atomically) on each change.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import secrets
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from simples import UploadedFile

# Types a browser may show inline (images, audio, video, plain text); anything
# else is served as application/octet-stream so an uploaded page or script never
# runs under our origin.
INLINE_TYPES: Final = frozenset(
    {
        "image/png", "image/jpeg", "image/gif", "image/webp", "image/avif",
        "video/mp4", "video/webm", "video/ogg",
        "audio/mpeg", "audio/ogg", "audio/wav", "audio/webm", "audio/mp4",
        "text/plain", "application/pdf",
    }
)  # fmt: skip
_ATTACHMENT_ID: Final = re.compile(r"[0-9a-f]{32}")

WELCOME: Final = (
    "Welcome to the simples showcase! Sign in, post a note with a file, and watch it "
    "appear in every open browser at once. Bienvenue !"
)


@dataclass(frozen=True)
class Attachment:
    id: str
    filename: str
    content_type: str
    size: int

    @property
    def kind(self) -> str:
        """``image``, ``video``, ``audio`` or ``file``: how a page shows it."""
        major = self.content_type.split("/", 1)[0]
        return major if major in ("image", "video", "audio") else "file"

    @property
    def url(self) -> str:
        return f"/files/{self.id}"


@dataclass(frozen=True)
class Note:
    id: int
    author: str
    text: str
    created: str  # ISO 8601, UTC
    attachment: Attachment | None = None

    def public(self) -> dict[str, Any]:
        """The JSON form (API and live feed)."""
        data = asdict(self)
        if self.attachment is not None:
            data["attachment"]["url"] = self.attachment.url
        return data

    @property
    def when(self) -> str:
        return datetime.fromisoformat(self.created).strftime("%Y-%m-%d %H:%M UTC")


class Board:
    """Notes, newest first, persisted to ``<folder>/notes.json``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.files = folder / "attachments"
        self._notes: list[Note] | None = None
        self._lock = asyncio.Lock()

    # ------------------------------------------------------------------ reading

    @property
    def notes(self) -> list[Note]:
        if self._notes is None:
            self._notes = self._load()
        return self._notes

    def __len__(self) -> int:
        return len(self.notes)

    def pages(self, size: int) -> int:
        return max(1, math.ceil(len(self.notes) / size))

    def page(self, number: int, size: int) -> list[Note]:
        """Page ``number`` (1-based) of ``size`` notes, newest first."""
        newest_first = self.notes[::-1]
        return newest_first[(number - 1) * size : number * size]

    def get(self, note_id: int) -> Note | None:
        for note in self.notes:
            if note.id == note_id:
                return note
        return None

    def attachment(self, attachment_id: str) -> tuple[Attachment, Path] | None:
        """The attachment with that id and its file, or None (ids are checked first)."""
        if not _ATTACHMENT_ID.fullmatch(attachment_id):
            return None
        for note in self.notes:
            if note.attachment is not None and note.attachment.id == attachment_id:
                return note.attachment, self.files / attachment_id
        return None

    # ------------------------------------------------------------------ writing

    async def add(self, author: str, text: str, upload: UploadedFile | None) -> Note:
        async with self._lock:
            attachment = None
            if upload is not None:
                attachment = Attachment(
                    id=secrets.token_hex(16),
                    filename=upload.filename or "attachment",
                    content_type=_safe_type(upload.content_type),
                    size=upload.size,
                )
                await asyncio.to_thread(self.files.mkdir, parents=True, exist_ok=True)
                await upload.save(self.files / attachment.id)
            notes = self.notes
            note = Note(
                id=notes[-1].id + 1 if notes else 1,
                author=author,
                text=text,
                created=datetime.now(UTC).isoformat(timespec="seconds"),
                attachment=attachment,
            )
            notes.append(note)
            await asyncio.to_thread(self._save, list(notes))
            return note

    def _load(self) -> list[Note]:
        path = self.folder / "notes.json"
        try:
            raw = json.loads(path.read_text("utf-8"))
        except FileNotFoundError:
            welcome = Note(1, "simples", WELCOME, datetime.now(UTC).isoformat(timespec="seconds"))
            self._save([welcome])
            return [welcome]
        notes = []
        for item in raw:
            attachment = item.pop("attachment", None)
            notes.append(Note(**item, attachment=Attachment(**attachment) if attachment else None))
        return notes

    def _save(self, notes: list[Note]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        data = json.dumps([asdict(note) for note in notes], ensure_ascii=False, indent=1)
        handle, temporary = tempfile.mkstemp(dir=self.folder, prefix=".notes-", suffix=".json")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(data)
            os.replace(temporary, self.folder / "notes.json")
        except BaseException:
            os.unlink(temporary)
            raise


def _safe_type(declared: str) -> str:
    media_type = declared.split(";", 1)[0].strip().lower()
    return media_type if media_type in INLINE_TYPES else "application/octet-stream"
