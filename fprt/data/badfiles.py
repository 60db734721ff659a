"""Bad image files: find them all up front, then stop or skip (``--on-error stop|skip``).

A bad file (0 bytes, not an image, truncated or corrupt, unsupported mode, unreadable DICOM, over
the decompression-bomb limit, no read permission, deleted during the run, a dangling symbolic link or
a link loop) must never crash a run half-way. The policy:

- ``on_error="stop"`` (default): ``screen_files`` checks every file *before any model work* and raises
  one ``BadFilesError`` listing every bad file with its reason.
- ``on_error="skip"``: the bad files are left out and written to a CSV report (``path,reason``).

``check_files`` checks by decoding each file completely (``level="decode"``, the default): the very
work the loader does, so a file that passes cannot fail later in the run. ``level="verify"`` is a
cheaper pre-pass (header, PIL's ``verify()`` — for PNG the CRC of every chunk up to ``IEND`` — and
for DICOM the header plus the length of its pixel data); it misses damage inside a compressed
stream whose checksums still match and 32-bit integer images whose values fall outside 0..65535,
which the loader then reports as a ``BadFilesError`` mid-run.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

from fprt.errors import DataError

ON_ERROR = ("stop", "skip")
CHECK_LEVELS = ("decode", "verify")


@dataclass(frozen=True)
class BadFile:
    """One unusable image file and why (the reason does not repeat the path)."""

    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{printable_path(self.path)}: {self.reason}"


def printable_path(path: str | os.PathLike) -> str:
    """``path`` as text any console and UTF-8 file can take: bytes of a name that are not UTF-8 appear as ``\\xNN``."""
    return os.fsencode(str(path)).decode("utf-8", "backslashreplace")


class BadFilesError(DataError):
    """One or more image files cannot be used; ``.bad`` lists every one of them."""

    def __init__(self, bad: Sequence[BadFile], *, total: int | None = None, when: str = "before any model work"):
        self.bad = list(bad)
        self.total = total
        of = f" of {total}" if total is not None else ""
        lines = "\n  ".join(str(b) for b in self.bad)
        super().__init__(
            f"{len(self.bad)} bad image file(s){of}; stopped {when} "
            f"(--on-error skip leaves them out and lists them in a report):\n  {lines}"
        )

    def __reduce__(self):  # picklable across processes with its list intact
        return (_rebuild_bad_files_error, (self.bad, self.total))


def _rebuild_bad_files_error(bad, total):
    return BadFilesError(bad, total=total)


def reason_of(path: Path, exc: DataError) -> str:
    """The message of ``exc`` without the leading ``"<path>: "`` that fprt's decode errors carry."""
    text = str(exc)
    prefix = f"{path}: "
    return text[len(prefix):] if text.startswith(prefix) else text


def check_one(path: str | os.PathLike, *, level: str = "decode", window=None, data: bytes | None = None) -> BadFile | None:
    """None when ``path`` is usable, else a ``BadFile`` saying why.

    The file is read once (``data``: its bytes, when the caller has read them already); a file that
    cannot be read (permission, vanished, dangling link, link loop) is a bad file like a corrupt one.
    """
    from fprt.data.decode import decode_image
    from fprt.data.files import read_file

    path = Path(path)
    try:
        data = read_file(path) if data is None else data
        if level == "decode":
            decode_image(path, window=window, data=data)
        else:
            _verify(path, data, window)
    except DataError as exc:
        return BadFile(path, reason_of(path, exc))
    return None


