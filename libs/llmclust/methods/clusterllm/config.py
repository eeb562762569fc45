"""The ``clusterllm`` section of the job config: triplet sampling, the embedder's fine-tuning
and the choice of K (METHODS.md §2). Only dataclasses: loading a config imports no torch.

Example::

    ClusterLLMConfig(task="intent: banking customer purpose", iterations=2).triplets.budget   # 1024
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from llmclust.config import expect, expect_choice
from llmclust.training.embedder_trainer import TrainerConfig

TRIPLET_QUESTIONS = ("choice", "letters", "same_pair")  # the judge's formulations, see questions.py


@dataclass
class TripletConfig:
    budget: int = 1024  # Q: triplets to draw per iteration
    coarse_k: int = 100  # centres of the coarse clustering
    alpha: float = 1.0  # Student-t degrees of freedom of the soft assignment
    kc_fraction: float = 0.02  # K_c = max(ceil(kc_fraction * coarse_k), kc_min)
    kc_min: int = 2
    band_high: float = 0.0  # anchors: entropy ranks in [band_high, band_low) of n, highest first
    band_low: float = 0.2
    max_rounds: int = 20  # passes over the anchors to fill the budget
    seed: int = 0

    def __post_init__(self):
        expect(self.budget > 0, "budget", self.budget, "a positive number of triplets")
        expect(self.coarse_k >= 2, "coarse_k", self.coarse_k, "an integer >= 2")
        expect(self.alpha > 0, "alpha", self.alpha, "a positive number")
        expect(0 < self.kc_fraction <= 1, "kc_fraction", self.kc_fraction, "a fraction in (0, 1]")
        expect(self.kc_min >= 2, "kc_min", self.kc_min, "an integer >= 2 (two clusters to choose from)")
        expect(0 <= self.band_high < self.band_low <= 1, "band_low", (self.band_high, self.band_low),
               "0 <= band_high < band_low <= 1")
        expect(self.max_rounds > 0, "max_rounds", self.max_rounds, "a positive integer")

    def closest_count(self, k: int) -> int:
        """K_c for a coarse clustering of ``k`` centres."""
        return min(k, max(math.ceil(self.kc_fraction * k), self.kc_min))


@dataclass
class Demonstration:
    """A user-annotated pair that shows the judge the granularity wanted."""

    text_a: str = ""
    text_b: str = ""
    same: bool = False
    why: str = ""  # one line of justification

    def __post_init__(self):
        expect(bool(self.text_a and self.text_b), "demonstrations[].text_a/text_b", (self.text_a, self.text_b),
               "two non-empty texts")


@dataclass
class GranularityConfig:
    k_max: int = 200  # finest level of the hierarchy (KMeans clusters)
    k_min: int = 2  # coarsest level considered
    pairs_per_merge: int = 1  # λ
    beta: float = 0.92  # F-beta weight (< 1 favours precision of "same" answers)
    silhouette_sample: int = 2000  # texts used by the silhouette estimate (O(sample²) memory)
    seed: int = 0
    demonstrations: list[Demonstration] = field(default_factory=list)

    def __post_init__(self):
        expect(self.k_min >= 2, "k_min", self.k_min, "an integer >= 2")
        expect(self.k_max > self.k_min, "k_max", self.k_max, f"an integer > k_min={self.k_min}")
        expect(self.pairs_per_merge > 0, "pairs_per_merge", self.pairs_per_merge, "a positive integer")
        expect(self.beta > 0, "beta", self.beta, "a positive number")
        expect(self.silhouette_sample >= 10, "silhouette_sample", self.silhouette_sample, "at least 10")


@dataclass
class ClusterLLMConfig:
    task: str = "intent: what the customer wants"  # "<perspective>: <description>", shown to the judge
    iterations: int = 1  # sample -> judge -> fine-tune rounds
    temperature: float = 0.05  # InfoNCE temperature τ
    triplet_question: str = "same_pair"  # how the judge is asked: same_pair | letters | choice (questions.py)
    choose_k: bool = False  # choose K from pair answers instead of clustering.n_clusters
    triplets: TripletConfig = field(default_factory=TripletConfig)
    training: TrainerConfig = field(default_factory=TrainerConfig)
    granularity: GranularityConfig = field(default_factory=GranularityConfig)

    def __post_init__(self):
        expect(bool(self.task.strip()), "task", self.task, "a task description such as 'intent: customer purpose'")
        expect(self.iterations >= 0, "iterations", self.iterations, "0 (no fine-tuning) or more")
        expect(self.temperature > 0, "temperature", self.temperature, "a positive InfoNCE temperature, e.g. 0.05")
        expect_choice("triplet_question", self.triplet_question, list(TRIPLET_QUESTIONS))
