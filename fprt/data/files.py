"""Which files are images, how they are listed, and what an image's id is.

- Image files are recognised by suffix, case-insensitive: ``.png .jpg .jpeg .tif .tiff .dcm .dicom``.
  A file with no suffix is a DICOM image when it carries the ``DICM`` magic at byte 128 (the
  DICOM Part 10 preamble); those are the only files opened while listing.
- Hidden files (names starting with ``.``) and everything else (``labels.csv``, ``README``,
  ``Thumbs.db``) are ignored.
- Lists are sorted by file name with Python's string order (code points), so every run, machine and
  file system sees the same order.
- An image's id is its file name without the extension (``img_0001.png`` → ``img_0001``).
"""

from __future__ import annotations

import os
from pathlib import Path

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".dcm", ".dicom")
DICOM_SUFFIXES = (".dcm", ".dicom")
_DICOM_MAGIC_OFFSET = 128
_DICOM_MAGIC = b"DICM"


def has_dicom_preamble(path: str | os.PathLike) -> bool:
    """True when the file carries ``DICM`` at byte 128 (a DICOM Part 10 file). Reads 132 bytes."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(_DICOM_MAGIC_OFFSET + len(_DICOM_MAGIC))
    except OSError:
        return False
    return head[_DICOM_MAGIC_OFFSET:] == _DICOM_MAGIC


def is_image_name(name: str) -> bool:
    """True when ``name`` has an image suffix and is not hidden (no file access)."""
    if name.startswith("."):
        return False
    return os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES


def is_image_file(path: str | os.PathLike) -> bool:
    """True for a visible regular file with an image suffix, or an extension-less DICOM file."""
    path = Path(path)
    if path.name.startswith(".") or not path.is_file():
        return False
    if path.suffix:
        return path.suffix.lower() in IMAGE_SUFFIXES
    return has_dicom_preamble(path)


def list_images(folder: str | os.PathLike) -> list[Path]:
    """The image files directly inside ``folder`` (not recursive), sorted by name."""
    folder = Path(folder)
    found = []
    with os.scandir(folder) as entries:
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue
            try:
                if not entry.is_file():  # follows symlinks
                    continue
            except OSError:
                continue
            suffix = os.path.splitext(name)[1]
            if suffix:
                if suffix.lower() in IMAGE_SUFFIXES:
                    found.append(name)
            elif has_dicom_preamble(entry.path):
                found.append(name)
    return [folder / name for name in sorted(found)]


def list_subfolders(folder: str | os.PathLike) -> list[Path]:
    """The visible subfolders of ``folder``, sorted by name."""
    folder = Path(folder)
    out = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_dir():
                    out.append(entry.name)
            except OSError:
                continue
    return [folder / name for name in sorted(out)]


def image_id(path: str | os.PathLike) -> str:
    """An image's id: its file name without the extension (``a/b/img_01.png`` → ``img_01``)."""
    name = Path(path).name
    suffix = os.path.splitext(name)[1]
    return name[: -len(suffix)] if suffix else name
