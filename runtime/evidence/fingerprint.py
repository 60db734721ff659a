"""Generator fingerprints: the periodic trace a generator leaves in the high-frequency noise residual.

Upsampling layers (transposed convolutions, nearest/bilinear upsampling grids) print a faint pattern
locked to the pixel grid into every image a generator makes, whatever the content: a checkerboard of
period 2, a grid of period 4 or 8, narrow peaks in the spectrum (Marra et al. 2019, "Do GANs leave
artificial fingerprints?"; Frank et al. 2020, frequency analysis; Corvi et al. 2023 for diffusion
models). The content is removed first: the **noise residual** is the image minus a denoised copy
(a 3×3 median filter). Then, per image:

- ``tile``: the residual's mean over the period-aligned ``TILE``×``TILE`` tiles of the image
  (``TILE²`` numbers): any trace whose period divides ``TILE`` (1, 2, 4, 8 px) adds up tile after
  tile while content and noise average out;
- ``spectrum``: the residual's power spectrum (``|rfft2|²``), pooled onto a fixed
  ``SPECTRUM_BINS``×(``SPECTRUM_BINS``/2) grid of spatial frequencies as the log of the mean power
  per cell (broad energy) and the log of the highest power per cell (narrow peaks, e.g. a grating
  of any period and angle);
- ``level``: log energy of the residual (how much noise the generator produces).

A linear probe on these features (``fprt.runtime.evidence.subsets``) tells the generators apart even
when their subsets' content is the same. ``pixels_small`` is the other pixel feature: the image
area-averaged to ``SMALL``×``SMALL`` (the content, for the raw-pixel probe).

Everything is per image in NumPy and OpenCV (median via OpenCV, FFT via ``numpy.fft.rfft2``), so a row never
depends on the batch it was computed in: the scoring pipeline computes them in its one decode (``PixelFeatureSpec``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property

import numpy as np

TILE = 8
SPECTRUM_BINS = 32
SMALL = 32
VERSION = 2  # of the features' definition: part of their cache names, so a change never reads stale rows


def median3(image: np.ndarray) -> np.ndarray:
    """3×3 median of an H×W uint8 image, edges repeated (OpenCV's ``medianBlur``; equal to
    ``scipy.ndimage.median_filter(size=3, mode="reflect")``, which is used when OpenCV is missing)."""
    try:
        import cv2
    except ImportError:  # pragma: no cover - opencv-python-headless is a dependency
        from scipy.ndimage import median_filter

        return median_filter(image, size=3, mode="reflect")
    return cv2.medianBlur(np.ascontiguousarray(image), 3)


def noise_residual(image: np.ndarray) -> np.ndarray:
    """H×W uint8 image → float32 H×W: the image minus its 3×3 median."""
    return image.astype(np.float32) - median3(image).astype(np.float32)


def tile_means(r: np.ndarray, tile: int = TILE) -> np.ndarray:
    """Mean of the residual over period-aligned tile×tile tiles (cropped to a multiple of tile): tile² values."""
    h, w = r.shape
    hh, ww = h // tile * tile, w // tile * tile
    rows = r[:hh, :ww].reshape(hh // tile, tile, ww).sum(axis=0, dtype=np.float64)  # tile × ww
    return rows.reshape(tile, ww // tile, tile).sum(axis=1).ravel() / ((hh // tile) * (ww // tile))


def _windows(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Start and end of each of ``n_out`` adaptive-pooling windows over ``n_in`` cells (PyTorch's rule:
    ``floor(i·n_in/n_out)`` to ``ceil((i+1)·n_in/n_out)``; neighbours overlap by at most one cell)."""
    i = np.arange(n_out)
    return (i * n_in) // n_out, -((-(i + 1) * n_in) // n_out)


