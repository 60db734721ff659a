"""TensorRT backend: a thin adapter over export's engine runner (``fprt.export.tensorrt``).

GPU only. ``load_engine`` checks the engine against this machine (TensorRT version, GPU, compute
capability, bytes) and returns the runner plus the ``ModelMeta`` recorded when it was built; this
adapter only turns uint8 pixels into the engine's input tensors (normalised with the model's
``Preprocess``, or raw for a uint8-input engine, the default export) and returns the runner's CUDA tensors, so
embeddings stay on the device. Pair engines need the embed engine beside them
(``<stem>.embed.plan`` / ``.engine``) for the neighbour search.

Never run on the machines fprt is developed on (no GPU, no TensorRT); the tests drive it with a fake
runner on the CPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fprt.errors import ModelError
from fprt.runtime.backends.base import Backend, log


def _companion(path: Path) -> Path | None:
    for suffix in (".plan", ".engine"):
        cand = path.with_name(path.stem + ".embed" + suffix)
        if cand.exists() and cand != path:
            return cand
    return None


class TensorRTBackend(Backend):
    format = "tensorrt"

    def __init__(self, model: str | Path, *, device: str = "cuda", threads: int | None = None, **options: Any) -> None:
        super().__init__(model, device=device, threads=threads)
        if self.device != "cuda":
            raise ModelError(f"{self.path}: a TensorRT engine runs on the GPU only; use --device cuda (or score the .onnx on the CPU)")
        if not self.path.is_file():
            raise ModelError(f"{self.path}: no such TensorRT engine file")
        from fprt.export import tensorrt as trt_export
        from fprt.io import sha256_file

        self.runner, self.meta = trt_export.load_engine(self.path, **options)
        self.embed_runner = self.runner
        self.model_sha256 = sha256_file(self.path)
        if self.meta.kind == "pair":
            companion = _companion(self.path)
            if companion is None:
                raise ModelError(f"{self.path}: a pair engine needs its embed engine beside it ({self.path.stem}.embed.plan)")
            self.embed_runner, _ = trt_export.load_engine(companion, **options)
            self.model_sha256 = sha256_file(companion)[:32] + self.model_sha256[:32]
        self.input_names = tuple(self.runner.inputs)
        self.output_names = tuple(self.runner.outputs)
        missing = [o for o in self.image_outputs if o not in self.embed_runner.outputs]
        if missing:
            raise ModelError(f"{self.path}: a {self.meta.kind!r} engine must have output(s) {list(self.image_outputs)}; it has {self.embed_runner.outputs}")
        self.details = {"engine_inputs": list(self.runner.inputs)}
        log.info("TensorRT engine %s loaded (%s)", self.path, self.meta.model)

    def _tensor(self, runner, name: str, pixels):
        import torch

        dtype = runner.dtypes[name]
        if dtype == torch.uint8:
            x = torch.from_numpy(np.ascontiguousarray(pixels))[:, None]
        else:
            x = torch.from_numpy(self.prepare(pixels))
        return x.to(runner.device, dtype, non_blocking=True)

    def forward(self, inputs: dict[str, Any]) -> dict[str, Any]:
        runner = self.runner if set(inputs) <= set(self.runner.inputs) else self.embed_runner
        return dict(runner(**inputs))

    def infer(self, pixels: np.ndarray) -> dict[str, Any]:
        out = self.embed_runner(image=self._tensor(self.embed_runner, "image", pixels))
        return {name: out[name].float() for name in self.image_outputs}

    def pair_probability(self, pixels_a, pixels_b):
        if self.meta.kind != "pair":
            return super().pair_probability(pixels_a, pixels_b)
        out = self.runner(image_a=self._tensor(self.runner, "image_a", pixels_a), image_b=self._tensor(self.runner, "image_b", pixels_b))
        return out["probability"].float().reshape(-1)

    def close(self) -> None:
        self.runner = self.embed_runner = None
