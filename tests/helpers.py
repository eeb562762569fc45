"""Helpers shared by the test modules: paths, each method's tiny budgets, free ports, a job's environment."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SMALL_CSV = REPO / "tests" / "fixtures" / "banking77_small.csv"  # 10 intents x 20 texts

TINY = {  # each method on the smallest budgets that still run every one of its stages
    "baseline": [],
    "lumi": ["lumi.candidate_labels=3", "lumi.candidate_search=6", "lumi.label_max_tokens=8", "lumi.choice_max_tokens=6"],
    "clusterllm": ["clusterllm.triplets.budget=8", "clusterllm.triplets.coarse_k=4", "clusterllm.training.max_steps=1",
                   "clusterllm.training.batch_size=4", "clusterllm.training.cpus_per_worker=1",
                   "clusterllm.choose_k=true", "clusterllm.granularity.k_max=8"],
    # the audit off: it would stop SmolLM2 before DPO (tests/methods/cotrain/test_cotrain_audit.py covers that)
    "cotrain": ["audit.enabled=false", "cotrain.iterations=1", "cotrain.temperatures=[1.0]", "cotrain.max_tokens=16",
                "cotrain.density_runs=5",
                "cotrain.dpo.max_steps=1", "cotrain.dpo.batch_size=2", "cotrain.dpo.max_length=160",
                "cotrain.embedder.max_steps=1", "cotrain.embedder.batch_size=8", "cotrain.embedder.dec_clusters=4"],
}

# every GPU setting on: with the tests' Ray (one declared GPU, see conftest.ray_cluster) each
# stage asks Ray for a GPU as on a one-GPU node, one holder at a time, while devices stay the CPU;
# DPO runs as gpu.yaml has it, under DeepSpeed ZeRO-2 (on DeepSpeed's CPU accelerator here)
GPU_ON = ["embedding.gpus_per_actor=1", "llm.gpus_per_actor=1", "clusterllm.training.use_gpu=true",
          "cotrain.dpo.use_gpu=true", f"cotrain.dpo.deepspeed={REPO / 'ray_configs' / 'deepspeed_zero2.json'}",
          "cotrain.embedder.use_gpu=true", "neighbours.use_gpu=auto", "reduce.use_gpu=auto", "clustering.use_gpu=auto"]


def config_file(method: str) -> Path:
    """The local config of ``method`` (ray_configs/<method>_local.yaml; local.yaml for the baseline)."""
    return REPO / "ray_configs" / ("local.yaml" if method == "baseline" else f"{method}_local.yaml")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def job_env(**extra: str) -> dict:
    """The environment of a job started as a subprocess: this checkout's libs, a local Ray (never
    the cluster $RAY_ADDRESS names)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_ADDRESS")}
    env["PYTHONPATH"] = str(REPO / "libs")
    return {**env, **extra}


def blobs(k: int = 4, per: int = 30, d: int = 8, spread: float = 5.0, seed: int = 0,
          unit: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``k`` Gaussian blobs of ``per`` float32 points (centres ``spread`` apart in scale), and their labels;
    ``unit``: rows L2-normalised, as embeddings are."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(k, d)) * spread
    x = np.concatenate([c + rng.normal(size=(per, d)) for c in centers])
    if unit:
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), np.repeat(np.arange(k), per)
