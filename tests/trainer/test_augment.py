"""The trace-like copies behind membership self-pairs (``copy_transform``, ``half_blend``)."""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from fprt.trainer.augment import copy_transform, half_blend

STILL = dict(rotate=0, shift=0, scale=0, warp=0, blur=0, gamma=0, contrast=0, level=0, noise=0)


def _pixels():
    return torch.randint(0, 256, (4, 1, 40, 40), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)


def test_identity_settings_return_the_image():
    x = _pixels()
    y = copy_transform(x, torch.Generator().manual_seed(1), **STILL)
    torch.testing.assert_close(y, x.float(), atol=1e-3, rtol=0)


def test_a_pure_shift_is_scipys_shift():
    # shift only (bound 0.1 of the side): the copy is the image moved by the drawn offset; recover the offset from
    # the copy by the best integer-free match against scipy.ndimage.shift, an independent oracle
    img = np.zeros((1, 1, 40, 40), np.float32)
    img[0, 0, 12:22, 15:30] = 200.0
    img = ndimage.gaussian_filter(img, (0, 0, 2, 2))
    y = copy_transform(torch.from_numpy(img), torch.Generator().manual_seed(3), **{**STILL, "shift": 0.1})[0, 0].numpy()
    errors = {(dy, dx): float(np.abs(ndimage.shift(img[0, 0], (dy, dx), order=1) - y)[6:-6, 6:-6].mean())
              for dy in np.arange(-4, 4.01, 0.25) for dx in np.arange(-4, 4.01, 0.25)}
    (dy, dx), err = min(errors.items(), key=lambda kv: kv[1])
    assert (dy, dx) != (0, 0) and err < 1.0, (dy, dx, err)


def test_copies_are_deterministic_moved_and_in_range():
    x = _pixels()
    a = copy_transform(x, torch.Generator().manual_seed(5))
    b = copy_transform(x, torch.Generator().manual_seed(5))
    c = copy_transform(x, torch.Generator().manual_seed(6))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert a.shape == x.shape and a.dtype == torch.float32
    assert a.min() >= 0 and a.max() <= 255
    assert not torch.allclose(a, c) and (a - x.float()).abs().mean() > 5


def test_half_blend_keeps_one_side_and_takes_the_other_from_the_partner():
    x = torch.zeros((64, 1, 20, 40))
    y = torch.full((64, 1, 20, 40), 100.0)
    out, which = half_blend(x, y, torch.Generator().manual_seed(0), probability=0.5)
    assert 10 < int(which.sum()) < 54
    torch.testing.assert_close(out[~which], x[~which])
    blended = out[which]
    left, right = blended[..., :8].mean((1, 2, 3)), blended[..., -8:].mean((1, 2, 3))
    # one edge is the image's own pixels, the other the partner's; the seam lies near the middle
    assert bool(((left == 0) & (right == 100) | (left == 100) & (right == 0)).all())
    middle = blended[..., 20].mean()
    assert 10 < float(middle) < 90


def test_blur_is_scipys_gaussian_per_image():
    from fprt.trainer.augment import _blur

    x = torch.rand((3, 1, 24, 24), generator=torch.Generator().manual_seed(2)) * 255
    sigmas = torch.tensor([0.3, 0.7, 1.0])
    y = _blur(x, sigmas)
    for i, s in enumerate(sigmas.tolist()):  # scipy's 5-tap Gaussian (truncate = 2 / sigma), reflected edges
        ref = ndimage.gaussian_filter(x[i, 0].numpy().astype(np.float64), s, mode="mirror", truncate=2.0 / s)
        np.testing.assert_allclose(y[i, 0].numpy(), ref, atol=1e-3)
