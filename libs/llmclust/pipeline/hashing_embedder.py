"""A model-free embedder: hashed word and word-pair counts, randomly projected.

``embedding.model: hashing-384`` embeds without any weights: each text's words and word pairs
are hashed into 2^18 buckets (scikit-learn's ``HashingVectorizer``), projected to 384
dimensions by a fixed, seeded sparse random matrix (each bucket feeding 8 of them) and
L2-normalised. It is deterministic and runs at tens of thousands of texts a second per core, so a million-text job can be run end to
end on a laptop to test everything after the embedding (memory, checkpoints, Serve), which
MiniLM would take hours to embed on CPU. Its clusters are bag-of-words clusters: use a
sentence embedder for real work.

Example::

    emb = HashingEmbedder(384)
    emb.encode(["lost my card", "my card is lost"])   # (2, 384) float32, unit rows
"""

from __future__ import annotations

import numpy as np

BUCKETS = 2**18
SPREAD = 8  # outputs each hashed word feeds


class HashingEmbedder:
    """An :class:`~llmclust.pipeline.embedders.Embedder` without weights (``tokenize`` is the identity)."""

    def __init__(self, dim: int):
        import scipy.sparse as sp
        from sklearn.feature_extraction.text import HashingVectorizer
        from sklearn.random_projection import SparseRandomProjection

        if dim < 1:
            raise ValueError(f"hashing embedder dimension must be positive, got {dim}")
        self.dim = dim
        self.vectorizer = HashingVectorizer(n_features=BUCKETS, ngram_range=(1, 2), alternate_sign=True, norm=None)
        # each bucket feeds ~SPREAD of the dim outputs (scikit-learn's default density would leave
        # most buckets unconnected at a few hundred outputs, and short texts with a zero vector);
        # the matrix depends only on the shapes and the seed: fitted on an empty row
        self.projection = SparseRandomProjection(dim, density=min(1.0, SPREAD / dim), dense_output=True,
                                                 random_state=0).fit(sp.csr_matrix((1, BUCKETS)))

    def tokenize(self, texts: list[str]) -> list[str]:
        return texts

    def forward_tokens(self, texts: list[str]) -> np.ndarray:
        out = self.projection.transform(self.vectorizer.transform(texts)).astype(np.float32)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return self.forward_tokens(list(texts))
