"""Where a heavy in-memory step (faiss kNN, faiss KMeans, UMAP) runs.

On a KubeRay cluster the driver runs on the CPU head pod: a GPU step run in the driver would
never see a GPU and would load a large corpus onto a small head. So a step that can use a GPU
runs as a Ray task that asks for one whenever the Ray cluster has GPUs (``use_gpu: auto``) or
must (``always``); otherwise the same function runs in this process, as on a laptop.

"Can use a GPU" is decided by the library the step would run, not by the cluster alone:
umap-learn without cuML, or faiss built without GPU support (faiss-cpu), is CPU code, and a
Ray task holding a GPU and one CPU is the slowest place for it (and a fresh process, which
pays numba's compilation again: 35-42 s a seed, measured). Such a step runs here, where the
driver's cores and its already compiled code are; ``always`` then fails saying what to install.

Example::

    ids, sims = run_placed(knn, vectors, cfg, use_gpu=cfg.use_gpu, what="neighbours",
                           gpu_code=faiss_has_gpu())
"""

from __future__ import annotations

import importlib.util
import logging
from typing import Any, Callable

from llmclust.ray_session import make_room

log = logging.getLogger(__name__)

USE_GPU = ["auto", "never", "always"]


def cluster_gpus() -> float:
    """GPUs the connected Ray cluster offers (0 when Ray is not started)."""
    import ray

    return ray.cluster_resources().get("GPU", 0) if ray.is_initialized() else 0


def faiss_has_gpu() -> bool:
    """This process' faiss was built with GPU support (faiss-gpu, not faiss-cpu)."""
    from llmclust.optional import import_faiss

    return hasattr(import_faiss(), "StandardGpuResources")


def cuml_installed() -> bool:
    """cuML (RAPIDS) is importable here; the job's image is the workers' image on KubeRay."""
    return importlib.util.find_spec("cuml") is not None


def wants_gpu(use_gpu: str, what: str, gpu_code: bool = True) -> bool:
    """Whether the step goes to a GPU task: the cluster has a GPU and the step's library can use it."""
    gpus = cluster_gpus() if use_gpu != "never" else 0
    if use_gpu == "always" and not gpus:
        raise RuntimeError(f"{what}: use_gpu=always but the Ray cluster has no GPU; add a GPU worker group "
                           "or set use_gpu=auto")
    if use_gpu == "always" and not gpu_code:
        raise RuntimeError(f"{what}: use_gpu=always but its library here has no GPU code (faiss-cpu, or "
                           "umap-learn without cuML); install faiss-gpu / cuML or set use_gpu=auto")
    if gpus and not gpu_code:
        log.info("%s: CPU code (no GPU build of its library here): running in this process", what)
    return gpus > 0 and gpu_code


def run_placed(fn: Callable, *args: Any, use_gpu: str, what: str, gpu_code: bool = True) -> Any:
    """``fn(*args)`` in a Ray task holding one GPU when wanted (see module doc), else here.

    ``gpu_code``: the library ``fn`` runs has GPU code here (see :func:`faiss_has_gpu`,
    :func:`cuml_installed`); without it the step stays in this process, GPU or no GPU.
    """
    if not wants_gpu(use_gpu, what, gpu_code):
        return fn(*args)
    import ray

    log.info("%s: running on a GPU worker", what)
    make_room({"GPU": 1})
    return ray.get(ray.remote(num_gpus=1)(_call).remote(fn, *args))


def _call(fn: Callable, *args: Any) -> Any:
    return fn(*args)
