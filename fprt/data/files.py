"""Which files are images, how they are listed, and what an image's id is.

- Image files are recognised by suffix, case-insensitive: ``.png .jpg .jpeg .tif .tiff .dcm .dicom``.
  A file with no suffix is a DICOM image when it carries the ``DICM`` magic at byte 128 (the
  DICOM Part 10 preamble); those are the only files opened while listing.
- Hidden files (names starting with ``.``) and everything else (``labels.csv``, ``README``,
  ``Thumbs.db``) are ignored.
- Lists are sorted by file name with Python's string order (code points), so every run, machine and
  file system sees the same order.
- An image's id is its file name without the extension (``img_0001.png`` → ``img_0001``).
- A symbolic link with an image name is listed even when it cannot be followed (its target is
  missing, or it is a link loop): it is a *bad file* then, reported under the stop/skip rule like a
  corrupt image, never dropped without a word.
- ``read_file`` is the one way fprt reads an image file's bytes: every way a read can fail (no read
  permission, deleted during the run, dangling link, link loop, a folder or device in place of a
  file, an empty file) is a ``DataError`` naming the file and saying which.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from pathlib import Path

from fprt.errors import DataError

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


def has_dicom_magic(data: bytes) -> bool:
    """True when the bytes carry ``DICM`` at offset 128 (a DICOM Part 10 file held in memory)."""
    return data[_DICOM_MAGIC_OFFSET:_DICOM_MAGIC_OFFSET + len(_DICOM_MAGIC)] == _DICOM_MAGIC


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
                    if _is_broken_link(entry) and is_image_name(name):
                        found.append(name)  # a bad file, reported by the checks: never dropped silently
                    continue
            except OSError:
                if is_image_name(name):
                    found.append(name)
                continue
            suffix = os.path.splitext(name)[1]
            if suffix:
                if suffix.lower() in IMAGE_SUFFIXES:
                    found.append(name)
            elif has_dicom_preamble(entry.path):
                found.append(name)
    return [folder / name for name in sorted(found)]


def _is_broken_link(entry: os.DirEntry) -> bool:
    """True for a symbolic link that cannot be followed (missing target, loop, no permission)."""
    if not entry.is_symlink():
        return False
    try:
        os.stat(entry.path)
    except OSError:
        return True
    return False


def unreadable_reason(path: str | os.PathLike, exc: OSError) -> str:
    """Why ``path`` cannot be read, in words (without the path): permission, vanished, dangling link, loop, ..."""
    path = Path(path)
    code = exc.errno
    if code in (errno.EACCES, errno.EPERM):
        return "no read permission (permission denied)"
    if code == errno.ELOOP:
        return "symbolic link loop (the link never reaches a file)"
    if code == errno.ENOENT:
        if os.path.islink(path):
            try:
                target = os.readlink(path)
            except OSError:
                target = "?"
            return f"dangling symbolic link (its target {target} does not exist)"
        return "no such file (deleted or moved while fprt was running?)"
    if code == errno.EISDIR:
        return "a folder, not a file"
    if code == errno.ENOTDIR:
        return "a part of its path is not a folder"
    detail = exc.strerror or str(exc) or type(exc).__name__
    return f"cannot read the file ({detail}; {type(exc).__name__})"


def _open_regular(path: str | os.PathLike):
    """The file opened for reading, after checking it is a regular, non-empty file (``DataError`` otherwise).

    ``stat`` first (following links), so a FIFO or device named like an image is refused before an
    ``open`` that could block on it."""
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise DataError(f"{path}: not a regular file")
        if st.st_size == 0:
            raise DataError(f"{path}: empty file (0 bytes)")
        return open(path, "rb")
    except OSError as exc:
        raise DataError(f"{path}: {unreadable_reason(path, exc)}") from None


def read_file(path: str | os.PathLike) -> bytes:
    """Every byte of the image file at ``path``; a ``DataError`` naming it when it cannot be read."""
    fh = _open_regular(path)
    try:
        with fh:
            data = fh.read()
    except OSError as exc:
        raise DataError(f"{path}: {unreadable_reason(path, exc)}") from None
    if not data:
        raise DataError(f"{path}: empty file (0 bytes; emptied while fprt was running?)")
    return data


def file_digest(path: str | os.PathLike) -> bytes:
    """The 32-byte SHA-256 of the file's contents (``hashlib.file_digest``); ``DataError`` like ``read_file``."""
    path = Path(path)
    fh = _open_regular(path)
    try:
        with fh:
            return hashlib.file_digest(fh, "sha256").digest()
    except OSError as exc:
        raise DataError(f"{path}: {unreadable_reason(path, exc)}") from None


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
