"""Writers for the data-layer tests: small images, dataset trees, DICOM slices and bad files.

Every file a data test reads is written here, by the test, with known content.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image


def gray(value: int, size: int = 8) -> np.ndarray:
    return np.full((size, size), value % 256, dtype=np.uint8)


def pattern(seed: int, shape=(12, 10)) -> np.ndarray:
    """A deterministic uint8 image unique to ``seed``."""
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def write_png(path: Path, array: np.ndarray, **kwargs) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **kwargs)
    return path


def make_images(folder: Path, n: int, prefix: str = "img", *, size: int = 8, start: int = 0) -> list[Path]:
    """``n`` tiny gray PNGs ``{prefix}_{i:03d}.png`` whose pixel value is ``start + i``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return [write_png(folder / f"{prefix}_{start + i:03d}.png", gray(start + i, size)) for i in range(n)]


def make_tree(root: Path, spec: dict[str, int]) -> Path:
    """Folders relative to ``root`` with the given number of images each (prefix = folder path)."""
    for rel, n in spec.items():
        prefix = rel.replace("/", "_").lower()
        make_images(Path(root) / rel, n, prefix)
    return Path(root)


def subsets_spec(k: int, per_class: int = 2, *, gen_prefix: str = "gen_", unknown: int = 0) -> dict[str, int]:
    spec = {}
    for i in range(1, k + 1):
        spec[f"real/t{i}"] = per_class
        spec[f"generated/{gen_prefix}t{i}"] = per_class + 1
    if unknown:
        spec["generated_unknown"] = unknown
    return spec


# ---------------------------------------------------------------------------------------------- DICOM
def write_dicom(
    path: Path,
    stored: np.ndarray,
    *,
    slope: float | None = None,
    intercept: float | None = None,
    window: tuple[float, float] | None = None,
    photometric: str = "MONOCHROME2",
    bits_stored: int | None = None,
    preamble: bool = True,
) -> Path:
    """A single-frame CT slice with the given stored values (uint16 or int16), written with pydicom."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    stored = np.asarray(stored)
    signed = stored.dtype == np.int16
    assert stored.dtype in (np.uint16, np.int16) and stored.ndim == 2
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "CT"
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = 16
    ds.BitsStored = bits_stored or 16
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if signed else 0
    if slope is not None:
        ds.RescaleSlope = slope
        ds.RescaleIntercept = intercept or 0
        ds.RescaleType = "HU"
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    ds.PixelData = stored.astype(stored.dtype.newbyteorder("<")).tobytes()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if preamble:
        ds.save_as(path, enforce_file_format=True)
    else:
        ds.save_as(path, implicit_vr=False, little_endian=True)
    return path


# ---------------------------------------------------------------------------------------------- bad files
def truncated_png(path: Path, seed: int = 0) -> Path:
    buf = io.BytesIO()
    Image.fromarray(pattern(seed, (64, 64))).save(buf, "PNG")
    data = buf.getvalue()
    path.write_bytes(data[: len(data) // 2])
    return path


def text_as_png(path: Path) -> Path:
    path.write_text("image_id,label\nnot,an image\n")
    return path


def empty_file(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def cmyk_jpeg(path: Path) -> Path:
    Image.new("CMYK", (8, 8), (10, 20, 30, 40)).save(path, "JPEG")
    return path


def float_tiff(path: Path) -> Path:
    Image.fromarray(np.linspace(-1000, 1000, 64, dtype=np.float32).reshape(8, 8)).save(path, "TIFF")
    return path


def truncated_dicom(path: Path) -> Path:
    write_dicom(path, np.arange(64 * 64, dtype=np.uint16).reshape(64, 64))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 3000])
    return path