def _pool(x: np.ndarray, n_out: int, axis: int, how: str) -> np.ndarray:
    """Adaptive mean or max pooling of ``x`` along ``axis`` (``torch.nn.functional.adaptive_*_pool``'s windows)."""
    n_in = x.shape[axis]
    x = np.moveaxis(x, axis, 0)
    if n_in % n_out == 0:  # equal windows, no overlap
        parts = x.reshape(n_out, n_in // n_out, *x.shape[1:])
        seg = parts.max(axis=1) if how == "max" else parts.mean(axis=1)
        return np.moveaxis(seg, 0, axis)
    start, end = _windows(n_in, n_out)
    ufunc = np.maximum if how == "max" else np.add
    seg = ufunc.reduceat(x, start, axis=0)  # [start_i, start_{i+1})
    nxt = np.append(start[1:], n_in)
    over = end > nxt  # the window reaches one cell into the next segment
    if over.any():
        seg[over] = ufunc(seg[over], x[nxt[over]])
    if how == "mean":
        seg = seg / (end - start).reshape((-1,) + (1,) * (x.ndim - 1))
    return np.moveaxis(seg, 0, axis)


def power_spectrum(r: np.ndarray) -> np.ndarray:
    """|rfft2(r)|² (orthonormal), zero frequency in the middle row: H × (W/2+1), float32.

    OpenCV's DFT (4× NumPy's float64 FFT here); its full complex output is cut to the rfft2 half."""
    import cv2

    h, w = r.shape
    f = cv2.dft(np.ascontiguousarray(r, dtype=np.float32), flags=cv2.DFT_COMPLEX_OUTPUT)[:, : w // 2 + 1]
    power = (f[..., 0] * f[..., 0] + f[..., 1] * f[..., 1]) * np.float32(1.0 / (h * w))
    return np.fft.fftshift(power, axes=0)


def spectrum_features(r: np.ndarray, bins: int = SPECTRUM_BINS) -> np.ndarray:
    """Log mean and log max of the residual's power per cell of a bins × (bins/2) frequency grid: 2·bins²/2 values."""
    power = power_spectrum(r)
    mean = _pool(_pool(power, bins, 0, "mean"), bins // 2, 1, "mean")
    peak = _pool(_pool(power, bins, 0, "max"), bins // 2, 1, "max")
    return np.concatenate([np.log(mean.ravel() + 1e-6), np.log(peak.ravel() + 1e-6)])


def fingerprint_of(image: np.ndarray) -> np.ndarray:
    """One H×W uint8 image → its fingerprint features (tile, spectrum, level), float32."""
    image = np.asarray(image)
    if image.ndim != 2 or image.dtype != np.uint8:
        raise ValueError(f"fingerprint features need an H×W uint8 image, got {image.dtype} {image.shape}")
    if min(image.shape) < 2 * TILE:
        raise ValueError(f"fingerprint features need images of at least {2 * TILE} px, got {image.shape}")
    r = noise_residual(image)
    level = np.log(np.mean(np.square(r, dtype=np.float64)) + 1e-6)
    return np.concatenate([tile_means(r), spectrum_features(r), [level]]).astype(np.float32)


def small_of(image: np.ndarray, size: int = SMALL) -> np.ndarray:
    """One H×W image → size² float32 in [0, 1]: the image area-averaged to size×size (adaptive windows)."""
    x = np.asarray(image, dtype=np.float32)
    return (_pool(_pool(x, size, 0, "mean"), size, 1, "mean").ravel() / np.float32(255.0)).astype(np.float32)


def fingerprint_features(pixels) -> np.ndarray:
    """N×H×W uint8 images → N × F float32 fingerprint features, image by image (no batch effects)."""
    pixels = np.asarray(pixels)
    if pixels.ndim != 3:
        raise ValueError(f"fingerprint_features needs N×H×W uint8 images, got {pixels.dtype} {pixels.shape}")
    return np.stack([fingerprint_of(im) for im in pixels]) if len(pixels) else np.zeros((0, n_fingerprint()), np.float32)


def small_pixels(pixels, size: int = SMALL) -> np.ndarray:
    """N×H×W images → N × size² float32 in [0, 1]: each image area-averaged to size×size."""
    pixels = np.asarray(pixels)
    return np.stack([small_of(im, size) for im in pixels]) if len(pixels) else np.zeros((0, size * size), np.float32)


def n_fingerprint(bins: int = SPECTRUM_BINS) -> int:
    return TILE * TILE + bins * bins + 1


FEATURE_NAMES = ("fingerprint", "pixels_small")
PER_IMAGE = {"fingerprint": fingerprint_of, "pixels_small": small_of}
PER_BATCH = {"fingerprint": fingerprint_features, "pixels_small": small_pixels}


def feature_blocks(pixels, names: tuple[str, ...] = FEATURE_NAMES) -> dict[str, np.ndarray]:
    """The pixel feature blocks ``names`` of a batch (default both: ``fingerprint`` and ``pixels_small``)."""
    return {name: PER_BATCH[name](pixels) for name in names}


@dataclass(frozen=True)
class PixelFeatureSpec:
    """Pixel features the scoring pipeline computes from each image's one decode (``load_file``), at
    ``size`` (the test images' own size, so that a generator's trace is not resampled away).

    They travel and are cached as extra outputs of the embedder, under names that carry the size and
    ``VERSION``: ``output(name)``."""

    names: tuple[str, ...] = FEATURE_NAMES
    size: int = 256

    def output(self, name: str) -> str:
        return f"px-{name}-{self.size}-v{VERSION}"

    @property
    def outputs(self) -> tuple[str, ...]:
        return tuple(self.output(n) for n in self.names)

    @cached_property
    def _resize(self):
        from fprt.preprocess import Preprocess

        return Preprocess(size=self.size).resize_uint8

    def compute(self, image: np.ndarray) -> dict[str, np.ndarray]:
        """A decoded H×W uint8 image (any size: resized to ``size`` like ``blocks_of_files``) → one row per output."""
        image = self._resize(image)
        return {self.output(n): PER_IMAGE[n](image) for n in self.names}


def native_size(path) -> int:
    """The larger side of an image file (read from its header): the size fingerprints are read at."""
    from PIL import Image

    with Image.open(path) as im:
        return int(max(im.size))


def first_native_size(paths, tries: int = 16) -> int | None:
    """``native_size`` of the first of ``paths`` whose header can be read (bad files are the pipeline's to
    report), or None."""
    for path in list(paths)[:tries]:
        try:
            return native_size(path)
        except Exception:  # noqa: BLE001 - any unreadable header: try the next file
            continue
    return None


def blocks_of_files(paths, *, size: int | None = None, workers: int | None = None, batch_size: int = 64,
                    names: tuple[str, ...] = FEATURE_NAMES) -> dict[str, np.ndarray]:
    """The feature blocks ``names`` of image files, decoded and computed chunk by chunk on ``workers`` threads
    (default: one per CPU, at most 8); memory: one chunk of pixels per thread.

    Images are read at ``size`` (default: the first image's own size) so that the generator's trace is
    not resampled away; an image of another size is resized to it (``Preprocess``, bilinear)."""
    from concurrent.futures import ThreadPoolExecutor

    from fprt.data import iter_batches
    from fprt.preprocess import Preprocess

    paths = list(paths)
    if not paths:
        return {name: np.zeros((0, 0), np.float32) for name in names}
    pre = Preprocess(size=size or native_size(paths[0]))
    chunks = [paths[i : i + batch_size] for i in range(0, len(paths), batch_size)]

    def one(chunk):
        return feature_blocks(np.concatenate([b.pixels for b in iter_batches(chunk, pre, len(chunk), 0, "stop")]), names)

    n = workers if workers is not None else min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max(1, n)) as pool:  # OpenCV and NumPy's FFT release the GIL
        parts = list(pool.map(one, chunks))
    return {name: np.concatenate([part[name] for part in parts]) for name in names}
