"""Decode one image file to fprt's canonical form: an H×W gray array, ``uint8`` (or ``float32`` in [0, 1]).

The rules, by what the file holds (the *raw value* of a pixel is what the file stores, after the
DICOM modality LUT for DICOM):

============================  =====================================================================
file holds                    canonical gray value
============================  =====================================================================
8-bit gray (PNG/JPEG/TIFF)    as is
1-bit (bilevel)               0 / 255
16-bit gray (PNG/TIFF)        full-range linear scaling 0..65535 → 0..255, rounded:
                              ``(v * 255 + 32767) // 65535`` (= round(v / 257)). This is the exact
                              inverse of the usual 8→16-bit widening ``v * 257``, so an 8-bit image
                              saved as 16-bit comes back unchanged. A 12-bit CT stored in 16 bits comes
                              out dark; pass ``window=(center, width)`` in raw units to choose a window.
32-bit integer (TIFF, ``I``)  treated as 16-bit when every value lies in 0..65535; otherwise a
                              ``window`` is required
32-bit float (TIFF, ``F``)    a ``window`` is required (fprt does not guess a float image's range)
palette, RGB, RGBA, LA        ITU-R 601-2 luma ``L = R*299/1000 + G*587/1000 + B*114/1000``, as PIL's
                              ``convert("L")`` computes it in 16-bit fixed point:
                              ``(R*19595 + G*38470 + B*7471 + 0x8000) >> 16`` (within 1 of the
                              exactly rounded value); a palette is looked up first. Alpha is
                              **ignored** (the stored colour is kept, not composited on any
                              background); so is a palette's transparency. LA keeps its L channel.
DICOM (pydicom)               stored values → modality LUT (``RescaleSlope``/``RescaleIntercept``,
                              i.e. Hounsfield units for CT) → window: ``window=(center, width)`` if
                              given, else the file's own first ``WindowCenter``/``WindowWidth``, else
                              the slice's min–max. ``MONOCHROME1`` is inverted so that bright = high.
                              Single-frame grayscale only.
============================  =====================================================================

Who decodes: single-frame, non-interlaced 8-bit gray PNGs whose chunks are whole (CRCs right, IEND last) —
every ImageCLEF slice — go to Wuffs (``pywuffs``; OpenCV's libpng for those with a ``tRNS`` chunk, or where
pywuffs is not installed): faster than PIL for them, the same pixels; everything else, and any file they refuse,
to PIL, whose checks and messages decide what counts as a bad file.

A window maps raw values linearly as DICOM PS3.3 C.11.2.1.2.1 defines it (width ≥ 1):
``y = clip((x - (c - 0.5)) / (w - 1) + 0.5, 0, 1)`` (for ``w == 1``: ``y = x > c - 0.5``), then
``uint8 = floor(255 * y + 0.5)``. A min–max window maps ``min → 0`` and ``max → 255`` (a constant
slice gives zeros).

Unsupported (a ``DataError``): CMYK, YCbCr, LAB, HSV and other modes; multi-frame files (a TIFF
stack or multi-frame DICOM is a volume, not a slice); colour DICOM; formats other than PNG, JPEG,
TIFF and DICOM (PIL is only allowed its PNG, JPEG and TIFF readers, so untrusted files never reach
other plugins). PIL's decompression-bomb guard stays on: an image over ``Image.MAX_IMAGE_PIXELS``
pixels (the same limit applies to DICOM) is a bad file. Every failure is a ``DataError`` whose message
starts with the file's path and says what is wrong with it — a file that cannot be read at all (no
read permission, deleted during the run, a dangling symbolic link or a link loop) included.

Every entry point reads the file once (``fprt.data.files.read_file``) and decodes from memory;
pass ``data=`` (the file's bytes, already read) to decode without touching the file again.
"""

from __future__ import annotations

import functools
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fprt.data.files import DICOM_SUFFIXES, IMAGE_SUFFIXES, has_dicom_magic, read_file
from fprt.errors import DataError

#: PIL readers fprt lets run on untrusted files (PIL's JPEG reader also opens MPO, the JPEG variant cameras write).
PIL_FORMATS = ("PNG", "JPEG", "TIFF")
#: PIL modes fprt decodes, and how (see the module docstring).
SUPPORTED_MODES = ("1", "L", "P", "PA", "LA", "RGB", "RGBA", "RGBX", "I;16", "I;16B", "I;16L", "I;16N", "I", "F")
DTYPES = ("uint8", "float32")

Window = tuple[float, float]


