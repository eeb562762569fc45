"""Where a heavy in-memory step (faiss kNN, faiss KMeans) runs.

On a KubeRay cluster the driver runs on the CPU head pod: a GPU step run in the driver would
never see a GPU and would load a large corpus onto a small head. So a step that can use a GPU
runs as a Ray task that asks for one whenever the Ray cluster has GPUs (``use_gpu: auto``) or
must (``always``); otherwise the same function runs in this process, as on a laptop.

Example::

    ids, sims = run_placed(knn, vectors, cfg, use_gpu=cfg.use_gpu, what="neighbours")
"""

from __future__ import annotations

import logging
from typing import Any, Callable

log = logging.getLogger(__name__)

USE_GPU = ["auto", "never", "always"]


def cluster_gpus() -> float:
    """GPUs the connected Ray cluster offers (0 when Ray is not started)."""
    import ray

    return ray.cluster_resources().get("GPU", 0) if ray.is_initialized() else 0


def wants_gpu(use_gpu: str, what: str) -> bool:
    gpus = cluster_gpus() if use_gpu != "never" else 0
    if use_gpu == "always" and not gpus:
        raise RuntimeError(f"{what}: use_gpu=always but the Ray cluster has no GPU; add a GPU worker group "
                           "or set use_gpu=auto")
    return gpus > 0


def run_placed(fn: Callable, *args: Any, use_gpu: str, what: str) -> Any:
    """``fn(*args)`` in a Ray task holding one GPU when wanted (see module doc), else here."""
    if not wants_gpu(use_gpu, what):
        return fn(*args)
    import ray

    log.info("%s: running on a GPU worker", what)
    return ray.get(ray.remote(num_gpus=1)(_call).remote(fn, *args))


def _call(fn: Callable, *args: Any) -> Any:
    return fn(*args)
