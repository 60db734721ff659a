"""Connecting to Ray: ``connect("auto")`` starts a local instance with every core of this machine,
``connect(ADDRESS)`` joins an existing cluster; without Ray installed, a clear error says how to get it.

    with connect("auto") as cluster:            # ray.init(address="local", num_cpus=<all cores>, ...)
        print(cluster.cpus, cluster.gpus, cluster.describe())

- ``auto`` never needs the network: a head node on this machine only, no dashboard, workers'
  stdout/stderr not forwarded to the terminal (``log_to_driver=False``; set ``FPRT_RAY_LOG_TO_DRIVER=1``
  to see it — errors raised in workers always come back to the driver with their traceback). It is
  shut down when the run ends.
- ``ADDRESS`` is ``HOST:6379`` (the head's GCS),
  ``ray://HOST:10001`` (Ray Client) or ``"ray"`` for the cluster this machine belongs to
  (``RAY_ADDRESS`` / ``ray start``). Only the connection is closed at the end, never the cluster. An
  address where nothing answers fails at once with a clear error (``ray.init`` alone retries for minutes).
  Every node needs the same fprt installed (``pip install 'fprt[ray]'``) and the images, the model
  and the embedding cache at the same paths (a shared filesystem).
- Already connected (a notebook, a test fixture): that connection is used and left open.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

from fprt.errors import FprtError, MissingDependencyError

log = logging.getLogger("fprt.runtime")

LOCAL = ("auto", "local")


def require_ray():
    """``import ray`` and ``ray.data``, or MissingDependencyError saying how to install the extra."""
    from fprt.runtime.distributed import INSTALL_HINT

    try:
        import ray
        import ray.data  # noqa: F401  (the [ray] extra is ray[data])
    except ImportError as exc:
        raise MissingDependencyError(
            f"--ray needs Ray with Ray Data, which is not installed here ({exc}): {INSTALL_HINT}"
        ) from exc
    return ray


@dataclass
class Cluster:
    """What the run is connected to: total CPUs/GPUs, nodes, and whether fprt started it."""

    address: str
    started_here: bool
    cpus: int
    gpus: int
    nodes: int
    node_memory: list[int] = field(default_factory=list)  # bytes per alive node (Ray's "memory" resource)
    object_store_memory: list[int] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        return {"address": self.address, "started_here": self.started_here, "nodes": self.nodes, "cpus": self.cpus,
                "gpus": self.gpus}

    def refresh(self) -> None:
        """Re-read the cluster's resources (an autoscaling cluster grows and shrinks)."""
        ray = require_ray()
        total = ray.cluster_resources()
        self.cpus = int(total.get("CPU", 0))
        self.gpus = int(total.get("GPU", 0))
        alive = [n for n in ray.nodes() if n.get("Alive")]
        self.nodes = len(alive)
        self.node_memory = [int(n.get("Resources", {}).get("memory", 0)) for n in alive]
        self.object_store_memory = [int(n.get("Resources", {}).get("object_store_memory", 0)) for n in alive]


class connect:  # noqa: N801 - used as a context manager, reads like a function
    """Context manager: a connected ``Cluster`` for the block, disconnected (or shut down) after it."""

    def __init__(self, address: str = "auto", *, num_cpus: int | None = None, num_gpus: int | None = None) -> None:
        if not address or not str(address).strip():
            raise FprtError("--ray needs a value: auto (a local Ray instance with every core) or a cluster ADDRESS")
        self.address = str(address).strip()
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        self.cluster: Cluster | None = None
        self._shutdown = False

    def __enter__(self) -> Cluster:
        ray = require_ray()
        _quiet_ray_data()
        host_port = None if self.address in LOCAL else _parse_address(self.address)
        if ray.is_initialized():
            address = "connected"
            started = False
        elif self.address in LOCAL:
            cpus = self.num_cpus or os.cpu_count() or 1
            log.info("starting a local Ray instance with %d CPUs", cpus)
            ray.init(address="local", num_cpus=cpus, num_gpus=self.num_gpus, include_dashboard=False,
                     log_to_driver=_log_to_driver(), logging_level=logging.WARNING, namespace="fprt")
            address, started = "local", True
            self._shutdown = True
        else:
            if host_port is not None:
                _check_reachable(self.address, *host_port)
            try:
                ray.init(address="auto" if self.address == "ray" else self.address, log_to_driver=_log_to_driver(), logging_level=logging.WARNING,
                         namespace="fprt")
            except (ConnectionError, ValueError, RuntimeError) as exc:
                raise FprtError(f"--ray {self.address}: cannot connect to a Ray cluster there ({exc}); "
                                "use --ray auto for a local instance, or HOST:6379 / ray://HOST:10001") from exc
            address, started = self.address, False
            self._shutdown = True  # disconnects this driver only; the cluster keeps running
        self.cluster = Cluster(address=address, started_here=started, cpus=0, gpus=0, nodes=0)
        self.cluster.refresh()
        return self.cluster

    def __exit__(self, *exc) -> None:
        if self._shutdown:
            import ray

            ray.shutdown()


def _parse_address(address: str) -> tuple[str, int] | None:
    """(host, port) of HOST:PORT or ray://HOST:PORT; None for "ray" (Ray finds the cluster itself)."""
    if address == "ray":
        return None
    target = address[len("ray://"):] if address.startswith("ray://") else address
    host, sep, port = target.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise FprtError(f"--ray {address!r}: expected auto, HOST:PORT (the head's GCS, e.g. 10.0.0.5:6379), "
                        "ray://HOST:PORT (Ray Client, e.g. ray://10.0.0.5:10001) or ray (the cluster of `ray start`)")
    return host.strip("[]"), int(port)


def _check_reachable(address: str, host: str, port: int, timeout: float = 10.0) -> None:
    """Fail fast with a clear message when nothing answers at HOST:PORT: ``ray.init`` itself keeps
    retrying for minutes against an address where nothing listens."""
    import socket

    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        raise FprtError(f"--ray {address}: no Ray head answers at {host}:{port} ({exc}); start one there with "
                        f"`ray start --head --port={port}`, or use --ray auto for a local instance") from exc


def _log_to_driver() -> bool:
    return os.environ.get("FPRT_RAY_LOG_TO_DRIVER", "0") not in ("", "0", "false", "False")


def _quiet_ray_data() -> None:
    """Ray Data's own progress bars and per-dataset log lines off (fprt prints one bar of its own)."""
    import ray.data

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    if hasattr(ctx, "print_on_execution_start"):
        ctx.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)  # "progress bars disabled": we know
