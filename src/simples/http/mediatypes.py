"""File extensions to media types, charset defaults, and what is worth compressing.

Our own table rather than the ``mimetypes`` module: that one reads the machine's
``/etc/mime.types`` and the Windows registry, so the same file would be served with
different types on different hosts.
"""

from simples.http.headers import validate_header_value

MEDIA_TYPES: dict[str, str] = {
    # text and documents for the browser
    "html": "text/html",
    "htm": "text/html",
    "xhtml": "application/xhtml+xml",
    "css": "text/css",
    "js": "text/javascript",
    "mjs": "text/javascript",
    "cjs": "text/javascript",
    "json": "application/json",
    "map": "application/json",
    "jsonld": "application/ld+json",
    "webmanifest": "application/manifest+json",
    "txt": "text/plain",
    "text": "text/plain",
    "log": "text/plain",
    "csv": "text/csv",
    "tsv": "text/tab-separated-values",
    "xml": "application/xml",
    "xsl": "application/xml",
    "xsd": "application/xml",
    "atom": "application/atom+xml",
    "rss": "application/rss+xml",
    "md": "text/markdown",
    "markdown": "text/markdown",
    "yaml": "application/yaml",
    "yml": "application/yaml",
    "toml": "application/toml",
    "ics": "text/calendar",
    "vcf": "text/vcard",
    "vtt": "text/vtt",
    "srt": "application/x-subrip",
    "rtf": "application/rtf",
    "ndjson": "application/x-ndjson",
    "jsonl": "application/jsonl",
    "graphql": "application/graphql",
    "sh": "application/x-sh",
    "py": "text/x-python",
    "wasm": "application/wasm",
    # images
    "svg": "image/svg+xml",
    "png": "image/png",
    "apng": "image/apng",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "jpe": "image/jpeg",
    "jfif": "image/jpeg",
    "pjpeg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
    "avif": "image/avif",
    "heic": "image/heic",
    "heif": "image/heif",
    "jxl": "image/jxl",
    "ico": "image/x-icon",
    "cur": "image/x-icon",
    "bmp": "image/bmp",
    "tif": "image/tiff",
    "tiff": "image/tiff",
    "psd": "image/vnd.adobe.photoshop",
    # fonts
    "woff": "font/woff",
    "woff2": "font/woff2",
    "ttf": "font/ttf",
    "otf": "font/otf",
    "eot": "application/vnd.ms-fontobject",
    # audio
    "mp3": "audio/mpeg",
    "m4a": "audio/mp4",
    "aac": "audio/aac",
    "oga": "audio/ogg",
    "ogg": "audio/ogg",
    "opus": "audio/ogg",
    "wav": "audio/wav",
    "weba": "audio/webm",
    "flac": "audio/flac",
    "mid": "audio/midi",
    "midi": "audio/midi",
    # video
    "mp4": "video/mp4",
    "m4v": "video/mp4",
    "webm": "video/webm",
    "ogv": "video/ogg",
    "mov": "video/quicktime",
    "avi": "video/x-msvideo",
    "mkv": "video/x-matroska",
    "mpeg": "video/mpeg",
    "mpg": "video/mpeg",
    "ts": "video/mp2t",
    "m3u8": "application/vnd.apple.mpegurl",
    "3gp": "video/3gpp",
    "flv": "video/x-flv",
    # archives and compressed data
    "zip": "application/zip",
    "gz": "application/gzip",
    "tgz": "application/gzip",
    "br": "application/x-brotli",
    "zst": "application/zstd",
    "bz2": "application/x-bzip2",
    "xz": "application/x-xz",
    "tar": "application/x-tar",
    "7z": "application/x-7z-compressed",
    "rar": "application/vnd.rar",
    "jar": "application/java-archive",
    # office and publishing
    "pdf": "application/pdf",
    "doc": "application/msword",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xls": "application/vnd.ms-excel",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "ppt": "application/vnd.ms-powerpoint",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "odt": "application/vnd.oasis.opendocument.text",
    "ods": "application/vnd.oasis.opendocument.spreadsheet",
    "odp": "application/vnd.oasis.opendocument.presentation",
    "epub": "application/epub+zip",
    "ps": "application/postscript",
    # 3D and binaries
    "glb": "model/gltf-binary",
    "gltf": "model/gltf+json",
    "stl": "model/stl",
    "obj": "model/obj",
    "bin": "application/octet-stream",
    "exe": "application/octet-stream",
    "dll": "application/octet-stream",
    "iso": "application/octet-stream",
    "dmg": "application/octet-stream",
    "deb": "application/vnd.debian.binary-package",
    "apk": "application/vnd.android.package-archive",
    "sqlite": "application/vnd.sqlite3",
}

