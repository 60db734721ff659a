"""Independent classical oracles for the demo data: simple features + scikit-learn, raw-pixel nearest
neighbours, and normalised cross-correlation with a shift search. Nothing here uses fprt's own
models, so the tests measure the data, not the code under test elsewhere."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

# the session's datasets (conftest.py): big enough for the learnability checks to give stable numbers,
# small enough to draw in a few seconds
SUBSETS_SMALL = {"classes": 5, "n_real": 24, "n_generated": 24, "n_test": 16}
MEMBERSHIP_SMALL = {"n_used": 50, "n_not_used": 50, "n_generated": 140}


def load(paths) -> np.ndarray:
    return np.stack([np.asarray(Image.open(p)) for p in paths]).astype(np.float32)


def read_labels_csv(path: Path) -> dict[str, str]:
    out = {}
    for line in Path(path).read_text().splitlines():
        k, v = line.split(",")
        out[k] = v
    return out


def downsample(x: np.ndarray, f: int) -> np.ndarray:
    n, h, w = x.shape
    return x.reshape(n, h // f, f, w // f, f).mean((2, 4))


def features(x: np.ndarray) -> np.ndarray:
    """Downsampled pixels (32×32), log radial power spectrum (48 bins), sqrt histogram (32 bins)."""
    n, h, w = x.shape
    small = downsample(x, h // 32).reshape(n, -1) / 255.0
    f = np.abs(np.fft.rfft2(x - x.mean((1, 2), keepdims=True))) ** 2
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    bins = np.minimum((np.sqrt(fx**2 + fy**2) / 0.7072 * 48).astype(int), 47).ravel()
    cnt = np.bincount(bins, minlength=48)
    rad = np.log(np.stack([np.bincount(bins, weights=fi.ravel(), minlength=48) for fi in f]) / cnt + 1e-3)
    hist = np.stack([np.bincount(xi.ravel().astype(np.int64) // 8, minlength=32) for xi in x]) / (h * w)
    return np.concatenate([small, rad, np.sqrt(hist)], 1)


def logreg_accuracy(f_train, y_train, f_test, y_test) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.05, max_iter=3000))
    model.fit(f_train, y_train)
    return float((model.predict(f_test) == y_test).mean())


def nearest_pixel_labels(query: np.ndarray, ref: np.ndarray, ref_labels: np.ndarray, f: int = 4) -> np.ndarray:
    """Label of the nearest reference image in raw (downsampled) pixel L2 distance."""
    q = downsample(query, f).reshape(len(query), -1)
    r = downsample(ref, f).reshape(len(ref), -1)
    d = (q**2).sum(1)[:, None] - 2 * q @ r.T + (r**2).sum(1)[None, :]
    return ref_labels[d.argmin(1)]


def min_pixel_distance(real: np.ndarray, gen: np.ndarray, f: int = 4) -> np.ndarray:
    """For each real image, the smallest raw-pixel L2 distance to any generated image (no alignment)."""
    r = downsample(real, f).reshape(len(real), -1)
    g = downsample(gen, f).reshape(len(gen), -1)
    d = (r**2).sum(1)[:, None] - 2 * r @ g.T + (g**2).sum(1)[None, :]
    return np.sqrt(np.maximum(d.min(1), 0))


def best_ncc(real: np.ndarray, gen: np.ndarray, f: int = 4, max_shift: int = 4, crop: int = 8) -> np.ndarray:
    """For each real image, the best normalised cross-correlation with any generated image over
    integer shifts of ±max_shift pixels (at 1/f resolution, i.e. ±max_shift·f px at full size)."""
    r_small, g_small = downsample(real, f), downsample(gen, f)
    s = r_small.shape[1]
    c = slice(crop, s - crop)
    g = g_small[:, c, c].reshape(len(gen), -1)
    g = g - g.mean(1, keepdims=True)
    g /= np.linalg.norm(g, axis=1, keepdims=True) + 1e-6
    best = np.full(len(real), -1.0)
    for dy in range(-max_shift, max_shift + 1):
        for dx in range(-max_shift, max_shift + 1):
            r = r_small[:, crop + dy : s - crop + dy, crop + dx : s - crop + dx].reshape(len(real), -1)
            r = r - r.mean(1, keepdims=True)
            r /= np.linalg.norm(r, axis=1, keepdims=True) + 1e-6
            best = np.maximum(best, (r @ g.T).max(1))
    return best
