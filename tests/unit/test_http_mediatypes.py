import pytest

from simples.http.mediatypes import MEDIA_TYPES, is_compressible, media_type_for, resolve_type

REQUIRED = {
    "html": "text/html",
    "htm": "text/html",
    "css": "text/css",
    "js": "text/javascript",
    "mjs": "text/javascript",
    "json": "application/json",
    "map": "application/json",
    "txt": "text/plain",
    "csv": "text/csv",
    "xml": "application/xml",
    "svg": "image/svg+xml",
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
    "avif": "image/avif",
    "ico": "image/x-icon",
    "bmp": "image/bmp",
    "tiff": "image/tiff",
    "woff": "font/woff",
    "woff2": "font/woff2",
    "ttf": "font/ttf",
    "otf": "font/otf",
    "eot": "application/vnd.ms-fontobject",
    "pdf": "application/pdf",
    "zip": "application/zip",
    "gz": "application/gzip",
    "br": "application/x-brotli",
    "zst": "application/zstd",
    "tar": "application/x-tar",
    "7z": "application/x-7z-compressed",
    "rar": "application/vnd.rar",
    "mp3": "audio/mpeg",
    "mp4": "video/mp4",
    "m4a": "audio/mp4",
    "m4v": "video/mp4",
    "webm": "video/webm",
    "ogg": "audio/ogg",
    "oga": "audio/ogg",
    "ogv": "video/ogg",
    "wav": "audio/wav",
    "flac": "audio/flac",
    "aac": "audio/aac",
    "mov": "video/quicktime",
    "avi": "video/x-msvideo",
    "mkv": "video/x-matroska",
    "wasm": "application/wasm",
    "md": "text/markdown",
    "yaml": "application/yaml",
    "yml": "application/yaml",
    "toml": "application/toml",
    "ics": "text/calendar",
    "vtt": "text/vtt",
    "srt": "application/x-subrip",
    "rtf": "application/rtf",
    "doc": "application/msword",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xls": "application/vnd.ms-excel",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "ppt": "application/vnd.ms-powerpoint",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "odt": "application/vnd.oasis.opendocument.text",
    "ods": "application/vnd.oasis.opendocument.spreadsheet",
    "epub": "application/epub+zip",
    "jsonld": "application/ld+json",
    "webmanifest": "application/manifest+json",
    "atom": "application/atom+xml",
    "rss": "application/rss+xml",
    "apng": "image/apng",
    "heic": "image/heic",
    "jxl": "image/jxl",
    "glb": "model/gltf-binary",
    "gltf": "model/gltf+json",
}


def test_table_size_and_shape() -> None:
    assert len(MEDIA_TYPES) >= 120
    for extension, media_type in MEDIA_TYPES.items():
        assert extension == extension.lower()
        assert not extension.startswith(".")
        assert media_type.count("/") == 1
        assert media_type == media_type.lower()
        assert ";" not in media_type


@pytest.mark.parametrize(("extension", "media_type"), sorted(REQUIRED.items()))
def test_media_type_for_required(extension: str, media_type: str) -> None:
    assert media_type_for(extension) == media_type


@pytest.mark.parametrize("extension", ["png", ".png", "PNG", ".PnG", "logo.png", "a.b.PNG"])
def test_media_type_for_forms(extension: str) -> None:
    assert media_type_for(extension) == "image/png"


