"""The copy transform behind membership self-pairs."""

from __future__ import annotations

import torch

from fprt.trainer.augment import copy_transform


def _pixels():
    return torch.randint(0, 256, (4, 1, 40, 40), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)


def test_identity_settings_return_the_image():
    x = _pixels()
    y = copy_transform(x, torch.Generator().manual_seed(1), max_rotate=0, max_shift=0, scale=(1, 1), contrast=0,
                       brightness=0, gamma=0, noise=0)
    torch.testing.assert_close(y, x.float(), atol=1e-3, rtol=0)


def test_copies_are_deterministic_moved_and_in_range():
    x = _pixels()
    a = copy_transform(x, torch.Generator().manual_seed(5))
    b = copy_transform(x, torch.Generator().manual_seed(5))
    c = copy_transform(x, torch.Generator().manual_seed(6))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert a.shape == x.shape and a.dtype == torch.float32
    assert a.min() >= 0 and a.max() <= 255
    assert not torch.allclose(a, c) and (a - x.float()).abs().mean() > 5
