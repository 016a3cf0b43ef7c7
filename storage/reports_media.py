"""Photos stored by Linli: a media folder (LINLI_MEDIA_DIR), files named by their content.

Photos arrive as platform references (a Telegram file id); the report feature asks the
channel for the bytes and keeps them here, so staff on any channel can see them later
and nothing depends on one platform keeping its files. Metadata that could identify the
person who took the photo (EXIF: GPS position, camera serial, owner name, time) is
removed before the file is written; the picture itself is untouched.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

# Photos are small; a larger "photo" is refused rather than filling the disk.
MAX_BYTES = 10 * 1024 * 1024

_JPEG_SOI = b"\xff\xd8"
# APP1 (EXIF, XMP), APP2 (ICC/FlashPix), APP12, APP13 (IPTC/Photoshop), COM (comments).
_DROP = {0xE1, 0xE2, 0xEC, 0xED, 0xFE}


@dataclass(frozen=True, slots=True)
class Stored:
    path: str  # relative to the media folder
    sha256: str
    size: int


def strip_metadata(content: bytes) -> bytes:
    """A JPEG without its metadata segments; other formats are returned as they are.

    Walks the segments before the image data (SOS); a malformed file is returned
    unchanged rather than guessed at.
    """
    if not content.startswith(_JPEG_SOI):
        return content
    out = bytearray(_JPEG_SOI)
    i = 2
    while i + 4 <= len(content):
        if content[i] != 0xFF:
            return content
        marker = content[i + 1]
        if marker == 0xDA:  # start of scan: the rest is image data
            out += content[i:]
            return bytes(out)
        length = int.from_bytes(content[i + 2 : i + 4], "big")
        if length < 2 or i + 2 + length > len(content):
            return content
        if marker not in _DROP:
            out += content[i : i + 2 + length]
        i += 2 + length
    return content


def save(media_dir: str | os.PathLike[str], content: bytes, *, folder: str = "reports") -> Stored:
    """Write the photo (without metadata) under ``media_dir/folder``; the same picture
    twice is one file. Written to a temporary name and renamed, so a crash never leaves
    half a file under the final name."""
    if not content or len(content) > MAX_BYTES:
        raise ValueError(f"a photo of {len(content)} bytes")
    clean = strip_metadata(content)
    digest = hashlib.sha256(clean).hexdigest()
    ext = "jpg" if clean.startswith(_JPEG_SOI) else "bin"
    relative = f"{folder}/{digest[:2]}/{digest}.{ext}"
    target = Path(media_dir) / relative
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_bytes(clean)
        os.replace(temporary, target)
    return Stored(path=relative, sha256=digest, size=len(clean))


def absolute(media_dir: str | os.PathLike[str], relative: str) -> Path:
    return (Path(media_dir) / relative).resolve()
