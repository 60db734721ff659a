"""The Ray tests' shared pieces (imported as a plain module: tests/ has no __init__.py).

``ray_cluster`` is a session-scoped fixture: one local Ray cluster with 2 CPUs for every Ray test
(``ray.init(num_cpus=2)``, no dashboard), shut down at the end of the session. Test modules import it
(``from ray_testkit import ray_cluster``); it is idempotent, so importing it into several modules
starts one cluster. ``need_ray()`` skips a module with a clear reason when the ``[ray]`` extra is
not installed.
"""

from __future__ import annotations

import pytest

SKIP_REASON = "Ray is not installed (the [ray] extra: pip install 'fprt[ray]'); the Ray scale-out tests need it"


def need_ray():
    """Skip the calling module when Ray with Ray Data cannot be imported."""
    pytest.importorskip("ray", reason=SKIP_REASON)
    pytest.importorskip("ray.data", reason=SKIP_REASON)


@pytest.fixture(scope="session")
def ray_cluster():
    """A local Ray cluster with 2 CPUs for the whole session (``fprt.runtime.distributed.cluster.Cluster``)."""
    need_ray()
    import logging

    import ray

    from fprt.runtime.distributed.cluster import Cluster, _quiet_ray_data

    started = False
    if not ray.is_initialized():
        kw = dict(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
                  namespace="fprt-tests")
        try:  # keep idle workers (torch + the extension already imported) for the next test instead of
            # respawning one per run: seconds per test on 2 busy cores. A Ray-internal setting, so optional.
            ray.init(**kw, _system_config={"num_workers_soft_limit": 8})
        except Exception:  # noqa: BLE001 - another Ray version: start without it
            ray.shutdown()
            ray.init(**kw)
        started = True
    _quiet_ray_data()
    cluster = Cluster(address="local", started_here=started, cpus=0, gpus=0, nodes=0)
    cluster.refresh()
    yield cluster
    if started:
        ray.shutdown()
