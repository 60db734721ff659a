"""fprt's data layer: dataset layouts, image decoding, the streaming loader, bad-file checks, labels.

    from fprt.data import discover, decode_image, iter_batches, check_files, screen_files, read_labels

- ``layout``   — ``discover(root) -> Layout``: which ImageCLEFmedical GANs layout a folder holds
- ``files``    — which files are images, sorted listings, ``image_id`` (file name without extension),
  ``read_file`` / ``file_digest`` (the one way an image file is read: unreadable, vanished, dangling
  or looping files are a ``DataError`` saying which)
- ``decode``   — ``decode_image(path) -> H×W uint8`` (PNG 8/16-bit, palette, RGB(A), JPEG, TIFF, DICOM)
- ``loader``   — ``iter_batches(paths, preprocess, ...)``: ordered batches, bounded memory, a thread pool
- ``badfiles`` — ``check_files``, ``screen_files`` (the stop/skip policy), ``write_bad_file_report``
- ``labels``   — ``read_labels(path) -> {image_id: label}`` (run.csv / labels.csv format)
- ``summary``  — ``summarize(root) -> dict`` and ``print_summary`` (``fprt info``)

Names are resolved on first use, so ``import fprt.data`` costs nothing until one is needed.
"""

from __future__ import annotations

from fprt.lazy import lazy_exports

_EXPORTS = {
    "BadFile": ".badfiles",
    "BadFilesError": ".badfiles",
    "Batch": ".loader",
    "IMAGE_SUFFIXES": ".files",
    "ImageInfo": ".decode",
    "Layout": ".layout",
    "apply_window": ".decode",
    "check_files": ".badfiles",
    "decode_image": ".decode",
    "discover": ".layout",
    "file_digest": ".files",
    "image_id": ".files",
    "inspect_image": ".decode",
    "is_image_file": ".files",
    "iter_batches": ".loader",
    "list_images": ".files",
    "print_summary": ".summary",
    "read_dicom": ".decode",
    "read_file": ".files",
    "read_labels": ".labels",
    "screen_files": ".badfiles",
    "summarize": ".summary",
    "write_bad_file_report": ".badfiles",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
