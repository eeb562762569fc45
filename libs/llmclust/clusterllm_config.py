"""The ``clusterllm`` section of the job config (kept apart from the clusterer so that
``job.py`` can import it without importing the methods package).

Example::

    ClusterLLMConfig(task="intent: banking customer purpose", iterations=2).triplets.budget   # 1024
"""

from __future__ import annotations

from dataclasses import dataclass, field

from llmclust.config import expect
from llmclust.granularity import GranularityConfig
from llmclust.training.embedder_trainer import TrainerConfig
from llmclust.triplets import TripletConfig


@dataclass
class ClusterLLMConfig:
    task: str = "intent: what the customer wants"  # "<perspective>: <description>", shown to the judge
    iterations: int = 1  # sample -> judge -> fine-tune rounds
    temperature: float = 0.05  # InfoNCE temperature τ
    llm_temperature: float = 0.0  # sampling temperature of the LLM judge (0: greedy)
    choose_k: bool = False  # choose K from pair answers instead of clustering.n_clusters
    triplets: TripletConfig = field(default_factory=TripletConfig)
    training: TrainerConfig = field(default_factory=TrainerConfig)
    granularity: GranularityConfig = field(default_factory=GranularityConfig)

    def __post_init__(self):
        expect(bool(self.task.strip()), "task", self.task, "a task description such as 'intent: customer purpose'")
        expect(self.iterations >= 0, "iterations", self.iterations, "0 (no fine-tuning) or more")
        expect(self.temperature > 0, "temperature", self.temperature, "a positive InfoNCE temperature, e.g. 0.05")
        expect(self.llm_temperature >= 0, "llm_temperature", self.llm_temperature, "0 or more")