DEFAULT_TYPE = "application/octet-stream"

# Types whose body is text in UTF-8 unless the type itself says otherwise.
_TEXT_TYPES = frozenset(
    {
        "application/json",
        "application/javascript",
        "application/xml",
        "image/svg+xml",
        "application/manifest+json",
        "application/ld+json",
    }
)
# Not text for a browser but compressing well: raw tables, fonts without built-in
# compression, uncompressed bitmaps, and text formats without a charset parameter.
_ALSO_COMPRESSIBLE = frozenset(
    {
        "application/wasm",
        "font/ttf",
        "font/otf",
        "application/vnd.ms-fontobject",
        "image/bmp",
        "image/x-icon",
        "image/vnd.microsoft.icon",
        "application/yaml",
        "application/toml",
        "application/x-subrip",
        "application/rtf",
        "application/x-ndjson",
        "application/jsonl",
        "application/graphql",
        "application/x-sh",
        "application/x-tar",
        "application/postscript",
        "application/vnd.sqlite3",
        "model/stl",
        "model/obj",
    }
)

# resolve_type runs per response with a handful of distinct arguments; the bound
# only stops a caller feeding it unbounded distinct values from growing memory.
_CACHE: dict[str, str] = {}
_CACHE_LIMIT = 512
# is_compressible's answers by the Content-Type as sent.
_COMPRESSIBLE: dict[str, bool] = {}


def media_type_for(extension: str) -> str | None:
    """The media type of ``"png"``, ``".PNG"`` or ``"logo.png"``; ``None`` if unknown."""
    dot = extension.rfind(".")
    if dot != -1:
        extension = extension[dot + 1 :]
    return MEDIA_TYPES.get(extension.lower())


def resolve_type(value: str, override: bool = False) -> str:
    """The Content-Type for ``connection.type(value)``.

    A value with ``/`` is a media type; anything else is a file extension (unknown
    ones give ``application/octet-stream``). Text types get ``; charset=utf-8``
    unless a charset is already there. ``override=True`` keeps the value verbatim.
    """
    if override:
        return validate_header_value(value)
    cached = _CACHE.get(value)
    if cached is not None:
        return cached
    if "/" in value:
        # A stray trailing ";" would otherwise become ";;" once a charset is added.
        result = validate_header_value(value).strip(" \t;")
        base, _, parameters = result.partition(";")
        if _needs_charset(base.strip(" \t").lower()) and "charset=" not in parameters.lower():
            result = f"{result}; charset=utf-8"
    else:
        found = media_type_for(value)
        result = found if found is not None else DEFAULT_TYPE
        if _needs_charset(result):
            result = f"{result}; charset=utf-8"
    if len(_CACHE) >= _CACHE_LIMIT:
        _CACHE.clear()
    _CACHE[value] = result
    return result


def _is_text(base: str) -> bool:
    return base.startswith("text/") or base in _TEXT_TYPES or base.endswith(("+json", "+xml"))


def _needs_charset(base: str) -> bool:
    # JSON is UTF-8 by definition (RFC 8259 §8.1) and its media type defines no
    # charset parameter, so the JSON family stays bare, as send() sends it.
    return _is_text(base) and base != "application/json" and not base.endswith("+json")


def is_compressible(media_type: str) -> bool:
    """Whether a body of this type is worth compressing; parameters are ignored."""
    known = _COMPRESSIBLE.get(media_type)
    if known is not None:
        return known  # asked for every response compression sees: remembered
    base = media_type.partition(";")[0].strip(" \t").lower()
    known = _is_text(base) or base in _ALSO_COMPRESSIBLE
    if len(_COMPRESSIBLE) >= _CACHE_LIMIT:
        _COMPRESSIBLE.clear()
    _COMPRESSIBLE[media_type] = known
    return known


def parse_content_type(value: str | None) -> tuple[str, dict[str, str]]:
    """``type/subtype; key=value; key="quoted"`` → (lowercased type, parameters)."""
    if not value:
        return "", {}
    media, _, rest = value.partition(";")
    params: dict[str, str] = {}
    while rest:
        item, _, rest = rest.partition(";")
        key, eq, val = item.partition("=")
        key = key.strip().lower()
        if not eq or not key:
            continue
        val = val.strip()
        if len(val) >= 2 and val[0] == val[-1] == '"':
            val = val[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        elif val.startswith('"'):
            # A quoted value holding ";" was cut at it: rejoin up to the closing quote.
            whole = val + ";" + rest
            end = whole.find('"', 1)
            if end > 0:
                val, rest = whole[1:end], whole[end + 1 :].partition(";")[2]
        params.setdefault(key, val)
    return media.strip().lower(), params
