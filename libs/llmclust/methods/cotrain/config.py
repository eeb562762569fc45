"""The ``cotrain`` section of the job config: density-guided DPO co-training (METHODS.md §3).

Only dataclasses: loading a config imports no torch. ``dpo`` is the LLM's LoRA DPO
(:class:`llmclust.training.dpo.DPOTrainConfig`); ``embedder`` the embedder's contrastive + DEC
update, run by the one embedder trainer (:mod:`llmclust.training.embedder_trainer`).

Example::

    CoTrainConfig(iterations=1, temperatures=[0.7]).embedder.dec_clusters     # 256
"""

from __future__ import annotations

from dataclasses import dataclass, field

from llmclust.config import expect, expect_choice
from llmclust.training.dpo import DPOTrainConfig
from llmclust.training.embedder_trainer import TrainerConfig


@dataclass
class CoTrainEmbedderConfig(TrainerConfig):
    """The embedder trainer's settings plus the contrastive + DEC loss (``ContrastiveDECLoss``)."""

    learning_rate: float = 3e-7  # seed paper's value for e5-large; small models tolerate more
    max_steps: int = 100  # optimiser steps per co-training iteration
    lr_schedule: str = "constant"
    max_grad_norm: float = 0.0
    max_seq_length: int = 128
    temperature: float = 0.1  # InfoNCE temperature
    dec_weight: float = 1.0  # lambda of the DEC term (the paper uses 10 on topic data sets)
    dec_clusters: int = 256  # trainable DEC centres (capped at the number of texts)
    dec_alpha: float = 1.0  # Student-t degrees of freedom

    def __post_init__(self):
        super().__post_init__()
        expect(self.batch_size >= 2, "batch_size", self.batch_size, "an integer >= 2 (in-batch negatives)")
        expect(self.temperature > 0, "temperature", self.temperature, "a positive number")
        expect(self.dec_weight >= 0, "dec_weight", self.dec_weight, "0 (no DEC) or a positive weight")
        expect(self.dec_clusters >= 2, "dec_clusters", self.dec_clusters, "an integer >= 2")
        expect(self.dec_alpha > 0, "dec_alpha", self.dec_alpha, "a positive number")


@dataclass
class CoTrainConfig:
    task: str = "intent: banking customer purpose"  # "<task>: <standard>" shown to the LLM
    iterations: int = 2  # training rounds; interpretations are clustered after each (0 = untrained)
    temperatures: list[float] = field(default_factory=lambda: [0.5, 1.0, 1.5])  # one sampled candidate each (M), <= 2
    max_tokens: int = 64  # new tokens per interpretation
    density_k: int = 0  # KMeans K of the density step; 0: clustering.n_clusters
    density_runs: int = 100  # KMeans runs averaged by the density score
    max_pairs: int = 10_000  # DPO pairs sampled per iteration
    preference: str = "density"  # density | random (the seed paper's ablation)
    seed: int = 0
    dpo: DPOTrainConfig = field(default_factory=DPOTrainConfig)
    embedder: CoTrainEmbedderConfig = field(default_factory=CoTrainEmbedderConfig)

    def __post_init__(self):
        expect(":" in self.task, "task", self.task, "'<task>: <standard>', e.g. 'intent: banking customer purpose'")
        expect(self.iterations >= 0, "iterations", self.iterations, "0 or more")
        expect(len(self.temperatures) > 0 and all(0 < t <= 2 for t in self.temperatures), "temperatures",
               self.temperatures, "a non-empty list of temperatures in (0, 2] (vLLM rejects higher ones)")
        expect(self.max_tokens >= 8, "max_tokens", self.max_tokens, "an integer >= 8")
        expect(self.density_k >= 0, "density_k", self.density_k, "0 (clustering.n_clusters) or an integer >= 2")
        expect(self.density_runs > 0, "density_runs", self.density_runs, "a positive integer")
        expect(self.max_pairs > 0, "max_pairs", self.max_pairs, "a positive integer")
        expect_choice("preference", self.preference, ["density", "random"])
