"""The whole job's configuration: one section per stage, checked before any work starts.

Example::

    cfg = load_job_config("ray_configs/local.yaml", ["corpus.limit=200", "clustering.n_clusters=10"])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from llmclust.config import apply_overrides, expect, expect_choice, from_dict, load_yaml
from llmclust.llm import LLMConfig
from llmclust.llm.audit import AuditConfig
from llmclust.methods import CLUSTERERS
from llmclust.methods.clusterllm.config import ClusterLLMConfig
from llmclust.methods.cotrain.config import CoTrainConfig
from llmclust.methods.lumi.config import LumiConfig
from llmclust.pipeline.clustering import ClusteringConfig
from llmclust.pipeline.corpus import CorpusConfig
from llmclust.pipeline.embedding import EmbeddingConfig
from llmclust.pipeline.evaluation import EvaluationConfig
from llmclust.pipeline.neighbours import NeighboursConfig
from llmclust.pipeline.reduction import ReductionConfig
from llmclust.ray_session import RayConfig


@dataclass
class RunConfig:
    dir: str = "runs/default"  # run directory; rerunning the same job there resumes it
    log_level: str = "INFO"

    def __post_init__(self):
        expect(bool(self.dir), "dir", self.dir, "a folder path")
        expect_choice("log_level", self.log_level, ["DEBUG", "INFO", "WARNING", "ERROR"])


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
