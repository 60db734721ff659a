"""``Preprocess``: how a decoded image becomes a model input.

One small, frozen, serialisable value. The trainer stores it in the run's config, export writes it
into the ONNX metadata, the runtime reads it back, so training and scoring cannot disagree (the
AIMultimediaLab code trained on [0, 255] and scored on [0, 1]; fprt cannot make that mistake).

The work is split in two steps so that an ONNX graph can take raw pixels (the default export; ``--float-input`` for the other kind):

1. ``resize_uint8``: H×W uint8 → size×size uint8, with PIL (deterministic, bit-exact).
2. ``normalize_uint8``: N×H×W uint8 → N×C×H×W float32:
   ``x / 255`` (``unit``), then for ``imagenet`` ``(x - mean[c]) / std[c]``; a gray image is
   replicated to 3 channels when ``channels == 3``. With ``channels == 1`` and ``imagenet`` the
   gray image uses the means of ImageNet's channel statistics (mean 0.449, std 0.226).
   ``PreprocessModule`` does the same operations in the same order in torch, so NumPy, PyTorch and
   the exported graph produce the same float32 values.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
GRAY_IMAGENET_MEAN = (0.449,)
GRAY_IMAGENET_STD = (0.226,)

# name → PIL resampling filter (looked up lazily so that importing this module stays cheap)
RESIZE_MODES = ("bilinear", "bicubic", "nearest", "area")
NORMALIZATIONS = ("unit", "imagenet")


@dataclass(frozen=True)
class Preprocess:
    """Model input spec: output ``size``×``size``, ``resize`` filter, ``channels`` (1 or 3), ``normalize``."""

    size: int = 256
    resize: str = "bilinear"
    channels: int = 1
    normalize: str = "unit"

    def __post_init__(self) -> None:
        if not isinstance(self.size, int) or isinstance(self.size, bool) or not 8 <= self.size <= 4096:
            raise ValueError(f"Preprocess.size must be an integer in [8, 4096], got {self.size!r}")
        if self.resize not in RESIZE_MODES:
            raise ValueError(f"Preprocess.resize must be one of {RESIZE_MODES}, got {self.resize!r}")
        if self.channels not in (1, 3):
            raise ValueError(f"Preprocess.channels must be 1 or 3, got {self.channels!r}")
        if self.normalize not in NORMALIZATIONS:
            raise ValueError(f"Preprocess.normalize must be one of {NORMALIZATIONS}, got {self.normalize!r}")

    # ---------------------------------------------------------------- constants
    @property
    def mean(self) -> tuple[float, ...]:
        """Per-channel mean subtracted after scaling to [0, 1] (zeros for ``unit``)."""
        if self.normalize == "unit":
            return (0.0,) * self.channels
        return IMAGENET_MEAN if self.channels == 3 else GRAY_IMAGENET_MEAN

    @property
    def std(self) -> tuple[float, ...]:
        """Per-channel standard deviation divided by after subtracting ``mean`` (ones for ``unit``)."""
        if self.normalize == "unit":
            return (1.0,) * self.channels
        return IMAGENET_STD if self.channels == 3 else GRAY_IMAGENET_STD

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """C×H×W of one model input."""
        return (self.channels, self.size, self.size)

    # ---------------------------------------------------------------- numpy path
    def resize_uint8(self, image: np.ndarray) -> np.ndarray:
        """H×W uint8 → ``size``×``size`` uint8 (returned unchanged when already that size)."""
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 2:
            raise ValueError(
                f"resize_uint8 expects a 2-D uint8 image, got dtype {image.dtype} and shape {image.shape}"
            )
        if image.shape == (self.size, self.size):
            return image
        from PIL import Image

        filters = {
            "bilinear": Image.Resampling.BILINEAR,
            "bicubic": Image.Resampling.BICUBIC,
            "nearest": Image.Resampling.NEAREST,
            "area": Image.Resampling.BOX,
        }
        out = Image.fromarray(image).resize((self.size, self.size), resample=filters[self.resize])
        return np.asarray(out, dtype=np.uint8)

    def normalize_uint8(self, pixels: np.ndarray) -> np.ndarray:
        """N×H×W (or H×W, or N×1×H×W) uint8 → N×C×H×W (or C×H×W) float32."""
        pixels = np.asarray(pixels)
        if pixels.dtype != np.uint8:
            raise ValueError(f"normalize_uint8 expects uint8 pixels, got {pixels.dtype}")
        single = pixels.ndim == 2
        if single:
            pixels = pixels[None]
        if pixels.ndim == 4:
            if pixels.shape[1] != 1:
                raise ValueError(f"expected gray N×1×H×W pixels, got shape {pixels.shape}")
            pixels = pixels[:, 0]
        if pixels.ndim != 3:
            raise ValueError(f"expected N×H×W uint8 pixels, got shape {pixels.shape}")
        x = pixels.astype(np.float32)[:, None] / np.float32(255.0)
        if self.channels == 3:
            x = np.repeat(x, 3, axis=1)
        if self.normalize != "unit":
            mean = np.asarray(self.mean, dtype=np.float32).reshape(1, -1, 1, 1)
            std = np.asarray(self.std, dtype=np.float32).reshape(1, -1, 1, 1)
            x = (x - mean) / std
        x = np.ascontiguousarray(x, dtype=np.float32)
        return x[0] if single else x

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """One decoded H×W uint8 image → C×H×W float32 model input."""
        return self.normalize_uint8(self.resize_uint8(image))

    def batch(self, images) -> np.ndarray:
        """A sequence of decoded H×W uint8 images → N×C×H×W float32."""
        return self.normalize_uint8(np.stack([self.resize_uint8(im) for im in images]))

    # ---------------------------------------------------------------- torch path
    def module(self):
        """A ``torch.nn.Module`` doing ``normalize_uint8`` on N×1×H×W tensors (uint8 or float in [0, 255])."""
        return PreprocessModule(self)

    # ---------------------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Preprocess":
        unknown = set(data) - {"size", "resize", "channels", "normalize"}
        if unknown:
            raise ValueError(f"unknown Preprocess field(s): {sorted(unknown)}")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> "Preprocess":
        return cls.from_dict(json.loads(text))


def PreprocessModule(spec: Preprocess):  # noqa: N802 - a factory that reads like the class it builds
    """Build the torch module for ``spec`` (defined lazily so ``fprt.preprocess`` never imports torch)."""
    import torch

    class _PreprocessModule(torch.nn.Module):
        def __init__(self, spec: Preprocess):
            super().__init__()
            self.spec = spec
            shape = (1, spec.channels, 1, 1)
            self.register_buffer("mean", torch.tensor(spec.mean, dtype=torch.float32).reshape(shape))
            self.register_buffer("std", torch.tensor(spec.std, dtype=torch.float32).reshape(shape))

        def forward(self, pixels: torch.Tensor) -> torch.Tensor:
            x = pixels.to(torch.float32) / 255.0
            if self.spec.channels == 3:
                x = x.expand(-1, 3, -1, -1)
            if self.spec.normalize != "unit":
                x = (x - self.mean) / self.std
            return x

    return _PreprocessModule(spec)
