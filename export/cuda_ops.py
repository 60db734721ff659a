"""The few CUDA operations fprt's TensorRT runner and ONNX Runtime's CUDA session need, through torch
(one CUDA context shared with torch and fprt's extension; no pycuda).

``TorchCuda`` is the real implementation; tests pass a recording fake with the same methods
(``tests/export/fake_tensorrt.py: FakeCuda``), so the calling code runs on the CPU.

``StreamBridge`` gives a foreign library (TensorRT, ONNX Runtime) its own stream, ordered both ways
against torch's current stream: the library starts after everything already enqueued on torch's stream
(inputs written there) and torch's stream continues only after the library's work (outputs read there).
That avoids the legacy default stream (stream 0: implicit synchronisation and TensorRT's enqueueV3
warning) and keeps a session created on one stream correct when the caller later runs on another.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterable


class TorchCuda:
    """CUDA streams, device guards and graph capture through torch."""

    def device(self, device):
        """Context manager making ``device`` current (a no-op for non-CUDA devices)."""
        import torch

        dev = torch.device(device)
        return torch.cuda.device(dev) if dev.type == "cuda" else contextlib.nullcontext()

    def new_stream(self, device):
        import torch

        return torch.cuda.Stream(device=torch.device(device))

    def current_stream(self, device):
        import torch

        return torch.cuda.current_stream(torch.device(device))

    def handle(self, stream) -> int:
        return int(stream.cuda_stream)

    def wait(self, waiter, waitee) -> None:
        """``waiter`` runs later work only after what ``waitee`` has enqueued so far."""
        waiter.wait_stream(waitee)

    def keep_alive(self, tensor, stream) -> None:
        """``tensor`` (allocated on another stream) is in use on ``stream``: not reused before it is done."""
        tensor.record_stream(stream)

    def capture(self, device, enqueue: Callable[[int], None]) -> Callable[[], None]:
        """A CUDA graph of what ``enqueue(stream handle)`` enqueues; returns its replay function."""
        import torch

        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            enqueue(int(torch.cuda.current_stream(torch.device(device)).cuda_stream))
        return graph.replay

    def synchronize(self, device) -> None:
        import torch

        torch.cuda.synchronize(torch.device(device))


class StreamBridge:
    """A dedicated stream on ``device`` for a foreign library, ordered against torch's current stream."""

    def __init__(self, cuda: Any, device):
        self.cuda = cuda
        self.device = device
        with cuda.device(device):
            self.stream = cuda.new_stream(device)
        self.handle = cuda.handle(self.stream)

    @contextlib.contextmanager
    def enqueue(self, tensors: Iterable[Any] = ()):
        """``with bridge.enqueue(inputs) as handle:`` enqueue the library's work on ``handle``."""
        current = self.cuda.current_stream(self.device)
        self.cuda.wait(self.stream, current)
        for t in tensors:
            self.cuda.keep_alive(t, self.stream)
        yield self.handle
        self.cuda.wait(current, self.stream)
