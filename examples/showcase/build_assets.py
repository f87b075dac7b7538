"""Build the showcase's static folder from ``assets/``: fingerprinted copies plus
precompressed sidecars.

    python -m examples.showcase.build_assets          # (re)build public/
    python -m examples.showcase.build_assets --check  # exit 1 if public/ is out of date

For each source file (``assets/site.css``) the build writes ``public/site.<hash>.css``
(the hash of its content), ``.br`` and ``.gz`` sidecars beside it, and
``public/manifest.json`` mapping ``site.css`` to the fingerprinted name. Then:

- ``server.static()`` sees the content hash in the name and serves the file with
  ``Cache-Control: public, max-age=31536000, immutable``: browsers keep it for a
  year, and a new version has a new name;
- it serves ``site.<hash>.css.br`` (or ``.gz``) in place of the file to clients
  that accept br (or gzip), so text assets cost no compression work per request.

``public/`` is committed; the app also runs ``ensure()`` at startup, which
rebuilds when a source changed and makes sure every sidecar is at least as new
as its file (the static server ignores an older sidecar as stale, and a fresh
clone does not promise the order in which files are written).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import sys
from pathlib import Path
from typing import Final

import brotli

HERE: Final = Path(__file__).resolve().parent
ASSETS: Final = HERE / "assets"
PUBLIC: Final = HERE / "public"
MANIFEST: Final = "manifest.json"
COMPRESSIBLE: Final = (".css", ".js", ".svg", ".html", ".json", ".txt")
SIDECARS: Final = (".br", ".gz")


def fingerprint(data: bytes) -> str:
    """A content hash with at least one digit and one letter (what marks a name
    as fingerprinted for ``server.static()``)."""
    digest = hashlib.sha256(data).hexdigest()
    for length in range(10, len(digest) + 1):
        token = digest[:length]
        if re.search("[0-9]", token) and re.search("[a-f]", token):
            return token
    return digest[:9] + "a"  # pragma: no cover - a hash of one repeated digit


def compress(data: bytes, suffix: str) -> bytes:
    """Deterministic compressed forms (no gzip timestamp), so rebuilds are stable."""
    if suffix == ".br":
        return bytes(brotli.compress(data, quality=11))
    return gzip.compress(data, compresslevel=9, mtime=0)


def plan(assets: Path = ASSETS) -> dict[Path, bytes]:
    """Every file the build writes under ``public/``, relative path → content."""
    files: dict[Path, bytes] = {}
    manifest: dict[str, str] = {}
    for source in sorted(assets.rglob("*")):
        if not source.is_file() or source.name.startswith("."):
            continue
        data = source.read_bytes()
        logical = source.relative_to(assets)
        built = logical.with_name(f"{source.stem}.{fingerprint(data)}{source.suffix}")
        manifest[logical.as_posix()] = built.as_posix()
        files[built] = data
        if source.suffix in COMPRESSIBLE:
            for suffix in SIDECARS:
                files[built.with_name(built.name + suffix)] = compress(data, suffix)
    files[Path(MANIFEST)] = (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()
    return files


# What a build writes: name.<hash>.ext, its sidecars, the manifest. Only such
# files are ever deleted as leftovers of an older build.
_BUILT = re.compile(r"[^/]+\.[0-9a-f]{10,64}\.[A-Za-z0-9]+(\.br|\.gz)?")


def _existing(public: Path) -> set[Path]:
    """Files of earlier builds in ``public/``."""
    if not public.is_dir():
        return set()
    return {
        path.relative_to(public)
        for path in public.rglob("*")
        if path.is_file() and _BUILT.fullmatch(path.name)
    }


def stale(public: Path = PUBLIC, assets: Path = ASSETS) -> list[str]:
    """What differs between ``public/`` and a fresh build (empty when up to date)."""
    wanted = plan(assets)
    problems = [
        f"{'missing' if not (public / path).exists() else 'outdated'}: {path.as_posix()}"
        for path, data in wanted.items()
        if not (public / path).exists() or (public / path).read_bytes() != data
    ]
    leftovers = sorted(_existing(public) - set(wanted))
    problems += [f"leftover: {path.as_posix()}" for path in leftovers]
    return problems


def build(public: Path = PUBLIC, assets: Path = ASSETS) -> list[Path]:
    """Write what changed, delete leftovers of older builds; returns what was written."""
    wanted = plan(assets)
    written = []
    for path, data in wanted.items():
        target = public / path
        if not target.exists() or target.read_bytes() != data:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            written.append(path)
    for leftover in _existing(public) - set(wanted):
        (public / leftover).unlink()
    _order_mtimes(public, wanted)
    return written


def _order_mtimes(public: Path, wanted: dict[Path, bytes]) -> None:
    """Make every sidecar at least as new as its file: an older sidecar is stale
    to the static server, which would then compress on the fly or not at all."""
    for path in wanted:
        if path.suffix not in SIDECARS:
            continue
        sidecar, original = public / path, public / path.with_suffix("")
        newest = original.stat().st_mtime_ns
        if sidecar.stat().st_mtime_ns < newest:
            os.utime(sidecar, ns=(newest, newest))


def ensure(public: Path = PUBLIC, assets: Path = ASSETS) -> dict[str, str]:
    """At startup: rebuild if needed and return the manifest (logical → built name)."""
    if stale(public, assets):
        build(public, assets)
    else:
        _order_mtimes(public, plan(assets))
    manifest: dict[str, str] = json.loads((public / MANIFEST).read_text("utf-8"))
    return manifest


def main(argv: list[str]) -> int:
    if "--check" in argv:
        problems = stale()
        for problem in problems:
            print(problem)
        if problems:
            print("run: python -m examples.showcase.build_assets")
        return 1 if problems else 0
    for path in build():
        print(f"wrote public/{path.as_posix()} ({(PUBLIC / path).stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
