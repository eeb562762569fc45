"""The embedders: what turns texts into L2-normalised float32 vectors, behind one small protocol.

Two implement :class:`Embedder`: :class:`SentenceEmbedder` (a sentence-transformers model) and
:class:`~llmclust.pipeline.hashing_embedder.HashingEmbedder` (model-free, ``hashing-<dim>``).
The embed stage splits ``encode`` into ``tokenize`` (CPU, possibly in other tasks) and
``forward_tokens`` (the model); serving and ``predict`` call ``encode``.
:func:`llmclust.pipeline.embedding.make_embedder` picks one from the config.

Example::

    emb = SentenceEmbedder(EmbeddingConfig(device="cpu"))
    emb.encode(["where is my card?", "top up failed"]).shape     # (2, 384)
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from llmclust.devices import resolve_device
from llmclust.models import resolve_model


class Embedder(Protocol):
    dim: int  # output dimension

    def tokenize(self, texts: list[str]) -> Any:
        """The model's inputs for ``texts`` (picklable: they may come from another task)."""

    def forward_tokens(self, tokens: Any) -> np.ndarray:
        """(n, dim) float32 unit vectors from :meth:`tokenize`'s output."""

    def encode(self, texts: list[str]) -> np.ndarray:
        """(len(texts), dim) float32 unit vectors, in order."""


def text_features(model, texts: list[str]) -> dict:
    """A SentenceTransformer's input tensors for ``texts``, with the model's own normalisation."""
    return model.preprocess(texts)


class SentenceEmbedder:
    """A sentence-transformers model that returns normalised float32 numpy vectors.

    ``cfg``: an :class:`~llmclust.pipeline.embedding.EmbeddingConfig` (model, device, dtype,
    max_seq_length, batch_size)."""

    def __init__(self, cfg, model_path: str | None = None):
        import torch
        from sentence_transformers import SentenceTransformer

        self.cfg = cfg
        self.device = resolve_device(cfg.device, "embedding.device")
        dtype = cfg.dtype if cfg.dtype != "auto" else ("float16" if self.device == "cuda" else "float32")
        self.model = SentenceTransformer(model_path or resolve_model(cfg.model), device=self.device)
        self.model.max_seq_length = cfg.max_seq_length
        self.model.to(getattr(torch, dtype)).eval()
        self.dim = self.model.get_embedding_dimension()

    def tokenize(self, texts: list[str]) -> dict:
        return text_features(self.model, texts)

    def forward_tokens(self, features: dict) -> np.ndarray:
        import torch

        with torch.inference_mode():
            features = {k: v.to(self.device, non_blocking=True) for k, v in features.items() if torch.is_tensor(v)}
            out = self.model(features)["sentence_embedding"]
            out = torch.nn.functional.normalize(out.float(), dim=-1)
        return out.cpu().numpy()

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embed ``texts`` in order (sorted by length internally), shape (n, dim)."""
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.empty((len(texts), self.dim), np.float32)
        for start in range(0, len(texts), self.cfg.batch_size):
            idx = order[start : start + self.cfg.batch_size]
            out[idx] = self.forward_tokens(self.tokenize([texts[i] for i in idx]))
        return out
