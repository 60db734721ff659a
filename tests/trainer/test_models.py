"""The model registry and every model's forward contract (what export and the runtime rely on)."""

from __future__ import annotations

import pytest
import torch

from fprt.errors import ModelError
from fprt.trainer import create_model, list_models
from fprt.trainer.models import get_spec
from fprt.trainer.models.siamese import conv_trunk_size


def test_registry_lists_every_family():
    names = list_models()
    for name in ("siamese_cnn", "siamese_resnet18", "siamese_resnet50", "pair_xattn", "classifier_resnet18",
                 "features_resnet50", "features_densenet121", "features_mobilenet_v2", "features_efficientnet_b0"):
        assert name in names
    assert list_models("classifier") == ["classifier_resnet18", "classifier_resnet50"]


def test_unknown_model_and_argument_are_clear_errors():
    with pytest.raises(ModelError, match="Did you mean 'siamese_cnn'"):
        create_model("siamese_cnm")
    with pytest.raises(ModelError, match="does not take argument"):
        create_model("siamese_cnn", num_classes=3)
    with pytest.raises(ModelError, match="no pretrained backbone"):
        create_model("siamese_cnn", weights="x.pth")


def test_siamese_cnn_matches_the_paper():
    """4 blocks conv3×3 (valid) → ReLU → pool2, 16/32/64/128 filters, flatten 25,088 at 256², dense 256, L2 norm."""
    model = create_model("siamese_cnn")
    assert model.flatten_size == 128 * 14 * 14 == 25_088
    # conv: (1·9+1)·16 + (16·9+1)·32 + (32·9+1)·64 + (64·9+1)·128 = 97,152; dense: 25,088·256 + 256
    assert sum(p.numel() for p in model.parameters()) == 97_152 + 25_088 * 256 + 256 == 6_519_936
    convs = [m for m in model.features if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [16, 32, 64, 128]
    assert all(c.kernel_size == (3, 3) and c.padding == (0, 0) for c in convs)
    spec = get_spec("siamese_cnn")
    assert (spec.preprocess.size, spec.preprocess.channels, spec.preprocess.normalize) == (256, 1, "unit")
    assert spec.metric == "l2" and spec.train_defaults["batch_size"] == 32 and spec.train_defaults["lr"] == 1e-4
    x = torch.rand(3, 1, 256, 256)
    with torch.no_grad():
        emb = model(x)
    assert emb.shape == (3, 256)
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(3))
    assert (emb >= 0).all()  # ReLU before the normalisation


@pytest.mark.parametrize("size, side", [(256, 14), (128, 6), (64, 2)])
def test_conv_trunk_size(size, side):
    assert conv_trunk_size(size) == (side, 128 * side * side)
    model = create_model("siamese_cnn", input_size=size)
    with torch.no_grad():
        assert model.features(torch.zeros(1, 1, size, size)).shape == (1, 128, side, side)


def test_classifier_contract():
    spec = get_spec("classifier_resnet18")
    assert (spec.preprocess.size, spec.preprocess.channels, spec.preprocess.normalize) == (224, 3, "imagenet")
    assert spec.train_defaults == {"epochs": 10, "batch_size": 64, "lr": 1e-4}
    model = create_model("classifier_resnet18", num_classes=5).eval()
    with torch.no_grad():
        logits, emb = model(torch.rand(2, 3, 64, 64))
    assert logits.shape == (2, 5) and emb.shape == (2, 512)
    torch.testing.assert_close(model.head(emb), logits)


def test_pair_contract_is_a_symmetric_probability():
    torch.manual_seed(0)
    model = create_model("pair_xattn", backbone="cnn", in_chans=1, dim=32, heads=2).eval()
    a, b = torch.rand(4, 1, 64, 64), torch.rand(4, 1, 64, 64)
    with torch.no_grad():
        p = model(a, b)
        assert p.shape == (4,) and ((p >= 0) & (p <= 1)).all()
        torch.testing.assert_close(p, model(b, a))
        torch.testing.assert_close(p, torch.sigmoid(model.pair_logits(a, b)))
        emb = model.embed(a)
    assert emb.shape == (4, 32)
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(4))


def test_pair_xattn_on_a_torchvision_backbone():
    model = create_model("pair_xattn", backbone="resnet18", dim=64).eval()
    with torch.no_grad():
        assert model(torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)).shape == (2,)


def test_features_models_are_frozen():
    model = create_model("features_mobilenet_v2")
    assert not any(p.requires_grad for p in model.parameters())
    model.train()
    assert not model.training
    with torch.no_grad():
        assert model(torch.rand(2, 3, 64, 64)).shape == (2, 1280)


@pytest.mark.parametrize("name, dim", [("siamese_resnet18", 256), ("features_resnet18", 512)])
def test_backbone_models_take_one_channel(name, dim):
    model = create_model(name, in_chans=1).eval()
    with torch.no_grad():
        assert model(torch.rand(2, 1, 64, 64)).shape == (2, dim)
