import json

import numpy as np
import pytest
import torch

from fprt.preprocess import Preprocess


def _image(seed=0, shape=(256, 256)):
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("normalize", ["unit", "imagenet"])
def test_numpy_and_torch_paths_are_bit_identical(channels, normalize):
    spec = Preprocess(size=224, channels=channels, normalize=normalize)
    batch = np.stack([spec.resize_uint8(_image(s)) for s in range(3)])
    from_numpy = spec.normalize_uint8(batch)
    from_torch = spec.module()(torch.from_numpy(batch.copy())[:, None]).numpy()
    assert from_numpy.shape == (3, channels, 224, 224) and from_numpy.dtype == np.float32
    assert np.array_equal(from_numpy, from_torch)


def test_unit_scaling_is_zero_to_one_and_matches_reference():
    spec = Preprocess()
    img = _image()
    x = spec(img)
    assert x.shape == (1, 256, 256)
    np.testing.assert_array_equal(x[0], img.astype(np.float32) / np.float32(255))
    assert x.min() >= 0.0 and x.max() <= 1.0


def test_imagenet_matches_torchvision_normalize():
    from torchvision.transforms.v2 import functional as F

    spec = Preprocess(size=256, channels=3, normalize="imagenet")
    img = _image(1)
    expected = F.normalize(torch.from_numpy(img).float().div(255).expand(3, -1, -1), spec.mean, spec.std)
    np.testing.assert_allclose(spec(img), expected.numpy(), rtol=0, atol=1e-6)


def test_resize_matches_pil_and_is_deterministic():
    from PIL import Image

    spec = Preprocess(size=128, resize="bicubic")
    img = _image(2, (300, 200))
    out = spec.resize_uint8(img)
    ref = np.asarray(Image.fromarray(img).resize((128, 128), Image.Resampling.BICUBIC))
    assert out.shape == (128, 128) and np.array_equal(out, ref)
    assert np.array_equal(out, spec.resize_uint8(img.copy()))


def test_same_size_is_not_resized():
    img = _image()
    assert Preprocess(size=256).resize_uint8(img) is img


def test_json_round_trip():
    spec = Preprocess(size=224, resize="area", channels=3, normalize="imagenet")
    assert Preprocess.from_json(spec.to_json()) == spec
    assert json.loads(spec.to_json()) == spec.to_dict()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"size": 4}, "size"),
        ({"size": 256.0}, "size"),
        ({"resize": "lanczos9"}, "resize"),
        ({"channels": 2}, "channels"),
        ({"normalize": "zscore"}, "normalize"),
    ],
)
def test_invalid_specs_are_rejected_with_the_field_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Preprocess(**kwargs)


def test_unknown_fields_and_bad_inputs():
    with pytest.raises(ValueError, match="unknown Preprocess field"):
        Preprocess.from_dict({"size": 64, "colour": "red"})
    with pytest.raises(ValueError, match="uint8"):
        Preprocess().resize_uint8(np.zeros((8, 8), np.float32))
    with pytest.raises(ValueError, match="uint8"):
        Preprocess().normalize_uint8(np.zeros((8, 8), np.int16))