@dataclass(frozen=True)
class ImageInfo:
    """What an image's header says, read without decoding its pixels."""

    path: Path
    format: str  # "PNG", "JPEG", "TIFF", "DICOM", ...
    mode: str  # PIL mode, or "<PhotometricInterpretation> <BitsStored>-bit" for DICOM
    width: int
    height: int


# ---------------------------------------------------------------------------------------------- windows
def apply_window(values: np.ndarray, center: float, width: float, *, dtype: str = "uint8") -> np.ndarray:
    """Map raw values through the DICOM linear window (``center``, ``width``) to uint8 or float32 in [0, 1]."""
    center, width = float(center), float(width)
    if not np.isfinite(center) or not np.isfinite(width) or width < 1:
        raise ValueError(f"window width must be a finite number >= 1 (DICOM linear window), got center={center}, width={width}")
    return _unit_to(_window_unit(values, center, width), dtype)


def apply_minmax(values: np.ndarray, *, dtype: str = "uint8") -> np.ndarray:
    """Map the array's min → 0 and max → 255 (1.0 for float32) linearly; a constant array gives zeros."""
    return _unit_to(_minmax_unit(values), dtype)


def _window_unit(values, center: float, width: float) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64)
    if width == 1:
        return (x > center - 0.5).astype(np.float64)
    return np.clip((x - (center - 0.5)) / (width - 1) + 0.5, 0.0, 1.0)


def _minmax_unit(values) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64)
    lo, hi = float(x.min()), float(x.max())
    return np.zeros_like(x) if hi <= lo else (x - lo) / (hi - lo)


