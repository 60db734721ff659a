"""``--weights PATH``: local torchvision state dicts only, read without unpickling arbitrary objects."""

from __future__ import annotations

import pytest
import torch
import torchvision
from safetensors.torch import save_file

from fprt.errors import ModelError
from fprt.trainer import create_model


@pytest.fixture(scope="module")
def resnet18_state():
    torch.manual_seed(3)
    return torchvision.models.resnet18(weights=None).state_dict()


def test_torchvision_pth_loads_into_the_classifier_backbone(tmp_path, resnet18_state):
    path = tmp_path / "resnet18.pth"
    torch.save(resnet18_state, path)  # what torchvision distributes; fprt reads it with weights_only=True
    model = create_model("classifier_resnet18", num_classes=5, weights=str(path))
    own = model.backbone.net.state_dict()
    for key, value in resnet18_state.items():
        if not key.startswith("fc."):  # the 1000-way ImageNet head does not fit a 5-way one: left out
            torch.testing.assert_close(own[key], value, rtol=0, atol=0)
    assert model.head.out_features == 5


def test_safetensors_weights_and_a_gray_stem(tmp_path, resnet18_state):
    path = tmp_path / "resnet18.safetensors"
    save_file({k: v.contiguous() for k, v in resnet18_state.items()}, str(path))
    model = create_model("siamese_resnet18", in_chans=1, weights=str(path))
    stem = model.backbone.net.conv1.weight
    assert stem.shape == (64, 1, 7, 7)
    torch.testing.assert_close(stem, resnet18_state["conv1.weight"].sum(dim=1, keepdim=True))


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ModelError, match="no such file"):
        create_model("classifier_resnet18", weights=str(tmp_path / "nope.pth"))


def test_wrong_architecture_names_the_keys(tmp_path):
    path = tmp_path / "resnet50.pth"
    torch.save(torchvision.models.resnet50(weights=None).state_dict(), path)
    with pytest.raises(ModelError, match=r"does not fit .*shape mismatch.*layer1\.0\.conv1\.weight"):
        create_model("classifier_resnet18", weights=str(path))


def test_a_pickled_object_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"conv1.weight": torch.zeros(1), "payload": object()}, path)
    with pytest.raises(ModelError, match="cannot read it as a state dict"):
        create_model("classifier_resnet18", weights=str(path))
