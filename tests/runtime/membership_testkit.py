"""Membership data with the three kinds of traces, drawn by the tests (imported as a plain module).

Every "scan" (128 px) is one of a few shared body templates (outline and smooth shading: at low
frequencies every chest slice looks alike) plus fine structure of its own (the person's "vessels").
A generator's output is a novel scan, or a trace of a used scan of one of three kinds:

- ``near``: the scan with new noise;
- ``moved``: shifted ±2 px, turned ±2°, rescaled ±3 %, smoothly warped (≈1.5 px), new noise;
- ``restyled``: window, level and gamma changed, a little smoother, new noise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SIZE = 128
KINDS = ("near", "moved", "restyled")


def _smooth(rng, size, sigma):
    import cv2

    return cv2.GaussianBlur(rng.standard_normal((size, size)).astype(np.float32), (0, 0), sigma)


def body_templates(rng, n: int = 3, size: int = SIZE) -> list[np.ndarray]:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    out = []
    for _ in range(n):
        ax, ay = rng.uniform(0.36, 0.44) * size, rng.uniform(0.28, 0.36) * size
        body = ((xx - size / 2) / ax) ** 2 + ((yy - size / 2) / ay) ** 2 <= 1
        lungs = (((xx - size * 0.35) / (ax * 0.35)) ** 2 + ((yy - size / 2) / (ay * 0.6)) ** 2 <= 1) | \
                (((xx - size * 0.65) / (ax * 0.35)) ** 2 + ((yy - size / 2) / (ay * 0.6)) ** 2 <= 1)
        shade = 150 + 40 * _smooth(rng, size, 16) / max(1e-6, float(np.abs(_smooth(rng, size, 16)).max()))
        out.append(np.where(body, np.where(lungs, 60.0, shade), 8.0).astype(np.float32))
    return out


def scan(rng, templates) -> np.ndarray:
    """A person's noise-free slice: a shared template + its own fine structure inside the body."""
    t = templates[int(rng.integers(len(templates)))]
    fine = _smooth(rng, SIZE, 1.2)
    fine *= 30.0 / float(fine.std())
    return np.where(t > 20, t + fine, t).astype(np.float32)


def move(img, rng, dx: float, dy: float, angle: float, scale: float, warp: float = 1.5) -> np.ndarray:
    """Shift (px), turn (degrees), rescale about the centre, then a smooth random warp of ``warp`` px at most."""
    import cv2

    c = (SIZE - 1) / 2
    m = cv2.getRotationMatrix2D((c, c), angle, scale)
    m[:, 2] += (dx, dy)
    out = cv2.warpAffine(img, m, (SIZE, SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=8.0)
    wx, wy = (_smooth(rng, SIZE, 24) for _ in range(2))
    wx *= warp / max(1e-6, float(np.abs(wx).max()))
    wy *= warp / max(1e-6, float(np.abs(wy).max()))
    gx, gy = np.meshgrid(np.arange(SIZE, dtype=np.float32), np.arange(SIZE, dtype=np.float32))
    return cv2.remap(out, gx + wx, gy + wy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def moved(img, rng) -> np.ndarray:
    dx, dy = rng.uniform(-2, 2, 2)
    return move(img, rng, float(dx), float(dy), float(rng.uniform(-2, 2)), float(rng.uniform(0.97, 1.03)))


def restyled(img, rng) -> np.ndarray:
    import cv2

    x = np.clip(img / 255.0, 0, 1) ** float(rng.uniform(0.75, 1.3))
    x = x * 255.0 * float(rng.uniform(0.75, 1.25)) + float(rng.uniform(-25, 25))
    return cv2.GaussianBlur(x.astype(np.float32), (0, 0), 0.8)


def acquire(img, rng, noise: float = 5.0) -> np.ndarray:
    return np.clip(img + rng.normal(0, noise, img.shape), 0, 255).astype(np.uint8)


def trace(img, kind: str, rng) -> np.ndarray:
    if kind == "near":
        return acquire(img, rng)
    if kind == "moved":
        return acquire(moved(img, rng), rng)
    return acquire(restyled(img, rng), rng)


def draw_split(rng, templates, n_used: int, n_not: int, n_novel: int, kinds=KINDS):
    """(used, not_used, generated, kinds of the generated) — every used image leaves one trace, kinds in turn."""
    used = [scan(rng, templates) for _ in range(n_used)]
    not_used = [scan(rng, templates) for _ in range(n_not)]
    gen, gen_kinds = [], []
    for i, img in enumerate(used):
        kind = kinds[i % len(kinds)]
        gen.append(trace(img, kind, rng))
        gen_kinds.append(kind)
    for _ in range(n_novel):
        gen.append(acquire(scan(rng, templates), rng))
        gen_kinds.append("novel")
    return ([acquire(u, rng) for u in used], [acquire(u, rng) for u in not_used], gen, gen_kinds)


def _png(path: Path, img: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path)


def make_trace_data(root: Path, *, n_used: int = 30, n_not: int = 30, n_novel: int = 30, seed: int = 0,
                    kinds=KINDS) -> Path:
    """train/ (real/used, real/not_used, generated) + test/ (real_unknown, generated, labels.csv)."""
    rng = np.random.default_rng(seed)
    templates = body_templates(rng)
    labels = []
    for split in ("train", "test"):
        used, not_used, gen, _ = draw_split(rng, templates, n_used, n_not, n_novel, kinds)
        order = rng.permutation(len(gen))
        for j, g in enumerate(order):
            _png(root / split / "generated" / f"g_{split}_{j:03d}.png", gen[g])
        if split == "train":
            for i, im in enumerate(used):
                _png(root / split / "real" / "used" / f"u_{i:03d}.png", im)
            for i, im in enumerate(not_used):
                _png(root / split / "real" / "not_used" / f"n_{i:03d}.png", im)
        else:
            reals = [(im, 1) for im in used] + [(im, 0) for im in not_used]
            for i, r in enumerate(rng.permutation(len(reals))):
                name = f"r_{i:03d}"
                _png(root / "test" / "real_unknown" / f"{name}.png", reals[r][0])
                labels.append(f"{name},{reals[r][1]}")
    (root / "test" / "labels.csv").write_text("\n".join(labels) + "\n")
    return root
