"""torchvision backbones for fprt models: built with ``weights=None`` (nothing is downloaded), adapted to
1- or 3-channel input, optionally loaded from a local torchvision state dict (``--weights PATH``).

``Backbone`` wraps one torchvision network and exposes ``forward_maps(x)`` (the last feature maps,
N×C×h×w) and ``forward(x)`` (their global average, N×C — torchvision's own forward without its
classifier). State-dict keys stay torchvision's (under ``net.``), so a torchvision checkpoint loads as is.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from fprt.errors import ModelError

# name → (torchvision builder name, feature channels, classifier key prefix)
BACKBONES: dict[str, tuple[str, int, str]] = {
    "resnet18": ("resnet18", 512, "fc."),
    "resnet34": ("resnet34", 512, "fc."),
    "resnet50": ("resnet50", 2048, "fc."),
    "densenet121": ("densenet121", 1024, "classifier."),
    "mobilenet_v2": ("mobilenet_v2", 1280, "classifier."),
    "efficientnet_b0": ("efficientnet_b0", 1280, "classifier."),
}


class Backbone(nn.Module):
    """A torchvision network without its classifier."""

    def __init__(self, name: str, in_chans: int = 3):
        super().__init__()
        if name not in BACKBONES:
            raise ModelError(f"unknown backbone {name!r}; expected one of {sorted(BACKBONES)}")
        import torchvision

        builder, self.out_channels, self.head_prefix = BACKBONES[name]
        self.name = name
        self.in_chans = int(in_chans)
        net = getattr(torchvision.models, builder)(weights=None)
        if name.startswith("resnet"):
            net.fc = nn.Identity()
        else:
            net.classifier = nn.Identity()
        self.first_conv_key = _set_input_channels(net, self.in_chans)
        self.net = net

    def forward_maps(self, x: torch.Tensor) -> torch.Tensor:
        n = self.net
        if self.name.startswith("resnet"):
            x = n.maxpool(n.relu(n.bn1(n.conv1(x))))
            return n.layer4(n.layer3(n.layer2(n.layer1(x))))
        if self.name.startswith("densenet"):
            return F.relu(n.features(x))
        return n.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(F.adaptive_avg_pool2d(self.forward_maps(x), 1), 1)

    def load_weights(self, path: str | Path, *, extra_head_prefixes: tuple[str, ...] = ()) -> list[str]:
        """Load a local torchvision state dict into ``self.net``; returns the classifier keys left out."""
        return load_torchvision_weights(
            self.net, path, head_prefixes=(self.head_prefix, *extra_head_prefixes), first_conv_key=self.first_conv_key
        )


def random_backbones(model: nn.Module) -> list[str]:
    """Names of the torchvision backbones inside ``model`` (they start from random weights without ``--weights``)."""
    return sorted({m.name for m in model.modules() if isinstance(m, Backbone)})


def _set_input_channels(net: nn.Module, in_chans: int) -> str:
    """Replace the stem convolution when ``in_chans != 3``; returns its state-dict key (``<name>.weight``)."""
    for name, module in net.named_modules():
        if isinstance(module, nn.Conv2d):
            break
    else:  # pragma: no cover - every torchvision backbone starts with a convolution
        raise ModelError("backbone has no convolution")
    if in_chans not in (1, 3):
        raise ModelError(f"in_chans must be 1 or 3, got {in_chans}")
    if in_chans != module.in_channels:
        new = nn.Conv2d(
            in_chans,
            module.out_channels,
            module.kernel_size,
            module.stride,
            module.padding,
            module.dilation,
            module.groups,
            bias=module.bias is not None,
        )
        parent = net
        *path, leaf = name.split(".")
        for part in path:
            parent = getattr(parent, part)
        setattr(parent, leaf, new)
    return f"{name}.weight"


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a local weights file: ``.safetensors`` or a torch file read with ``weights_only=True``."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"--weights {path}: no such file (give a local torchvision state dict; nothing is downloaded)")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelError(f"--weights {path}: cannot read it as a state dict ({type(exc).__name__}: {exc})") from exc
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"--weights {path}: expected a mapping of parameter names to tensors")
    return state


def load_torchvision_weights(
    net: nn.Module, path: str | Path, *, head_prefixes: tuple[str, ...], first_conv_key: str | None = None
) -> list[str]:
    """Load ``path`` into ``net`` strictly, except the classifier (``head_prefixes``), which may be absent or differ.

    A 3-channel stem loads into a 1-channel one by summing its kernels over the colour axis (as timm
    does). Anything else missing, unexpected or of another shape is a ``ModelError`` naming the keys.
    """
    state = read_state_dict(path)
    state = {k.removeprefix("module."): v for k, v in state.items()}
    own = net.state_dict()
    if first_conv_key and first_conv_key in state and first_conv_key in own:
        w, target = state[first_conv_key], own[first_conv_key]
        if w.ndim == 4 and w.shape[1] == 3 and target.shape[1] == 1:
            state[first_conv_key] = w.sum(dim=1, keepdim=True)

    def is_head(key: str) -> bool:
        return any(key.startswith(p) for p in head_prefixes)

    skipped = sorted(k for k in state if is_head(k) and (k not in own or own[k].shape != state[k].shape))
    missing = sorted(k for k in own if k not in state and not is_head(k))
    unexpected = sorted(k for k in state if k not in own and not is_head(k))
    mismatched = sorted(
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in state
        if k in own and not is_head(k) and state[k].shape != own[k].shape
    )
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing key(s) (e.g. {', '.join(missing[:3])})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s) (e.g. {', '.join(unexpected[:3])})")
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatch(es) (e.g. {'; '.join(mismatched[:3])})")
    if problems:
        raise ModelError(
            f"--weights {path}: does not fit {type(net).__name__}: " + "; ".join(problems)
            + " (expected a torchvision state dict of the same architecture)"
        )
    load = {k: v for k, v in state.items() if k not in skipped}
    net.load_state_dict(load, strict=False)
    return skipped
