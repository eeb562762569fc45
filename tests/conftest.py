"""Shared fixtures and helpers: a real local Ray cluster, a small Banking77 subset, a quick job config,
each method's tiny budgets, free ports and the environment of a job started as a subprocess.

The helpers live in ``helpers.py`` beside this file; test modules import them by name
(``from helpers import REPO, TINY, free_port``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from helpers import REPO, SMALL_CSV

sys.path.insert(0, str(REPO / "libs"))
# Ray workers import llmclust too: make them see this checkout's libs, not another install
os.environ["PYTHONPATH"] = os.pathsep.join([str(REPO / "libs"), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def ray_cluster():
    """One real local Ray instance for the whole session (starting one takes seconds).

    It declares one GPU, which torch cannot see: a stage that asks for a GPU (``helpers.GPU_ON``)
    is scheduled as on a one-GPU node and runs on the CPU; nothing asks for it by default."""
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture
def small_csv() -> Path:
    return SMALL_CSV


@pytest.fixture
def job_config(tmp_path, small_csv):
    """A validated JobConfig over the small subset, with its own run directory."""
    from llmclust.methods.job import load_job_config

    return load_job_config(REPO / "ray_configs" / "local.yaml", [
        f"corpus.path={small_csv}", f"run.dir={tmp_path / 'run'}", "clustering.n_clusters=10",
        "clustering.seeds=[0,1]", "embedding.batch_size=64",
    ])
