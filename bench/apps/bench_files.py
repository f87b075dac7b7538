"""What the file and compression endpoints serve, the same in every app (stdlib only).

The static files are made on first import, deterministically, under bench/data/static/;
writes go through os.replace, so apps starting together never see a half-written file.
"""

import hashlib
import os
from pathlib import Path

STATIC = Path(__file__).resolve().parent.parent / "data" / "static"
# 10,437 bytes as compact JSON
REPORT = {
    "items": [
        {"id": i, "name": f"item {i}", "tags": ["alpha", "beta"], "price": i * 1.5}
        for i in range(160)
    ]
}


def _small() -> bytes:
    return (b"The quick brown fox jumps over the lazy dog. 0123456789\n" * 74)[:4096]


def _large() -> bytes:
    # incompressible, like most large static files (images, video, archives)
    return b"".join(hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(32768))


def ensure() -> Path:
    STATIC.mkdir(parents=True, exist_ok=True)
    for name, make in (("4k.txt", _small), ("1m.bin", _large)):
        path, data = STATIC / name, make()
        if not path.is_file() or path.stat().st_size != len(data):
            tmp = path.with_name(f".{name}.{os.getpid()}")
            tmp.write_bytes(data)
            os.replace(tmp, path)
    return STATIC
