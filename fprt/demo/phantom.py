"""A vectorised axial chest-CT phantom: one ``Anatomy`` value → one 256×256 float32 image in HU.

The slice is drawn the way it is read (patient's right on the image's left, anterior at the top):
a body outline with skin, subcutaneous fat and a muscle wall; the pleural cavity filled by two lungs
(density with a posterior gravity gradient, parenchymal texture, a branching vessel tree thinning
from the hila plus vessels cut end-on); the mediastinum (fat, heart, aorta, trachea or main bronchi
by slice level); the spine (vertebral body with cortex, canal, arch and processes), ribs and costal
cartilage, sternum, scapulae high up, the liver dome low down; optional tuberculosis-like lesions
(nodules, cavities, consolidations); the scanner table.

``Anatomy`` holds every number that decides *what* is drawn plus a ``seed`` for the details (rib
positions, vessel tree, lesions, texture). ``render`` is a pure function of it, so a generator that
"memorised" an image re-renders that anatomy exactly and then changes it (see ``generators``).

Speed: shapes are axis-aligned superellipses evaluated on their bounding box as the sum of two 1-D
profiles (rotated ellipses add one outer product); vessels are splatted with ``np.bincount`` and
blurred with separable pair sums; smooth random fields are tiny random grids interpolated by two
small matrix products. No Python loop runs over pixels.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np

SIZE = 256  # the phantom is drawn at 256×256; other output sizes are resampled by the writer

# Hounsfield units of the tissues drawn
HU_AIR = -1000.0
HU_FAT = -95.0
HU_MUSCLE = 45.0
HU_BLOOD = 40.0
HU_LIVER = 60.0
HU_CSF = 10.0
HU_MARROW = 230.0
HU_CORTEX = 750.0
HU_CARTILAGE = 120.0
HU_SKIN = 30.0

_F = np.float32
_ZERO, _ONE = _F(0.0), _F(1.0)


@dataclass(frozen=True)
class Anatomy:
    """Everything that decides what one slice shows. Lengths are pixels of the 256 frame."""

    seed: int  # details: ribs, vessel tree, lesions, texture
    z: float  # slice level: 0 = lung apex, 1 = lung base (diaphragm)
    cx: float  # body centre
    cy: float
    body_a: float  # body half-width
    body_b: float  # body half-depth (anterior–posterior)
    body_p: float  # superellipse exponent of the body outline (2 = ellipse, larger = boxier)
    fat: float  # subcutaneous fat thickness, fraction of the half-width
    wall: float  # muscle wall thickness (px)
    lung_scale: float  # how much of the cavity the lungs fill (1 = all but the mediastinum)
    lung_p: float  # superellipse exponent of the pleural cavity
    mediastinum: float  # width multiplier of the mediastinum
    heart_scale: float
    lung_hu: float  # parenchyma density
    lung_gradient: float  # extra HU at the posterior (dependent) lung
    lung_texture: float  # HU amplitude of the parenchymal texture
    vessel_density: float  # number of vessel branches and end-on vessels, relative
    vessel_caliber: float  # width/brightness multiplier of the vessels
    lesion_rate: float  # expected number of lesions
    table_gap: float  # px between the back of the body and the table
    table_curve: float  # curvature of the table top
    table_hu: float  # density of the table

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Anatomy":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


# ------------------------------------------------------------------------------------ helpers
_AX = np.arange(SIZE, dtype=_F)


def _interp_matrix(n_out: int, n_in: int) -> np.ndarray:
    """n_out×n_in matrix resampling a 1-D signal of n_in samples to n_out with a smooth (cubic B-spline-like) kernel."""
    pos = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5
    d = np.abs(pos[:, None] - np.arange(n_in)[None, :])
    w = np.where(d < 1, 2 / 3 - d**2 + d**3 / 2, np.where(d < 2, (2 - d) ** 3 / 6, 0.0))
    return (w / w.sum(1, keepdims=True)).astype(_F)


_INTERP: dict[tuple[int, int], np.ndarray] = {}


def smooth_field(rng: np.random.Generator, shape: tuple[int, int], cells: int,
                 window: tuple[slice, slice] | None = None) -> np.ndarray:
    """A smooth random field with std ≈ 1: a cells×cells normal grid spline-interpolated to ``shape``.

    With ``window`` (slices of a ``shape`` frame) only that part of the field is computed.
    """
    g = rng.standard_normal((cells, cells)).astype(_F)
    h, w = shape
    for key in ((h, cells), (w, cells)):
        if key not in _INTERP:
            _INTERP[key] = _interp_matrix(*key)
    my, mx = _INTERP[(h, cells)], _INTERP[(w, cells)]
    if window is not None:
        my, mx = my[window[0]], mx[window[1]]
    out = my @ g @ mx.T
    out *= _F(1.6)  # the spline smooths a unit grid to std ≈ 0.6
    return out


def blur121(a: np.ndarray, passes: int = 1) -> np.ndarray:
    """Separable [1, 2, 1]/4 blur, ``passes`` times (σ ≈ 0.71·√passes px). The outer ``passes`` pixels are 0."""
    h, w = a.shape
    cur = a
    for _ in range(passes):
        s = cur[:, :-1] + cur[:, 1:]
        s = s[:, :-1] + s[:, 1:]
        t = s[:-1] + s[1:]
        cur = (t[:-1] + t[1:]) * _F(1.0 / 16.0)
    out = np.zeros((h, w), _F)
    out[passes : h - passes, passes : w - passes] = cur
    return out


def splat(xs: np.ndarray, ys: np.ndarray, w: np.ndarray, shape: tuple[int, int], layer: np.ndarray | None = None,
          layers: int = 1) -> np.ndarray:
    """Sum weights ``w`` at the nearest pixels of points (xs, ys): a float32 image of ``shape``, or
    ``layers`` images (layers×h×w) when each point names its ``layer``. One ``np.bincount``."""
    h, wd = shape
    xi = np.rint(xs).astype(np.int64)
    yi = np.rint(ys).astype(np.int64)
    ok = (xi >= 0) & (xi < wd) & (yi >= 0) & (yi < h)
    flat = yi * wd + xi
    if layer is not None:
        flat += layer * (h * wd)
    acc = np.bincount(flat[ok], weights=w[ok], minlength=layers * h * wd)
    out = acc.astype(_F).reshape(layers, h, wd)
    return out if layer is not None else out[0]


class Canvas:
    """A float32 HU image, the shapes drawn on it and a few compositing operations."""

    def __init__(self, fill: float = HU_AIR):
        self.img = np.full((SIZE, SIZE), fill, _F)

    @staticmethod
    def box(cx: float, cy: float, rx: float, ry: float, margin: int = 2):
        y0, y1 = max(0, int(cy - ry) - margin), min(SIZE, int(cy + ry) + margin + 2)
        x0, x1 = max(0, int(cx - rx) - margin), min(SIZE, int(cx + rx) + margin + 2)
        if y0 >= y1 or x0 >= x1:
            return None
        return slice(y0, y1), slice(x0, x1)

    @staticmethod
    def distance(cx, cy, a, b, p=2.0, theta=0.0, box=None):
        """(box, d): approximate signed distance (px, positive inside) to a superellipse
        |x/a|^p + |y/b|^p = 1 (``theta`` only with p = 2), on its bounding box."""
        a, b = max(float(a), 0.6), max(float(b), 0.6)
        if box is None:
            r = max(a, b) if theta else None
            box = Canvas.box(cx, cy, r or a, r or b)
            if box is None:
                return None, None
        ys, xs = box
        X = _AX[xs] - _F(cx)
        Y = _AX[ys] - _F(cy)
        if theta:
            c, s = math.cos(theta), math.sin(theta)
            kx = _F(c * c / (a * a) + s * s / (b * b))
            ky = _F(s * s / (a * a) + c * c / (b * b))
            kxy = _F(2 * c * s * (1 / (a * a) - 1 / (b * b)))
            q = (Y * Y * ky)[:, None] + (X * X * kx)[None, :]
            q += np.outer(Y * kxy, X)
        elif p == 2.0:
            q = (Y * Y * _F(1 / (b * b)))[:, None] + (X * X * _F(1 / (a * a)))[None, :]
        else:
            q = (np.abs(Y * _F(1 / b)) ** _F(p))[:, None] + (np.abs(X * _F(1 / a)) ** _F(p))[None, :]
        k = min(a, b) / p  # (1 - q)·r/p ≈ signed distance to the outline near it
        q *= _F(-k)
        q += _F(k)
        return box, q

    @staticmethod
    def shape(cx, cy, a, b, p=2.0, theta=0.0, edge=1.0, box=None):
        """(box, soft mask in [0, 1]) of a superellipse; ``edge`` = width (px) of the soft outline."""
        box, d = Canvas.distance(cx, cy, a, b, p, theta, box)
        if box is None:
            return None, None
        if edge != 1.0:
            d *= _F(1.0 / edge)
        d += _F(0.5)
        np.clip(d, _ZERO, _ONE, out=d)
        return box, d

    def paint(self, box, m, value) -> None:
        if box is not None:
            sub = self.img[box]
            sub += m * (value - sub)

    def ring(self, cx, cy, a, b, outer, inner, t, theta=0.0, edge=0.8, p=2.0):
        """A shell of ``outer`` (``t`` px thick) around an ``inner`` core — cortex and marrow, a
        cartilage ring around air — from one shape evaluation."""
        box, d = self.distance(cx, cy, a, b, p, theta)
        if box is None:
            return
        d *= _F(1.0 / edge)
        m_in = d - _F(t / edge)
        d += _F(0.5)
        m_in += _F(0.5)
        np.clip(d, _ZERO, _ONE, out=d)
        np.clip(m_in, _ZERO, _ONE, out=m_in)
        sub = self.img[box]
        sub += d * (_F(outer) - sub)
        sub += m_in * (_F(inner) - sub)

    def rings(self, cx, cy, a, b, theta, outer, inner, t, edge=0.8) -> None:
        """Many small rotated ``ring`` shapes at once (ribs): the distances of all of them are computed
        in one batch on equal-sized boxes, then each is composited in turn (order preserved)."""
        cx, cy, a, b, theta = (np.asarray(v, np.float64) for v in (cx, cy, a, b, theta))
        outer, inner = np.broadcast_to(outer, cx.shape), np.broadcast_to(inner, cx.shape)
        n = len(cx)
        if n == 0:
            return
        a, b = np.maximum(a, 0.6), np.maximum(b, 0.6)
        r = int(math.ceil(float(np.maximum(a, b).max()))) + 2
        side = 2 * r + 2
        x0 = np.floor(cx).astype(np.int64) - r
        y0 = np.floor(cy).astype(np.int64) - r
        off = np.arange(side, dtype=np.float64)
        X = (x0[:, None] + off[None, :] - cx[:, None]).astype(_F)  # n×side
        Y = (y0[:, None] + off[None, :] - cy[:, None]).astype(_F)
        c, s = np.cos(theta), np.sin(theta)
        kx = (c * c / (a * a) + s * s / (b * b)).astype(_F)[:, None, None]
        ky = (s * s / (a * a) + c * c / (b * b)).astype(_F)[:, None, None]
        kxy = (2 * c * s * (1 / (a * a) - 1 / (b * b))).astype(_F)[:, None, None]
        q = Y[:, :, None] * Y[:, :, None] * ky + X[:, None, :] * X[:, None, :] * kx
        q += Y[:, :, None] * X[:, None, :] * kxy
        k = (np.minimum(a, b) / (2.0 * edge)).astype(_F)[:, None, None]
        d = (_ONE - q) * k  # distance / edge
        m_out = np.clip(d + _F(0.5), _ZERO, _ONE)
        m_in = np.clip(d + _F(0.5 - t / edge), _ZERO, _ONE)
        for i in range(n):
            ys0, xs0 = max(0, -y0[i]), max(0, -x0[i])
            ys1, xs1 = min(side, SIZE - y0[i]), min(side, SIZE - x0[i])
            if ys0 >= ys1 or xs0 >= xs1:
                continue
            sub = self.img[y0[i] + ys0 : y0[i] + ys1, x0[i] + xs0 : x0[i] + xs1]
            sub += m_out[i, ys0:ys1, xs0:xs1] * (_F(outer[i]) - sub)
            if inner[i] != outer[i]:
                sub += m_in[i, ys0:ys1, xs0:xs1] * (_F(inner[i]) - sub)

    def draw(self, cx, cy, a, b, value, p=2.0, theta=0.0, edge=1.0, alpha=1.0):
        box, m = self.shape(cx, cy, a, b, p, theta, edge)
        if box is not None:
            if alpha != 1.0:
                m *= _F(alpha)
            self.paint(box, m, _F(value))
        return box, m


def _halfplane(coords: np.ndarray, at: float, sharp: float = 0.8, below: bool = True) -> np.ndarray:
    """Soft step along a 1-D coordinate: 1 where coord < ``at`` (or > when ``below`` is False)."""
    d = (_F(at) - coords) if below else (coords - _F(at))
    return np.clip(d * _F(sharp) + _F(0.5), _ZERO, _ONE)


# ------------------------------------------------------------------------------------ the slice
def level_profile(z: float) -> dict[str, float]:
    """How the anatomy changes from the apex (z = 0) to the base (z = 1)."""
    lung = 0.62 + 0.38 * math.sin(math.pi * min(1.0, 0.12 + 0.95 * z) * 0.85)
    heart = min(1.0, max(0.0, (z - 0.40) / 0.28)) * (1.0 - max(0.0, (z - 0.88) / 0.3))
    liver = max(0.0, (z - 0.70) / 0.30)
    return {"lung": lung, "heart": heart, "liver": liver}


def _vessel_tree(rng, hx, hy, reach_x, reach_y, density, generations: int = 4) -> np.ndarray:
    """Segments of the branching vessel trees of both lungs: S×5 array (x0, y0, x1, y1, generation).

    ``hx`` holds the two hila's x (patient's right, then left). Built generation by generation
    (vectorised): each segment ends where its 1–3 children start, direction jittered, length shrinking.
    """
    n_main = [max(2, int(round(rng.normal(4.0, 0.8) * math.sqrt(density)))) for _ in (0, 1)]
    side = np.repeat([-1.0, 1.0], n_main)
    ang = np.concatenate([np.linspace(-1.9, 1.9, n) for n in n_main]) + rng.normal(0, 0.22, len(side))
    length = 0.36 + rng.uniform(-0.05, 0.08, len(side))  # angle: from the outward horizontal
    x = np.repeat(np.asarray(hx, np.float64), n_main)
    y = np.full(len(side), float(hy))
    out = []
    for gen in range(generations):
        x1 = x + side * np.cos(ang) * reach_x * length
        y1 = y + np.sin(ang) * reach_y * length
        out.append(np.stack([x, y, x1, y1, np.full(len(x), float(gen))], 1))
        if gen == generations - 1:
            break
        kids = 1 + (rng.random(len(x)) < 0.75 * density) + (rng.random(len(x)) < 0.25 * density)
        x, y, side = np.repeat(x1, kids), np.repeat(y1, kids), np.repeat(side, kids)
        ang = np.repeat(ang, kids) + rng.normal(0, 0.55, len(x))
        length = np.repeat(length, kids) * rng.uniform(0.5, 0.75, len(x))
    return np.concatenate(out, 0)


def render(an: Anatomy) -> np.ndarray:
    """Draw ``an`` as a 256×256 float32 image in Hounsfield units (air −1000, bone up to ~750)."""
    rng = np.random.default_rng(an.seed)
    cv = Canvas(HU_AIR)
    lv = level_profile(an.z)
    cx, cy, A, B = an.cx, an.cy, an.body_a, an.body_b
    z = an.z

    # -- table: a thin curved bright line with a fainter one below (the body lies on it)
    ty = cy + B * 0.95 + an.table_gap
    rows = slice(max(0, int(ty - 40)), min(SIZE, int(ty + 12)))
    if rows.start < rows.stop:
        dxr = _AX - _F(cx)
        lift = dxr * dxr * _F(an.table_curve * 1e-3)  # table edge rises at the sides
        d = _AX[rows][:, None] - (_F(ty) - lift)[None, :]
        tm = np.maximum(_ONE - np.abs(d - _F(1.5)) * _F(0.55), _F(0.6) - np.abs(d - _F(8.0)) * _F(0.45))
        np.clip(tm, _ZERO, _ONE, out=tm)
        tm *= (np.abs(dxr) < _F(120.0))[None, :]
        cv.img[rows] += tm * _F(an.table_hu - HU_AIR)

    # -- body: skin, subcutaneous fat, muscle wall; flattened at the back
    back = cy + B * 0.9
    for shrink, val, edge in ((0.0, HU_SKIN, 0.7), (1.6, HU_FAT, 0.9)):
        box, m = cv.shape(cx, cy, A - shrink, B - shrink, an.body_p, edge=edge)
        m *= _halfplane(_AX[box[0]], back - shrink)[:, None]
        cv.paint(box, m, _F(val))
    fa, fb = A * (1 - an.fat), B * (1 - an.fat * 0.75)  # outer surface of the muscle wall
    fcy = cy + B * 0.03
    box, m = cv.shape(cx, fcy, fa, fb, an.body_p, edge=1.6)
    m *= _halfplane(_AX[box[0]], back - 3.0, 0.5)[:, None]
    cv.paint(box, m, _F(HU_MUSCLE))
    # extrapleural fat line and the rib-cage ring, then the pleural cavity
    ca, cb = fa - an.wall, fb - an.wall * 0.8
    cv.ring(cx, fcy, ca + 3.0, cb + 3.0, HU_FAT + 30, HU_MUSCLE - 15, 3.0, p=an.lung_p, edge=1.1)

    # -- lungs = cavity − mediastinum − spine − liver dome
    tb = Canvas.box(cx, fcy, ca, cb, margin=4)  # the thoracic box: every lung array lives in it
    ty_ax, tx_ax = _AX[tb[0]], _AX[tb[1]]
    shp = (tb[0].stop - tb[0].start, tb[1].stop - tb[1].start)
    ls = an.lung_scale * lv["lung"]
    _, lungs = cv.shape(cx, fcy, ca - 2.0 - (1 - ls) * 0.5 * ca, cb - 2.0 - (1 - ls) * 0.35 * cb, an.lung_p,
                        edge=0.7, box=tb)
    cavity = lungs.copy()

    def carve(x, y, a, b, p=2.0, theta=0.0, edge=1.2):
        """Remove a shape from the lungs; returns (thoracic-box slices, the shape's mask there)."""
        box, m = Canvas.shape(x, y, a, b, p, theta, edge)
        if box is None:
            return None, None
        y0, y1 = max(box[0].start, tb[0].start), min(box[0].stop, tb[0].stop)
        x0, x1 = max(box[1].start, tb[1].start), min(box[1].stop, tb[1].stop)
        if y0 >= y1 or x0 >= x1:
            return None, None
        sub = m[y0 - box[0].start : y1 - box[0].start, x0 - box[1].start : x1 - box[1].start]
        loc = (slice(y0 - tb[0].start, y1 - tb[0].start), slice(x0 - tb[1].start, x1 - tb[1].start))
        lungs[loc] *= _ONE - sub
        return loc, sub

    med_w = ca * 0.14 * an.mediastinum * (1.0 + 0.25 * (z < 0.35))
    # central mediastinum: narrow behind the sternum (the lungs almost meet in front), wider behind
    carve(cx + 2, fcy + cb * 0.05, med_w, cb * 0.72, 2.2)
    carve(cx + 1, fcy - cb * 0.62, med_w * 0.45, cb * 0.4, 2.0)
    hx, hy = cx + ca * 0.13, fcy - cb * 0.12
    ha = ca * (0.17 + 0.24 * lv["heart"] * an.heart_scale)
    hb = cb * (0.22 + 0.26 * lv["heart"] * an.heart_scale)
    carve(hx, hy, ha + 3, hb + 3, 2.0, -0.55 * lv["heart"], edge=1.5)
    vy = fcy + cb * 0.74  # vertebral body centre
    vr = 0.115 * A
    carve(cx, vy + 2, vr * 1.55, vr * 1.5, 2.0, edge=1.5)  # spine and paravertebral muscles
    if lv["liver"] > 0:  # the liver dome rises into the right lung base
        lx, ly = cx - ca * 0.45, fcy + cb * (0.75 - 0.45 * lv["liver"])
        loc, m = carve(lx, ly, ca * (0.35 + 0.3 * lv["liver"]), cb * (0.3 + 0.35 * lv["liver"]), 2.0, 0.35, 1.5)
        if loc is not None:
            sub = cv.img[tb][loc]
            sub += (m * cavity[loc] * _F(min(1.0, 2.5 * lv["liver"]))) * (_F(HU_LIVER) - sub)

    # parenchyma: density + gravity gradient + texture
    lung_val = smooth_field(rng, (SIZE, SIZE), 24, tb) * _F(an.lung_texture)
    lung_val += _F(an.lung_hu)
    grad = np.clip((ty_ax - _F(fcy - cb)) / _F(2 * cb), _ZERO, _ONE)
    lung_val += (grad * grad * _F(an.lung_gradient))[:, None]

    # vessels: a branching tree from each hilum, plus vessels cut end-on (dots)
    hila = (cx - med_w - ca * 0.08, cx + med_w + ca * 0.08)
    seg = _vessel_tree(rng, hila, fcy + cb * 0.02, ca * 0.9 * ls, cb * 0.9 * ls, an.vessel_density)
    sx, sy = seg[:, 2] - seg[:, 0], seg[:, 3] - seg[:, 1]
    slen = np.maximum(np.hypot(sx, sy), 1e-6)
    n = np.maximum(2, (slen * 1.2).astype(np.int64))
    sid = np.repeat(np.arange(len(seg)), n)
    start = np.cumsum(n) - n
    t = (np.arange(n.sum()) - start[sid]) / (n[sid] - 1)
    bend = rng.normal(0, 0.08, len(seg)) * slen
    arc = np.sin(np.pi * t) * (bend / slen)[sid]
    px_ = seg[sid, 0] + sx[sid] * t - sy[sid] * arc
    py_ = seg[sid, 1] + sy[sid] * t + sx[sid] * arc
    gen = seg[sid, 4]
    cls = np.minimum(gen, 2).astype(np.int64)
    vw = np.array([1.0, 0.9, 0.8])[cls] * (1.0 - 0.3 * t)
    # vessels seen end-on: dots over the thoracic box (the lung mask keeps those inside the lungs)
    nd = int(rng.poisson(260 * an.vessel_density))
    dx, dy = rng.uniform(tb[1].start, tb[1].stop, nd), rng.uniform(tb[0].start, tb[0].stop, nd)
    dcls = np.where(rng.random(nd) < 0.12, 1, 2)
    px_, py_ = np.concatenate([px_, dx]), np.concatenate([py_, dy])
    vw, cls = np.concatenate([vw, rng.uniform(0.8, 2.0, nd)]), np.concatenate([cls, dcls])
    cal = an.vessel_caliber
    # three widths from three blur passes: B(c2 + B(c1 + B(c0))) = B·c2 + B²·c1 + B³·c0 (blur is linear)
    gains = np.array([5.5, 3.2, 1.5]) * cal
    gains[0] *= 1.0 + 0.3 * (cal - 1)
    layers = splat(px_ - tb[1].start, py_ - tb[0].start, vw * gains[cls], shp, layer=cls, layers=3)
    vess = blur121(layers[2] + blur121(layers[1] + blur121(layers[0])))
    vess = _ONE - np.exp(-vess)  # saturate where vessels overlap
    lung_val += vess * (_F(HU_BLOOD) - lung_val)
    sub = cv.img[tb]
    sub += lungs * (lung_val - sub)

    # lesions (tuberculosis-like): nodules, cavities, patchy consolidation — only inside the lungs
    for _ in range(int(rng.poisson(an.lesion_rate))):
        x = cx + rng.choice((-1, 1)) * rng.uniform(0.3, 0.8) * ca
        y = fcy + rng.uniform(-0.6, 0.6) * cb
        iy, ix = int(y) - tb[0].start, int(x) - tb[1].start
        if not (0 <= iy < shp[0] and 0 <= ix < shp[1]) or lungs[iy, ix] < 0.9:
            continue
        kind, r = rng.random(), rng.uniform(2.0, 7.0)
        blobs = []
        if kind < 0.45:  # nodule
            blobs.append((x, y, r, r * rng.uniform(0.7, 1.0), HU_MUSCLE - 20, 1.0, 1.3))
        elif kind < 0.7:  # cavity: thick wall, air inside
            blobs.append((x, y, r + 3, r + 2.5, HU_MUSCLE - 10, 1.0, 1.0))
            blobs.append((x, y, r * 0.8, r * 0.7, HU_AIR + 60, 1.0, 0.8))
        else:  # consolidation: a cluster of soft blobs
            for _k in range(int(rng.integers(3, 8))):
                blobs.append((x + rng.normal(0, 6), y + rng.normal(0, 5), r * rng.uniform(0.6, 1.3),
                              r * rng.uniform(0.5, 1.0), HU_MUSCLE - 30, rng.uniform(0.4, 0.85), 2.5))
        for bx, by, ba, bb, val, alpha, edge in blobs:
            box, m = Canvas.shape(bx, by, ba, bb, 2.0, edge=edge)
            if box is None:
                continue
            ys0, xs0 = box[0].start - tb[0].start, box[1].start - tb[1].start
            if ys0 < 0 or xs0 < 0 or box[0].stop > tb[0].stop or box[1].stop > tb[1].stop:
                continue
            inside = lungs[ys0 : ys0 + m.shape[0], xs0 : xs0 + m.shape[1]]
            cv.paint(box, m * inside * _F(alpha), _F(val))

    # -- mediastinum: fat, heart, great vessels, airway
    cv.draw(cx + 2, fcy + cb * 0.05, med_w * 0.9, cb * 0.68, HU_FAT + 25, 2.2, edge=2.0)
    cv.draw(cx + 1, fcy - cb * 0.62, med_w * 0.35, cb * 0.36, HU_FAT + 10, 2.0, edge=2.0)
    if lv["heart"] > 0.05:
        th = -0.55 * lv["heart"]
        cv.draw(hx, hy, ha, hb, HU_BLOOD, 2.0, th, edge=1.2)
        cv.draw(hx - 1.5, hy + 1.0, ha * 0.93, hb * 0.92, HU_BLOOD + 8, 2.0, th, edge=1.0, alpha=0.9)
    if 0.18 < z < 0.55:  # ascending aorta and pulmonary trunk
        cv.draw(cx - 0.04 * A, fcy - 0.25 * cb, 10.5, 10.5, HU_BLOOD)
        if z > 0.32:
            cv.draw(cx + 0.11 * A, fcy - 0.30 * cb, 9.5, 8.5, HU_BLOOD + 5)
    if 0.20 < z < 0.32:  # aortic arch
        cv.draw(cx + 0.03 * A, fcy - 0.02 * cb, 27, 8, HU_BLOOD, 2.0, 0.9)
    cv.draw(cx + vr * 1.25, vy - vr * 1.3, 9.0, 9.0, HU_BLOOD)  # descending aorta, patient's left of the spine
    cv.draw(cx + 3, vy - vr * 1.45, 5, 4, HU_MUSCLE - 5)  # oesophagus
    if z < 0.42:  # trachea
        ax, ay = cx, fcy + cb * (0.22 - 0.2 * z)
        cv.ring(ax, ay, 9.5, 8.5, HU_CARTILAGE - 70, HU_AIR + 30, 2.0)
    elif z < 0.55:  # main bronchi
        for side in (-1, 1):
            bx, by = cx + side * 0.09 * A, fcy + cb * 0.12
            cv.ring(bx, by, 6.0, 5.0, HU_CARTILAGE - 90, HU_AIR + 30, 1.6)

    # -- spine: vertebral body, canal, posterior arch, processes
    cv.ring(cx, vy, vr, vr * 0.92, HU_CORTEX, HU_MARROW + rng.normal(0, 30), 2.2)
    ky = vy + 1.5 * vr
    for side in (-1, 1):  # transverse processes and laminae
        cv.draw(cx + side * 1.2 * vr, ky - 0.1 * vr, vr * 0.65, 3.2, HU_CORTEX - 200, 2.0, side * 0.45, edge=0.8)
    cv.ring(cx, ky, vr * 0.7, vr * 0.6, HU_CORTEX - 150, HU_CSF, vr * 0.22, edge=1.0)
    cv.draw(cx, ky + vr * 1.0, 3.0, vr * 0.5, HU_CORTEX - 150, edge=0.8)  # spinous process

    # -- ribs around the cage, costal cartilage in front, sternum
    ra, rb = ca + 1.0, cb + 1.0
    th = np.concatenate([np.sort(rng.uniform(0.15, 0.94, int(rng.integers(5, 9)))) * math.pi for _ in (0, 1)])
    sides = np.where(np.arange(len(th)) < len(th) // 2, -1.0, 1.0)  # 0 = front, pi = back
    ux, uy = sides * np.sin(th), -np.cos(th)
    length = rng.uniform(3.0, 7.0, len(th)) * (1.0 + 0.5 * (th > 2.2))
    cart = th < 0.7  # costal cartilage in front, bone (cortex around marrow) elsewhere
    cv.rings(cx + ux * ra, fcy + uy * rb, length, np.where(cart, 2.6, 2.8), np.arctan2(uy * rb, ux * ra) + math.pi / 2,
             np.where(cart, HU_CARTILAGE, HU_CORTEX), np.where(cart, HU_CARTILAGE, HU_MARROW), 1.3, edge=0.7)
    if z > 0.12:
        sty = fcy - cb - an.wall * 0.4
        cv.ring(cx, sty, 8 + 4 * lv["heart"], 3.6, HU_CORTEX - 150, HU_MARROW, 1.6)
    if z < 0.55:  # scapulae behind the ribs
        for side in (-1, 1):
            sx, sy = cx + side * (ca + an.wall * 0.3) * 0.78, fcy + cb * 0.72
            cv.ring(sx, sy, 0.25 * A, 3.0, HU_CORTEX - 100, HU_MARROW, 1.6, -side * 0.6)
    return cv.img
