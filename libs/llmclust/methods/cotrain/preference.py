"""Density preference: which of a text's interpretations the embedding space likes best.

KMeans runs on the embeddings of the greedy interpretations; each candidate interpretation
is scored by the distance to its nearest centre, averaged over many KMeans runs (the seed
paper uses 100) so that one unlucky initialisation does not decide. The densest candidate of
a text is *chosen*, every other parseable, different candidate is *rejected*: up to M pairs
per text, then a seeded sample caps the total.

All KMeans runs advance together (one batched matrix product per Lloyd step for a group of
runs), and scoring is one distance computation per run, so 100 runs cost a few seconds.
On a large corpus the runs fit a shared random sample of ``MAX_POINTS_PER_CENTRE`` points per
centre (as faiss' KMeans does: centres move little beyond that), and every candidate is then
scored against each run's centres by a faiss search: the cost grows linearly with the corpus.

Example::

    rng = np.random.default_rng(0)
    greedy = rng.normal(size=(50, 8)).astype(np.float32)
    candidates = rng.normal(size=(50, 4, 8)).astype(np.float32)   # candidate 0 = greedy
    d = density_scores(greedy, candidates, k=5, runs=100, seed=0)  # (50, 4)
    pairs = preference_pairs(d, valid=np.ones((50, 4), bool), max_pairs=100, seed=0)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from llmclust.optional import import_faiss

log = logging.getLogger(__name__)

MAX_BATCH_FLOATS = 32_000_000  # bounds the (runs, n, k) distance block of one KMeans group
MAX_POINTS_PER_CENTRE = 256  # KMeans runs fit at most k x this many points (a seeded sample)


def _sq_dists(x: torch.Tensor, x_sq: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """Squared distances of every x to every centre of every run: (runs, n, k)."""
    c_sq = (centres * centres).sum(dim=2)
    return (x_sq[None, :, None] - 2.0 * torch.matmul(x, centres.transpose(1, 2)) + c_sq[:, None, :]).clamp_min_(0.0)


def multi_kmeans(x: np.ndarray, k: int, runs: int, seed: int = 0, iters: int = 25) -> np.ndarray:
    """Centres of ``runs`` independent Lloyd KMeans fits on ``x``, shape (runs, k, d).

    Each run starts from its own random sample of ``k`` points; empty clusters keep their
    previous centre; a group stops early once no assignment changes. Runs are processed in
    groups so memory stays bounded for large ``n``; beyond ``k x MAX_POINTS_PER_CENTRE``
    rows they all fit one seeded sample of that size. (torch, not numpy: its batched matmul
    is several times faster on CPU.)
    """
    n, d = x.shape
    if n < k:
        raise ValueError(f"n_samples={n} should be >= n_clusters={k}; lower cotrain.density_k")
    rng = np.random.default_rng(seed)
    if n > k * MAX_POINTS_PER_CENTRE:
        x = np.asarray(x)[np.sort(rng.choice(n, k * MAX_POINTS_PER_CENTRE, replace=False))]
        n = len(x)
    xt = torch.tensor(np.asarray(x, dtype=np.float32))  # a copy: Arrow-backed arrays are read-only
    x_sq = (xt * xt).sum(dim=1)
    group = max(1, min(runs, MAX_BATCH_FLOATS // max(n * k, 1)))
    out = np.empty((runs, k, d), np.float32)
    for start in range(0, runs, group):
        r = min(group, runs - start)
        centres = xt[torch.from_numpy(np.stack([rng.choice(n, k, replace=False) for _ in range(r)]))]
        labels = None
        for _ in range(iters):
            new_labels = _sq_dists(xt, x_sq, centres).argmin(dim=2)  # (r, n)
            if labels is not None and torch.equal(new_labels, labels):
                break
            labels = new_labels
            # the update as a scatter-add per run: a one-hot matrix product costs as much as the
            # assignment itself (n k d per run); with it the density stage took 2.6x faiss' time
            sums = torch.zeros((r, k, d))
            for j in range(r):
                sums[j].index_add_(0, labels[j], xt)
            counts = torch.stack([torch.bincount(labels[j], minlength=k) for j in range(r)]).unsqueeze(2)  # (r, k, 1)
            centres = torch.where(counts > 0, sums / counts.clamp_min(1), centres)
        out[start : start + r] = centres.numpy()
    return out


def density_scores(greedy: np.ndarray, candidates: np.ndarray, k: int, runs: int = 100,
                   seed: int = 0, iters: int = 25) -> np.ndarray:
    """Mean (over KMeans runs) distance of each candidate to its nearest centre: (n, m).

    ``greedy`` (n, d) are the embeddings KMeans runs on; ``candidates`` (n, m, d) are the
    embeddings of every candidate of every text. Lower means denser, i.e. preferred.
    """
    n, m, d = candidates.shape
    faiss = import_faiss()
    flat = np.ascontiguousarray(np.asarray(candidates).reshape(n * m, d), dtype=np.float32)
    total = np.zeros(n * m)
    for centres in multi_kmeans(greedy, k, runs, seed, iters):  # faiss' search: BLAS and a fused nearest-centre pass
        index = faiss.IndexFlatL2(d)
        index.add(np.ascontiguousarray(centres))
        nearest, _ = index.search(flat, 1)
        total += np.sqrt(np.maximum(nearest[:, 0], 0))
    return (total / runs).reshape(n, m).astype(np.float32)


@dataclass
class Pairs:
    """Preference pairs as candidate indices, plus what was left out and why."""

    row: np.ndarray  # (p,) text index
    chosen: np.ndarray  # (p,) candidate index of the preferred interpretation
    rejected: np.ndarray  # (p,) candidate index of the dispreferred one
    report: dict  # counts: texts, texts_without_pair, duplicates_skipped, invalid_skipped, sampled_out

    def __len__(self) -> int:
        return len(self.row)


def preference_pairs(scores: np.ndarray, valid: np.ndarray, max_pairs: int, seed: int = 0,
                     same: np.ndarray | None = None, random_choice: bool = False) -> Pairs:
    """Chosen = the valid candidate with the lowest score; each other valid one = rejected.

    ``valid`` (n, m) marks parseable candidates; ``same`` (n, m, m), from
    :func:`duplicate_matrix`, marks candidates with identical text: a "rejected" candidate
    equal to the chosen one teaches nothing and is skipped (counted). ``random_choice`` picks
    the chosen candidate uniformly among the valid ones instead (the paper's ablation). At
    most ``max_pairs`` pairs are kept, sampled without replacement with ``seed``.
    """
    n, m = scores.shape
    rng = np.random.default_rng(seed)
    masked = np.where(valid, scores, np.inf)
    if random_choice:
        masked = np.where(valid, rng.random((n, m)), np.inf)
    chosen = masked.argmin(axis=1)
    has_valid = valid.any(axis=1)
    rows, cols = np.nonzero(valid & (np.arange(m)[None, :] != chosen[:, None]) & has_valid[:, None])
    keep = np.ones(len(rows), bool) if same is None else ~same[rows, cols, chosen[rows]]
    report = {
        "texts": int(n),
        "invalid_skipped": int((~valid).sum()),
        "duplicates_skipped": int((~keep).sum()),
    }
    rows, cols = rows[keep], cols[keep]
    report["texts_without_pair"] = int(n - len(np.unique(rows)))
    report["pairs_available"] = int(len(rows))
    if len(rows) > max_pairs:
        pick = np.sort(rng.choice(len(rows), max_pairs, replace=False))
        rows, cols = rows[pick], cols[pick]
    report["sampled_out"] = report["pairs_available"] - int(len(rows))
    return Pairs(rows.astype(np.int64), chosen[rows].astype(np.int64), cols.astype(np.int64), report)


def duplicate_matrix(texts: list[list[str]]) -> np.ndarray:
    """``same[i, a, b]`` = candidates a and b of text i have the same (normalised) text."""
    norm = [[" ".join(t.lower().split()) for t in row] for row in texts]
    m = len(norm[0]) if norm else 0
    return np.array([[[a == b for b in row] for a in row] for row in norm], bool).reshape(len(norm), m, m)