def scale_16bit(values: np.ndarray, *, dtype: str = "uint8") -> np.ndarray:
    """Full-range linear 0..65535 → 0..255 with rounding (``(v*255 + 32767) // 65535``), or v/65535 as float32."""
    v = np.asarray(values)
    if dtype == "float32":
        return (v.astype(np.float64) / 65535.0).astype(np.float32)
    return ((v.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def _unit_to(y: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "float32":
        return y.astype(np.float32)
    return np.floor(y * 255.0 + 0.5).astype(np.uint8)


def _check_options(window, dtype) -> Window | None:
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    if window is None:
        return None
    try:
        center, width = (float(v) for v in window)
    except (TypeError, ValueError):
        raise ValueError(f"window must be a (center, width) pair of numbers, got {window!r}") from None
    if not np.isfinite(center) or not np.isfinite(width) or width < 1:
        raise ValueError(f"window width must be a finite number >= 1 (DICOM linear window), got {window!r}")
    return center, width


# ---------------------------------------------------------------------------------------------- entry point
def decode_image(path: str | os.PathLike, *, window: Window | None = None, dtype: str = "uint8",
                 data: bytes | None = None) -> np.ndarray:
    """Decode ``path`` to an H×W C-contiguous array: ``uint8``, or ``float32`` in [0, 1] with ``dtype="float32"``.

    ``window=(center, width)`` applies a DICOM linear window to the raw values (HU for CT DICOM;
    0..65535 for 16-bit files; 0..255 for 8-bit ones). Without it the rules in this module's
    docstring apply. ``data``: the file's bytes when the caller has read them already (``path`` then
    only names the file in messages and picks the format by suffix). Any problem with the file
    raises ``DataError`` naming it.
    """
    window = _check_options(window, dtype)
    path = path if isinstance(path, Path) else Path(path)  # the scoring pipeline's paths are Paths already
    data = _bytes_of(path, data)
    if _looks_like_dicom(path, data):
        return _decode_dicom(path, window, dtype, data)
    return _decode_pil(path, window, dtype, data)


def read_file_bytes(path: str | os.PathLike) -> bytes:
    """The whole content of an image file, or ``DataError`` naming it and why (``fprt.data.files.read_file``)."""
    return read_file(path)


def _bytes_of(path: Path, data: bytes | None) -> bytes:
    if data is None:
        return read_file(path)
    if not data:
        raise DataError(f"{path}: empty file (0 bytes)")
    return data


def is_dicom(path: str | os.PathLike) -> bool:
    """True for a ``.dcm``/``.dicom`` file or one carrying the ``DICM`` preamble (what ``decode_image`` reads with pydicom)."""
    from fprt.data.files import has_dicom_preamble

    path = Path(path)
    suffix = path.suffix.lower()
    return suffix in DICOM_SUFFIXES or (suffix not in IMAGE_SUFFIXES and has_dicom_preamble(path))


def _looks_like_dicom(path: Path, data: bytes | None = None) -> bool:
    suffix = path.suffix.lower()
    if suffix in DICOM_SUFFIXES:
        return True
    return suffix not in IMAGE_SUFFIXES and has_dicom_magic(_bytes_of(path, data))


def _bomb_limit() -> int | None:
    from PIL import Image

    return Image.MAX_IMAGE_PIXELS


def _check_pixels(path: Path, width: int, height: int) -> None:
    limit = _bomb_limit()
    if limit is not None and width * height > limit:
        raise DataError(
            f"{path}: image of {width}x{height} = {width * height} pixels exceeds PIL's decompression-bomb "
            f"limit (Image.MAX_IMAGE_PIXELS = {limit}); treated as a bad file"
        )


def _wrap(path: Path, what: str, exc: BaseException) -> DataError:
    detail = str(exc).strip() or type(exc).__name__
    return DataError(f"{path}: {what}: {detail} ({type(exc).__name__})")


# ---------------------------------------------------------------------------------------------- PIL formats
def _open_pil(path: Path, data: bytes | None = None):
    from PIL import Image, UnidentifiedImageError

    try:
        return Image.open(io.BytesIO(_bytes_of(path, data)), formats=PIL_FORMATS)
    except UnidentifiedImageError:
        raise DataError(
            f"{path}: not an image fprt can read (no PNG, JPEG or TIFF signature; a text or other file named like an image?)"
        ) from None
    except Image.DecompressionBombError as exc:
        raise _wrap(path, "decompression-bomb guard refused the image", exc) from None
    except MemoryError:
        raise
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError, struct.error, ... on bad headers
        raise _wrap(path, "unreadable image header", exc) from None


def _decode_pil(path: Path, window: Window | None, dtype: str, data: bytes | None = None) -> np.ndarray:
    raw = _png_gray8_fast(path, data) if data is not None else None
    if raw is not None:
        return _raw_to_canonical(path, raw, "8bit", window, dtype)
    im = _open_pil(path, data)
    with im:
        fmt = im.format or "image"
        _check_pixels(path, *im.size)
        frames = getattr(im, "n_frames", 1)
        if frames > 1:
            raise DataError(f"{path}: {fmt} with {frames} frames/pages; fprt reads single 2-D images (one slice per file)")
        if im.mode not in SUPPORTED_MODES:
            raise DataError(
                f"{path}: unsupported image mode {im.mode!r} ({fmt}); fprt decodes gray, palette, RGB(A), "
                f"16-bit and (with a window) 32-bit images: modes {', '.join(SUPPORTED_MODES)}"
            )
        try:
            im.load()
            raw, kind = _pil_to_raw(im)
        except MemoryError:
            raise
        except DataError:
            raise
        except Exception as exc:  # truncated data, bad CRC, zlib errors
            raise _wrap(path, f"cannot decode {fmt} pixel data (truncated or corrupt?)", exc) from None
    if raw.ndim != 2:
        raise DataError(f"{path}: decoded to shape {raw.shape}, expected a 2-D image")
    out = _raw_to_canonical(path, raw, kind, window, dtype)
    return np.require(out, requirements=("C", "W"))  # PIL's buffers come back read-only: own a writable copy


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_gray8_fast(path: Path, data: bytes) -> np.ndarray | None:
    """The common case — a single-frame, non-interlaced 8-bit gray PNG, as every ImageCLEF slice is — decoded by
    Wuffs (0.42 ms per 256² slice, checksums verified, against OpenCV's libpng 0.51 and PIL's 0.57, measured): the
    same pixels, PNG being lossless. A file with a ``tRNS`` chunk goes to OpenCV (Wuffs would composite the
    transparent gray level onto black; fprt ignores transparency), as does every file where pywuffs is not installed.

    None for anything else, and whenever the decoder refuses the file (truncated, zlib or checksum error): PIL
    then decodes it or names the problem, so what counts as a bad file is decided as before."""
    if len(data) < 33 or not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return None
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    depth, colour, interlace = data[24], data[25], data[28]
    if depth != 8 or colour != 0 or interlace != 0:
        return None
    limit = _bomb_limit()
    if limit is not None and width * height > limit:  # PIL's guard and its messages decide
        return None
    kinds = _png_chunk_kinds(data)
    if kinds is None:  # damaged or animated: PIL decides (and libpng prints nothing)
        return None
    decode = _gray8_decoder() if b"tRNS" not in kinds else None
    raw = (decode or _opencv_gray8)(data)
    if raw is None or raw.dtype != np.uint8 or raw.shape[:2] != (height, width) or raw.size != height * width:
        return None
    return raw.reshape(height, width)


def _opencv_gray8(data: bytes) -> np.ndarray | None:
    try:
        import cv2
    except ImportError:  # pragma: no cover - opencv-python-headless is a dependency
        return None
    return cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)


@functools.lru_cache(maxsize=1)
def _gray8_decoder():
    """bytes → H×W×1 uint8 by Wuffs (``pywuffs``; it releases the GIL), or None (pywuffs missing: OpenCV decodes)."""
    try:
        from pywuffs import ImageDecoderQuirks, ImageDecoderType, PixelFormat
        from pywuffs.aux import ImageDecoder, ImageDecoderConfig
    except ImportError:
        return None
    config = ImageDecoderConfig()
    config.enabled_decoders = [ImageDecoderType.PNG]
    config.pixel_format = PixelFormat.Y
    # pywuffs turns checksums off for PNG unless told: verify IHDR's and IDAT's CRC-32 and the zlib stream's
    # Adler-32, as libpng and PIL do (else a stream changed under a recomputed CRC decodes to other pixels)
    config.quirks = {ImageDecoderQuirks.IGNORE_CHECKSUM: 0}

    def decode(data: bytes) -> np.ndarray | None:
        result = ImageDecoder(config).decode(data)  # a decoder per call: as fast, and safe on any thread
        return None if result.error_message else result.pixbuf

    return decode


def _png_chunk_kinds(data: bytes) -> set[bytes] | None:
    """The kinds of chunk in a PNG when every chunk is whole with its CRC right, pixel data present and IEND
    last, and there is no animation (``acTL``); else None.

    IDAT chunks' CRCs (nearly all of the file's bytes) are left to the decoder, which checks them and the zlib
    stream's Adler-32 anyway (Wuffs with checksums on, libpng always): a bad one makes it refuse the file."""
    import zlib

    pos, n, kinds = 8, len(data), set()
    while pos + 12 <= n:
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if end > n:
            return None
        if kind != b"IDAT" and zlib.crc32(data[pos + 4 : end - 4]) != int.from_bytes(data[end - 4 : end], "big"):
            return None
        if kind == b"acTL":
            return None
        kinds.add(kind)
        if kind == b"IEND":
            return kinds if b"IDAT" in kinds and end == n else None
        pos = end
    return None


def _pil_to_raw(im) -> tuple[np.ndarray, str]:
    """(raw 2-D array, kind) where kind is "8bit", "16bit", "int32" or "float"."""
    mode = im.mode
    if mode == "L":
        return np.asarray(im, dtype=np.uint8), "8bit"
    if mode == "LA":
        return np.asarray(im.getchannel("L"), dtype=np.uint8), "8bit"
    if mode in ("1", "P", "PA", "RGB", "RGBA", "RGBX"):
        if mode in ("P", "PA"):
            im = im.convert("RGB")  # palette lookup; transparency ignored
        return np.asarray(im.convert("L"), dtype=np.uint8), "8bit"
    if mode.startswith("I;16"):
        return np.asarray(im).astype(np.uint16, copy=False), "16bit"
    if mode == "I":
        return np.asarray(im, dtype=np.int32), "int32"
    if mode == "F":
        return np.asarray(im, dtype=np.float32), "float"
    raise DataError(f"unsupported image mode {mode!r}")  # unreachable: checked before load


def _raw_to_canonical(path: Path, raw: np.ndarray, kind: str, window: Window | None, dtype: str) -> np.ndarray:
    if window is not None:
        if kind == "float" and not np.isfinite(raw).all():
            raise DataError(f"{path}: float image holds NaN or infinite values")
        return apply_window(raw, *window, dtype=dtype)
    if kind == "8bit":
        return raw if dtype == "uint8" else (raw.astype(np.float32) / np.float32(255.0))
    if kind == "16bit":
        return scale_16bit(raw, dtype=dtype)
    if kind == "int32":
        lo, hi = int(raw.min()), int(raw.max())
        if lo >= 0 and hi <= 65535:
            return scale_16bit(raw, dtype=dtype)
        raise DataError(
            f"{path}: 32-bit integer image with values {lo}..{hi} outside 0..65535; pass window=(center, width) "
            "to choose how raw values map to gray"
        )
    raise DataError(
        f"{path}: 32-bit float image (mode 'F'); fprt does not guess a float image's range: pass "
        "window=(center, width) in its raw units, or convert it to 8- or 16-bit"
    )


# ---------------------------------------------------------------------------------------------- DICOM
def _import_pydicom():
    try:
        import pydicom
    except ImportError as exc:
        from fprt.errors import MissingDependencyError

        raise MissingDependencyError("reading DICOM files needs pydicom: pip install pydicom") from exc
    return pydicom


def _read_dicom(path: Path, *, pixels: bool = True, data: bytes | None = None):
    pydicom = _import_pydicom()
    data = _bytes_of(path, data)
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=not has_dicom_magic(data), stop_before_pixels=not pixels)
    except MemoryError:
        raise
    except Exception as exc:
        raise _wrap(path, "not a readable DICOM file", exc) from None
    return ds


def _check_dicom_header(path: Path, ds, *, pixels: bool = True) -> tuple[str, int, int]:
    if pixels and "PixelData" not in ds:
        raise DataError(f"{path}: DICOM file has no PixelData (not an image, or only a header)")
    try:
        rows, cols = int(ds.Rows), int(ds.Columns)
    except Exception:
        raise DataError(f"{path}: DICOM file lacks Rows/Columns") from None
    _check_pixels(path, cols, rows)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        raise DataError(f"{path}: multi-frame DICOM ({frames} frames); fprt reads single 2-D slices")
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise DataError(f"{path}: colour DICOM (PhotometricInterpretation {photometric}) is not supported; fprt reads grayscale slices")
    if int(ds.get("SamplesPerPixel", 1) or 1) != 1:
        raise DataError(f"{path}: DICOM with {ds.SamplesPerPixel} samples per pixel; fprt reads grayscale slices")
    return photometric, rows, cols


def read_dicom(path: str | os.PathLike) -> np.ndarray:
    """A DICOM slice's values after the modality LUT (``stored * RescaleSlope + RescaleIntercept``: HU for CT), float64 H×W."""
    path = Path(path)
    return _dicom_values(path, read_file(path))[0]


def _dicom_values(path: Path, data: bytes | None = None):
    ds = _read_dicom(path, data=data)
    photometric, rows, cols = _check_dicom_header(path, ds)
    try:
        from pydicom.pixels import apply_modality_lut

        stored = ds.pixel_array
        values = apply_modality_lut(stored, ds)
    except MemoryError:
        raise
    except Exception as exc:  # truncated PixelData, compressed data without a decoder plugin, ...
        raise _wrap(path, "cannot decode DICOM pixel data", exc) from None
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (rows, cols):
        raise DataError(f"{path}: DICOM pixel data has shape {values.shape}, expected {rows}x{cols}")
    return values, ds, photometric


def dicom_window(ds) -> Window | None:
    """The file's own first ``WindowCenter``/``WindowWidth`` (None when absent or unusable)."""
    center, width = ds.get("WindowCenter"), ds.get("WindowWidth")
    if center is None or width is None:
        return None

    def first(v):
        try:
            return float(v[0]) if isinstance(v, (list, tuple)) or type(v).__name__ == "MultiValue" else float(v)
        except (TypeError, ValueError, IndexError):
            return None

    c, w = first(center), first(width)
    if c is None or w is None or not np.isfinite(c) or not np.isfinite(w) or w < 1:
        return None
    return c, w


def _decode_dicom(path: Path, window: Window | None, dtype: str, data: bytes | None = None) -> np.ndarray:
    values, ds, photometric = _dicom_values(path, data)
    window = window or dicom_window(ds)
    out = _window_unit(values, *window) if window else _minmax_unit(values)
    if photometric == "MONOCHROME1":
        out = 1.0 - out
    return np.ascontiguousarray(_unit_to(out, dtype))


# ---------------------------------------------------------------------------------------------- header only
def inspect_image(path: str | os.PathLike, *, data: bytes | None = None) -> ImageInfo:
    """Format, mode and size from the header, without decoding the pixels (``DataError`` when unreadable)."""
    path = Path(path)
    data = _bytes_of(path, data)
    if _looks_like_dicom(path, data):
        ds = _read_dicom(path, pixels=False, data=data)
        photometric, rows, cols = _check_dicom_header(path, ds, pixels=False)
        bits = ds.get("BitsStored", ds.get("BitsAllocated", "?"))
        return ImageInfo(path, "DICOM", f"{photometric} {bits}-bit", int(cols), int(rows))
    im = _open_pil(path, data)
    with im:
        return ImageInfo(path, im.format or "?", im.mode, im.size[0], im.size[1])