def _verify(path: Path, data: bytes, window=None) -> None:
    from fprt.data import decode

    info = decode.inspect_image(path, data=data)  # size, mode, bomb guard, DICOM header
    if info.format == "DICOM":
        ds = decode._read_dicom(path, data=data)
        decode._check_dicom_header(path, ds)
        expected = int(ds.Rows) * int(ds.Columns) * ((int(ds.get("BitsAllocated", 8)) + 7) // 8)
        data = ds.get("PixelData")
        transfer = str(getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", ""))
        compressed = transfer not in ("", "1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2")
        if data is None or (not compressed and len(data) < expected):
            got = 0 if data is None else len(data)
            raise DataError(f"{path}: DICOM pixel data holds {got} bytes, expected {expected} (truncated?)")
        return
    decode._check_pixels(path, info.width, info.height)  # the decode's pixel limit, at verify level too
    if info.mode not in decode.SUPPORTED_MODES:
        raise DataError(f"{path}: unsupported image mode {info.mode!r} ({info.format})")
    if info.mode == "F" and window is None:
        raise DataError(f"{path}: 32-bit float image (mode 'F'); fprt does not guess a float image's range: pass a window")
    im = decode._open_pil(path, data)
    with im:
        frames = getattr(im, "n_frames", 1)
        if frames > 1:
            raise DataError(f"{path}: {info.format} with {frames} frames/pages; fprt reads single 2-D images")
        try:
            im.verify()
        except MemoryError:
            raise
        except Exception as exc:
            raise decode._wrap(path, f"{info.format} verification failed (truncated or corrupt?)", exc) from None


def check_files(
    paths: Iterable[str | os.PathLike],
    workers: int | None = None,
    *,
    level: str = "decode",
    window=None,
    progress: bool | Callable[[int], None] = False,
    desc: str | None = None,
) -> list[BadFile]:
    """Every bad file among ``paths``, in input order (empty list when all are usable).

    Runs ``workers`` threads (default: the loader's default); ``level`` is ``"decode"`` (complete
    decode, the default) or ``"verify"`` (cheaper, see the module docstring).
    """
    from fprt.data.loader import _map_ordered

    if level not in CHECK_LEVELS:
        raise ValueError(f"level must be one of {CHECK_LEVELS}, got {level!r}")
    paths = [Path(p) for p in paths]
    bad: list[BadFile] = []
    for chunk_bad in _map_ordered(_check_chunk, paths, workers=workers, args=(level, window), progress=progress, desc=desc or "check images"):
        bad += chunk_bad
    return bad


def _check_chunk(chunk: list[tuple[int, Path]], level: str, window) -> list[BadFile]:
    return [b for _, p in chunk if (b := check_one(p, level=level, window=window)) is not None]


def screen_files(
    paths: Iterable[str | os.PathLike],
    on_error: str = "stop",
    *,
    report: str | os.PathLike | None = None,
    workers: int | None = None,
    level: str = "decode",
    window=None,
    progress: bool | Callable[[int], None] = False,
) -> tuple[list[Path], list[BadFile]]:
    """Apply the bad-file policy before any model work: ``(good paths, bad files)``.

    ``on_error="stop"`` raises one ``BadFilesError`` listing every bad file; ``"skip"`` returns the
    good ones and, when ``report`` is given, writes the bad ones there (written even when empty, so
    a run folder always says how many files were skipped).
    """
    check_on_error(on_error)
    paths = [Path(p) for p in paths]
    bad = check_files(paths, workers, level=level, window=window, progress=progress)
    return apply_bad_file_policy(paths, bad, on_error, report)


def check_on_error(on_error: str) -> None:
    """``ValueError`` unless ``on_error`` is one of ``ON_ERROR``."""
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")


def apply_bad_file_policy(paths: Sequence[Path], bad: Sequence[BadFile], on_error: str,
                          report: str | os.PathLike | None = None) -> tuple[list[Path], list[BadFile]]:
    """The policy once the bad files are known (however they were found): ``stop`` raises one
    ``BadFilesError`` listing them all; otherwise the report (if asked for) is written and
    ``(good paths, bad files)`` returned."""
    bad = list(bad)
    if bad and on_error == "stop":
        raise BadFilesError(bad, total=len(paths))
    if report is not None:
        write_bad_file_report(bad, report)
    bad_set = {b.path for b in bad}
    return [p for p in paths if p not in bad_set], bad


def write_bad_file_report(bad: Iterable[BadFile], path: str | os.PathLike) -> Path:
    """Write ``path,reason`` rows (with that header) to ``path`` atomically; returns the path."""
    from fprt.io import atomic_open

    with atomic_open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "reason"])
        for b in bad:  # a path that is not UTF-8 keeps its odd bytes as \xNN
            writer.writerow([printable_path(b.path), b.reason])
    return Path(path)


def read_bad_file_report(path: str | os.PathLike) -> list[BadFile]:
    """Read a report written by ``write_bad_file_report``."""
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows or rows[0] != ["path", "reason"]:
        raise DataError(f"{path}: not a bad-file report (expected the header 'path,reason')")
    return [BadFile(Path(r[0]), r[1]) for r in rows[1:]]