@pytest.mark.parametrize("extension", ["", ".", "unknownext", "png ", "tar.gz.x"])
def test_media_type_for_unknown(extension: str) -> None:
    assert media_type_for(extension) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("json", "application/json"),
        (".html", "text/html; charset=utf-8"),
        ("HTML", "text/html; charset=utf-8"),
        ("png", "image/png"),
        ("css", "text/css; charset=utf-8"),
        ("js", "text/javascript; charset=utf-8"),
        ("svg", "image/svg+xml; charset=utf-8"),
        ("webmanifest", "application/manifest+json"),
        ("jsonld", "application/ld+json"),
        ("atom", "application/atom+xml; charset=utf-8"),
        ("gltf", "model/gltf+json"),
        ("xml", "application/xml; charset=utf-8"),
        ("pdf", "application/pdf"),
        ("wasm", "application/wasm"),
        ("epub", "application/epub+zip"),
        ("nope", "application/octet-stream"),
        ("", "application/octet-stream"),
    ],
)
def test_resolve_extension(value: str, expected: str) -> None:
    assert resolve_type(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("text/html", "text/html; charset=utf-8"),
        ("text/plain", "text/plain; charset=utf-8"),
        ("text/event-stream", "text/event-stream; charset=utf-8"),
        ("application/json", "application/json"),
        ("application/javascript", "application/javascript; charset=utf-8"),
        ("application/problem+json", "application/problem+json"),
        ("application/soap+xml", "application/soap+xml; charset=utf-8"),
        ("Text/HTML", "Text/HTML; charset=utf-8"),
        ("image/png", "image/png"),
        ("application/octet-stream", "application/octet-stream"),
        ("text/html; charset=iso-8859-1", "text/html; charset=iso-8859-1"),
        ("text/html;charset=UTF-8", "text/html;charset=UTF-8"),
        ("text/html; Charset=utf-16", "text/html; Charset=utf-16"),
        ("text/plain; format=flowed", "text/plain; format=flowed; charset=utf-8"),
        ("text/html;", "text/html; charset=utf-8"),
        (" text/html ", "text/html; charset=utf-8"),
        ("multipart/form-data; boundary=x", "multipart/form-data; boundary=x"),
    ],
)
def test_resolve_media_type(value: str, expected: str) -> None:
    assert resolve_type(value) == expected


def test_resolve_is_cached_and_stable() -> None:
    first = resolve_type("application/vnd.test+json")
    assert first == "application/vnd.test+json"
    assert resolve_type("application/vnd.test+json") is first


def test_resolve_cache_is_bounded_and_still_correct() -> None:
    for i in range(3000):
        assert resolve_type(f"x/type-{i}") == f"x/type-{i}"
    assert resolve_type("json") == "application/json"


def test_resolve_override_keeps_value_verbatim() -> None:
    assert resolve_type("text/html", override=True) == "text/html"
    assert resolve_type("json", override=True) == "json"
    assert resolve_type("whatever ; x=y", override=True) == "whatever ; x=y"


@pytest.mark.parametrize("override", [False, True])
@pytest.mark.parametrize(
    "bad", ["text/html\r\nSet-Cookie: a=1", "text/html\n", "text/\x00html", "text/☃"]
)
def test_resolve_rejects_unsafe_values(bad: str, override: bool) -> None:
    with pytest.raises(ValueError, match="header value"):
        resolve_type(bad, override=override)


@pytest.mark.parametrize(
    "media_type",
    [
        "text/html",
        "text/css; charset=utf-8",
        "TEXT/PLAIN",
        "application/json",
        "application/javascript",
        "application/xml",
        "image/svg+xml",
        "application/manifest+json",
        "application/ld+json",
        "application/problem+json",
        "application/atom+xml",
        "application/wasm",
        "font/ttf",
        "font/otf",
        "application/vnd.ms-fontobject",
        "image/bmp",
        "image/x-icon",
        "application/yaml",
        "application/x-tar",
    ],
)
def test_compressible(media_type: str) -> None:
    assert is_compressible(media_type) is True


@pytest.mark.parametrize(
    "media_type",
    [
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "image/avif",
        "image/heic",
        "image/jxl",
        "video/mp4",
        "video/webm",
        "audio/mpeg",
        "audio/ogg",
        "application/zip",
        "application/gzip",
        "application/x-brotli",
        "application/zstd",
        "application/x-7z-compressed",
        "font/woff",
        "font/woff2",
        "application/pdf",
        "application/epub+zip",
        "application/octet-stream",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "",
    ],
)
def test_not_compressible(media_type: str) -> None:
    assert is_compressible(media_type) is False


def test_compressible_for_every_text_extension() -> None:
    for extension in MEDIA_TYPES:
        resolved = resolve_type(extension)
        if "charset=utf-8" in resolved:
            assert is_compressible(resolved), extension
