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
area-averaged to ``SMALL``×``SMALL`` (the content, for the raw-pixel probe). ``pixels`` is the image itself at the
spec's size (uint8): what the membership evidence compares, so that it is not decoded a second time.

Everything is per image in NumPy and OpenCV (median and real DFT via OpenCV; checked against PyTorch), so a row never
depends on the batch it was computed in: the scoring pipeline computes them in its one decode (``PixelFeatureSpec``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np

TILE = 8
SPECTRUM_BINS = 32
SMALL = 32
VERSION = 4  # of the features' definition: part of their cache names, so a change never reads stale rows


_SCRATCH = threading.local()


def _scratch(name: str, shape: tuple[int, ...], dtype=np.float32) -> np.ndarray:
    """This thread's reusable buffer ``name`` (made again when ``shape`` or ``dtype`` change).

    The per-image arrays of the features (median, residual, DFT, power, integral image: 64–264 KB each at
    256²) are written into the same memory image after image. Fresh arrays of that size are served by glibc
    from the OS in some heap states (page faults, zeroed pages): measured 0.53–0.69 ms per 256² fingerprint
    then against 0.28–0.29 ms with the buffers reused, the same values. What a buffer holds is only valid until
    the thread's next image: nothing returned to a caller is one."""
    buffers = _SCRATCH.__dict__
    buf = buffers.get(name)
    if buf is None or buf.shape != shape or buf.dtype != dtype:
        buf = buffers[name] = np.empty(shape, dtype)
    return buf


def median3(image: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """3×3 median of an H×W uint8 image, edges repeated (OpenCV's ``medianBlur``; equal to
    ``scipy.ndimage.median_filter(size=3, mode="reflect")``, which is used when OpenCV is missing).
    ``out``: an H×W uint8 array to write it into."""
    try:
        import cv2
    except ImportError:  # pragma: no cover - opencv-python-headless is a dependency
        from scipy.ndimage import median_filter

        return median_filter(image, size=3, mode="reflect", output=out)
    return cv2.medianBlur(np.ascontiguousarray(image), 3, dst=out)


def noise_residual(image: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """H×W uint8 image → float32 H×W: the image minus its 3×3 median (one OpenCV pass: exact, the
    difference of two bytes is a small integer). ``out``: an H×W float32 array to write it into."""
    import cv2

    median = median3(image, out=_scratch("median", np.shape(image), np.uint8))
    return cv2.subtract(image, median, dst=out, dtype=cv2.CV_32F)


def tile_means(r: np.ndarray, tile: int = TILE) -> np.ndarray:
    """Mean of the residual over period-aligned tile×tile tiles (cropped to a multiple of tile): tile² values.

    Summed in float32: exact for the integer residual of an 8-bit image up to 2^24 / 255 ≈ 65,000 tiles."""
    h, w = r.shape
    hh, ww = h // tile * tile, w // tile * tile
    rows = r[:hh, :ww].reshape(hh // tile, tile, ww).sum(axis=0)  # tile × ww
    return rows.reshape(tile, ww // tile, tile).sum(axis=1).ravel() / np.float32((hh // tile) * (ww // tile))


def _windows(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Start and end of each of ``n_out`` adaptive-pooling windows over ``n_in`` cells (PyTorch's rule:
    ``floor(i·n_in/n_out)`` to ``ceil((i+1)·n_in/n_out)``; neighbours overlap by at most one cell)."""
    i = np.arange(n_out)
    return (i * n_in) // n_out, -((-(i + 1) * n_in) // n_out)


@lru_cache(maxsize=64)
def _window_cells(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """The cells of each window as an n_out × widest index matrix (short windows repeat their last cell,
    which changes no maximum) and the mean's weights (1/width on real cells, 0 on the repeats)."""
    start, end = _windows(n_in, n_out)
    offsets = start[:, None] + np.arange(int((end - start).max()))[None]
    cells = np.minimum(offsets, (end - 1)[:, None])
    weights = np.where(offsets < end[:, None], 1.0 / (end - start)[:, None], 0.0).astype(np.float32)
    return cells, weights


def _pool(x: np.ndarray, n_out: int, axis: int, how: str) -> np.ndarray:
    """Adaptive mean or max pooling of ``x`` along ``axis`` (``torch.nn.functional.adaptive_*_pool``'s windows):
    equal windows by a reshape, unequal ones by one gather of every window's cells."""
    n_in = x.shape[axis]
    x = np.moveaxis(x, axis, -1)
    if n_in % n_out == 0:  # equal windows, no overlap
        parts = x.reshape(*x.shape[:-1], n_out, n_in // n_out)
        seg = parts.max(axis=-1) if how == "max" else parts.mean(axis=-1)
    else:
        cells, weights = _window_cells(n_in, n_out)
        windows = x[..., cells]  # ... × n_out × widest
        seg = windows.max(axis=-1) if how == "max" else np.einsum("...ow,ow->...o", windows, weights.astype(x.dtype))
    return np.moveaxis(seg, -1, axis)


def power_spectrum(r: np.ndarray) -> np.ndarray:
    """|rfft2(r)|² (orthonormal), zero frequency in the middle row: H × (W/2+1), float32."""
    return np.fft.fftshift(_power(r), axes=0)


def _power(r: np.ndarray, scratch: bool = False) -> np.ndarray:
    """|rfft2(r)|² (orthonormal) with the zero frequency in row 0 (not shifted): H × (W/2+1), float32;
    ``scratch``: in this thread's reusable buffers (``_scratch``), else in a new array.

    OpenCV's real DFT (4× NumPy's float64 FFT here): for even sides its packed (CCS) output, a third
    cheaper than the complex one, unpacked here; odd sides take the complex output cut to the rfft2 half."""
    import cv2

    h, w = r.shape
    r = np.ascontiguousarray(r, dtype=np.float32)
    if h % 2 or w % 2:
        f = cv2.dft(r, flags=cv2.DFT_COMPLEX_OUTPUT)[:, : w // 2 + 1]
        power = f[..., 0] * f[..., 0] + f[..., 1] * f[..., 1]
    else:
        packed = cv2.dft(r, dst=_scratch("dft", (h, w)))
        out = _scratch("power", (h, w // 2 + 1)) if scratch else None
        power = _unpack_ccs_power(np.square(packed, out=packed), out)  # squared in place
    power *= np.float32(1.0 / (h * w))
    return power


def _unpack_ccs_power(sq: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """The squared entries of OpenCV's CCS-packed 2-D real DFT (even H×W) → |F|² on H × (W/2+1) (into ``out``).

    Columns 1..W-2 hold Re, Im of frequencies 1..W/2-1 for every row; columns 0 and W-1 hold the
    frequencies 0 and W/2 as a packed 1-D transform along the rows (Re0, Re1, Im1, …, Re(H/2)), the other
    rows being their mirror image (a real column's transform is conjugate symmetric)."""
    h, w = sq.shape
    power = np.empty((h, w // 2 + 1), np.float32) if out is None else out
    np.add(sq[:, 1 : w - 1 : 2], sq[:, 2 : w - 1 : 2], out=power[:, 1 : w // 2])
    for j, packed in ((0, sq[:, 0]), (w // 2, sq[:, w - 1])):
        inner = packed[1 : h - 1 : 2] + packed[2 : h - 1 : 2]  # rows 1..H/2-1
        power[0, j], power[h // 2, j] = packed[0], packed[h - 1]
        power[1 : h // 2, j] = inner
        power[h // 2 + 1 :, j] = inner[::-1]
    return power


def spectrum_features(r: np.ndarray, bins: int = SPECTRUM_BINS) -> np.ndarray:
    """Log mean and log max of the residual's power per cell of a bins × (bins/2) frequency grid: 2·bins²/2 values.

    The cells are those of ``power_spectrum`` (zero frequency in the middle row). When the row windows are
    equal and the shift moves whole windows (256 rows, 32 bins), the rows are pooled first and the 32 pooled
    rows shifted: the same numbers, without a shifted copy of the spectrum."""
    h = r.shape[0]
    power = _power(r, scratch=True)
    window, shift = h // bins, h // 2  # np.fft.fftshift moves the rows by h // 2
    if h % bins == 0 and shift % window == 0:
        rows_mean, rows_max = (np.roll(_pool(power, bins, 0, how), shift // window, axis=0) for how in ("mean", "max"))
    else:
        power = np.fft.fftshift(power, axes=0)
        rows_mean, rows_max = _pool(power, bins, 0, "mean"), _pool(power, bins, 0, "max")
    mean = _pool(rows_mean, bins // 2, 1, "mean")
    peak = _pool(rows_max, bins // 2, 1, "max")
    return np.concatenate([np.log(mean.ravel() + 1e-6), np.log(peak.ravel() + 1e-6)])


def fingerprint_of(image: np.ndarray) -> np.ndarray:
    """One H×W uint8 image → its fingerprint features (tile, spectrum, level), float32."""
    import cv2

    image = np.asarray(image)
    if image.ndim != 2 or image.dtype != np.uint8:
        raise ValueError(f"fingerprint features need an H×W uint8 image, got {image.dtype} {image.shape}")
    if min(image.shape) < 2 * TILE:
        raise ValueError(f"fingerprint features need images of at least {2 * TILE} px, got {image.shape}")
    r = noise_residual(image, out=_scratch("residual", image.shape))
    level = np.log(cv2.norm(r, cv2.NORM_L2SQR) / r.size + 1e-6)  # OpenCV sums the squares in float64
    return np.concatenate([tile_means(r), spectrum_features(r), [level]]).astype(np.float32)


def small_of(image: np.ndarray, size: int = SMALL) -> np.ndarray:
    """One H×W image → size² float32 in [0, 1]: the image area-averaged to size×size (adaptive windows).

    uint8 images: each window's exact integer sum from one OpenCV integral image (3× cheaper than pooling
    the float image twice, and no rounding before the division); other dtypes: pooled in float32."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 2:
        x = image.astype(np.float32)
        return (_pool(_pool(x, size, 0, "mean"), size, 1, "mean").ravel() / np.float32(255.0)).astype(np.float32)
    import cv2

    h, w = image.shape
    depth = cv2.CV_32S if h * w * 255 < 2**31 else cv2.CV_64F  # exact either way
    sums = cv2.integral(np.ascontiguousarray(image), sum=_scratch("integral", (h + 1, w + 1),
                                                                  np.int32 if depth == cv2.CV_32S else np.float64),
                        sdepth=depth)  # (H+1)×(W+1)
    (r0, r1), (c0, c1) = _windows(h, size), _windows(w, size)
    if h % size == 0 and w % size == 0:  # the windows tile the image: differences of the corner sums
        total = np.diff(np.diff(sums[np.append(r0, h)][:, np.append(c0, w)], axis=0), axis=1)
    else:  # neighbouring windows share a row or column
        total = sums[np.ix_(r1, c1)] - sums[np.ix_(r0, c1)] - sums[np.ix_(r1, c0)] + sums[np.ix_(r0, c0)]
    mean = total.astype(np.float32) / np.outer(r1 - r0, c1 - c0).astype(np.float32)
    return (mean / np.float32(255.0)).ravel()


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
PER_IMAGE = {"fingerprint": fingerprint_of, "pixels_small": small_of, "pixels": np.ascontiguousarray}
PER_BATCH = {"fingerprint": fingerprint_features, "pixels_small": small_pixels}


def feature_blocks(pixels, names: tuple[str, ...] = FEATURE_NAMES) -> dict[str, np.ndarray]:
    """The pixel feature blocks ``names`` of a batch (default both: ``fingerprint`` and ``pixels_small``)."""
    return {name: PER_BATCH[name](pixels) for name in names}


@dataclass(frozen=True)
class PixelFeatureSpec:
    """Pixel features the scoring pipeline computes from each image's one decode (``load_file``), at
    ``size`` (subsets: the test images' own size, so that a generator's trace is not resampled away), each
    image resized to it with ``Preprocess``'s ``resize`` filter.

    They travel and are cached as extra outputs of the embedder, under names that carry the size, the
    filter (when not bilinear) and ``VERSION``: ``output(name)``.

    ``untraced``: paths of images that carry no generator trace (the real training images), whose fingerprint
    nothing reads: they get ``untraced_row()`` (NaN) instead, which is cached like any row. The cache is keyed by
    content, so a generated image with the very bytes of such an image may find that row; whoever reads
    fingerprints computes those again (``untraced_rows``)."""

    names: tuple[str, ...] = FEATURE_NAMES
    size: int = 256
    resize: str = "bilinear"
    untraced: frozenset = frozenset()

    def output(self, name: str) -> str:
        return f"px-{name}-{self.size}{'' if self.resize == 'bilinear' else '-' + self.resize}-v{VERSION}"

    @property
    def outputs(self) -> tuple[str, ...]:
        return tuple(self.output(n) for n in self.names)

    @cached_property
    def _resize(self):
        from fprt.preprocess import Preprocess

        return Preprocess(size=self.size, resize=self.resize).resize_uint8

    def compute(self, image: np.ndarray, path=None) -> dict[str, np.ndarray]:
        """A decoded H×W uint8 image (any size: resized to ``size`` like ``blocks_of_files``) → one row per
        output; the fingerprint of an ``untraced`` path is ``untraced_row()``."""
        image = self._resize(image)
        skip = path is not None and path in self.untraced
        return {self.output(n): untraced_row() if skip and n == "fingerprint" else PER_IMAGE[n](image)
                for n in self.names}


def untraced_row() -> np.ndarray:
    """The fingerprint row of an image nobody reads it of (``PixelFeatureSpec.untraced``): NaN."""
    return np.full(n_fingerprint(), np.nan, np.float32)


def untraced_rows(fingerprints: np.ndarray) -> np.ndarray:
    """Indices of the rows of an N × F fingerprint block that are ``untraced_row()``s."""
    return np.flatnonzero(np.isnan(fingerprints).all(axis=1))


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


def blocks_of_files(paths, *, size: int | None = None, batch_size: int = 64,
                    names: tuple[str, ...] = FEATURE_NAMES) -> dict[str, np.ndarray]:
    """The feature blocks ``names`` of image files, decoded and computed chunk by chunk on one thread per CPU
    (``parallel.per_image``; OpenCV and NumPy's FFT release the GIL); memory: one chunk of pixels per thread.

    Images are read at ``size`` (default: the first image's own size) so that the generator's trace is
    not resampled away; an image of another size is resized to it (``Preprocess``, bilinear)."""
    from fprt.data import iter_batches
    from fprt.preprocess import Preprocess
    from fprt.runtime.evidence.parallel import per_image

    paths = list(paths)
    if not paths:
        return {name: np.zeros((0, 0), np.float32) for name in names}
    pre = Preprocess(size=size or native_size(paths[0]))
    chunks = [paths[i : i + batch_size] for i in range(0, len(paths), batch_size)]

    def one(chunk):
        return feature_blocks(np.concatenate([b.pixels for b in iter_batches(chunk, pre, len(chunk), 0, "stop")]), names)

    parts = per_image(one, chunks, [None] * len(chunks), min_chunk=1)
    return {name: np.concatenate([part[name] for part in parts]) for name in names}
