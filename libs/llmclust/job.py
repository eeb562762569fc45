"""The whole job's configuration: one section per stage, checked before any work starts.

Example::

    cfg = load_job_config("ray_configs/local.yaml", ["corpus.limit=200", "clustering.n_clusters=10"])
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Iterable

from llmclust.audit import AuditConfig
from llmclust.clustering import ClusteringConfig
from llmclust.config import apply_overrides, expect, expect_choice, from_dict, load_yaml
from llmclust.corpus import CorpusConfig
from llmclust.embedding import EmbeddingConfig
from llmclust.evaluation import EvaluationConfig
from llmclust.llm import LLMConfig
from llmclust.methods import CLUSTERERS
from llmclust.methods.clusterllm.config import ClusterLLMConfig
from llmclust.methods.cotrain.config import CoTrainConfig
from llmclust.methods.lumi.config import LumiConfig
from llmclust.neighbours import NeighboursConfig
from llmclust.reduction import ReductionConfig


@dataclass
class RunConfig:
    dir: str = "runs/default"  # run directory; rerunning the same job there resumes it
    log_level: str = "INFO"

    def __post_init__(self):
        expect(bool(self.dir), "dir", self.dir, "a folder path")
        expect_choice("log_level", self.log_level, ["DEBUG", "INFO", "WARNING", "ERROR"])


@dataclass
class RayConfig:
    address: str = ""  # empty: $RAY_ADDRESS if set (ray job submit), else start Ray locally
    num_cpus: int = 0  # local Ray only; 0: all cores
    num_gpus: int = -1  # local Ray only; -1: detect

    def __post_init__(self):
        expect(self.num_cpus >= 0, "num_cpus", self.num_cpus, "0 (all cores) or a positive integer")


@dataclass
class JobConfig:
    method: str = "baseline"
    run: RunConfig = field(default_factory=RunConfig)
    ray: RayConfig = field(default_factory=RayConfig)
    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    embedding: EmbeddingConfig = field(default_factory=EmbeddingConfig)
    neighbours: NeighboursConfig = field(default_factory=NeighboursConfig)
    reduce: ReductionConfig = field(default_factory=ReductionConfig)
    clustering: ClusteringConfig = field(default_factory=ClusteringConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    llm: LLMConfig = field(default_factory=LLMConfig)
    audit: AuditConfig = field(default_factory=AuditConfig)  # how far the LLM methods trust the LLM
    lumi: LumiConfig = field(default_factory=LumiConfig)
    clusterllm: ClusterLLMConfig = field(default_factory=ClusterLLMConfig)
    cotrain: CoTrainConfig = field(default_factory=CoTrainConfig)

    def __post_init__(self):
        expect_choice("method", self.method, list(CLUSTERERS))


def load_job_config(path: str | None = None, overrides: Iterable[str] = ()) -> JobConfig:
    """YAML file (optional) + ``section.key=value`` overrides -> a validated ``JobConfig``."""
    data = load_yaml(path) if path else {}
    return from_dict(JobConfig, apply_overrides(data, overrides))


def init_ray(cfg: RayConfig) -> None:
    """Connect to the cluster named by the config or $RAY_ADDRESS, else start Ray locally."""
    import ray

    if ray.is_initialized():
        return
    address = cfg.address or os.environ.get("RAY_ADDRESS") or None
    kwargs = {"log_to_driver": True}
    if address is None:
        kwargs.update(num_cpus=cfg.num_cpus or None, include_dashboard=False)
        if cfg.num_gpus >= 0:
            kwargs["num_gpus"] = cfg.num_gpus
    ray.init(address=address, **kwargs)
