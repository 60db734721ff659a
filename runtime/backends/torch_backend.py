"""PyTorch backend: a training run folder or its ``.safetensors`` checkpoint, run in eager mode.

Loaded through ``fprt.trainer.load_checkpoint`` (never unpickles). The model's own ``Preprocess``
runs as a torch module on the model's device, so uint8 pixels are the only thing copied to a GPU.
``compile=True`` wraps the model in ``torch.compile`` (worth it only for long runs).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from fprt.errors import MissingDependencyError, ModelError
from fprt.modelmeta import ModelMeta
from fprt.runtime.backends.base import Backend, log


def checkpoint_hash(path: Path) -> str:
    """SHA-256 over a checkpoint file, or over every weight/config file of a run folder (sorted by name)."""
    from fprt.io import sha256_file

    if path.is_file():
        return sha256_file(path)
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in (".safetensors", ".json"))
    if not files:
        raise ModelError(f"{path}: no .safetensors checkpoint in this run folder")
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.name.encode() + b"\0" + sha256_file(f).encode())
    return digest.hexdigest()


class TorchBackend(Backend):
    format = "torch"

    def __init__(
        self,
        model: str | Path,
        *,
        device: str = "cpu",
        threads: int | None = None,
        compile: bool = False,
        module=None,
        meta: ModelMeta | None = None,
        **unused: Any,
    ) -> None:
        super().__init__(model, device=device, threads=threads)
        import torch

        if self.device == "cuda" and not torch.cuda.is_available():
            raise MissingDependencyError(
                f"--device cuda: torch {torch.__version__} sees no CUDA device (CUDA build: {torch.version.cuda or 'none'})"
            )
        if module is None:
            if not self.path.exists():
                raise ModelError(f"{self.path}: no such training run folder or checkpoint")
            try:
                from fprt.trainer import load_checkpoint
            except ImportError as exc:
                raise MissingDependencyError(f"the torch backend needs fprt.trainer.load_checkpoint ({exc})") from exc
            module, meta = load_checkpoint(self.path)
            self.model_sha256 = checkpoint_hash(self.path)
        else:  # an in-memory module (tests, notebooks): hashed from its weights
            if meta is None:
                raise ValueError("TorchBackend(module=...) needs meta=ModelMeta(...)")
            digest = hashlib.sha256(meta.to_json().encode())
            for name, tensor in sorted(module.state_dict().items()):
                digest.update(name.encode())
                digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
            self.model_sha256 = digest.hexdigest()
        self.meta = meta
        if self.device == "cpu":
            torch.set_num_threads(self.threads)
        self.torch_device = torch.device(self.device)
        self.module = module.eval().to(self.torch_device)
        self.pre = meta.preprocess.module().to(self.torch_device)
        self.compiled = False
        self._run = self.module
        if compile:
            self._run = torch.compile(self.module)
            self.compiled = True
        self.input_names = ("image_a", "image_b") if meta.kind == "pair" else ("image",)
        self.output_names = {"embedding": ("embedding",), "classifier": ("logits", "embedding"), "pair": ("probability",)}[
            meta.kind
        ]
        self.details = {"torch": torch.__version__, "compiled": self.compiled}
        log.info("torch %s: %s (%s) on %s", torch.__version__, self.path, meta.model, self.device)

    def _to_input(self, pixels) -> Any:
        import torch

        if isinstance(pixels, torch.Tensor):
            t = pixels
        else:
            size = self.meta.preprocess.size
            p = np.asarray(pixels)
            if p.dtype != np.uint8 or p.ndim != 3 or p.shape[1:] != (size, size):
                raise ValueError(f"expected N×{size}×{size} uint8 pixels, got {p.dtype} {p.shape}")
            t = torch.from_numpy(np.ascontiguousarray(p))
        if t.ndim == 3:
            t = t[:, None]
        return self.pre(t.to(self.torch_device, non_blocking=True))

    def _out(self, t):
        t = t.float()
        return t if self.device == "cuda" else t.cpu().numpy()

    def forward(self, inputs: dict[str, Any]) -> dict[str, Any]:
        import torch

        with torch.inference_mode():
            tensors = {k: (v if isinstance(v, torch.Tensor) else torch.from_numpy(np.asarray(v))).to(self.torch_device) for k, v in inputs.items()}
            if self.meta.kind == "pair":
                if set(tensors) == {"image"}:
                    return {"embedding": self._out(self.module.embed(tensors["image"]))}
                return {"probability": self._out(self._run(tensors["image_a"], tensors["image_b"]))}
            out = self._run(tensors["image"])
            if self.meta.kind == "classifier":
                logits, emb = out
                return {"logits": self._out(logits), "embedding": self._out(emb)}
            return {"embedding": self._out(out)}

    def infer(self, pixels) -> dict[str, Any]:
        import torch

        with torch.inference_mode():
            x = self._to_input(pixels)
            if self.meta.kind == "pair":
                return {"embedding": self._out(self.module.embed(x))}
            out = self._run(x)
            if self.meta.kind == "classifier":
                logits, emb = out
                return {"logits": self._out(logits), "embedding": self._out(emb)}
            return {"embedding": self._out(out)}

    def pair_probability(self, pixels_a, pixels_b):
        import torch

        if self.meta.kind != "pair":
            return super().pair_probability(pixels_a, pixels_b)
        with torch.inference_mode():
            prob = self._run(self._to_input(pixels_a), self._to_input(pixels_b))
            return self._out(prob.reshape(-1))

    def close(self) -> None:
        self.module = self._run = None
