"""The map's coordinates: a seeded sample of the corpus, in the final embedder's space, laid out in 2-D.

UMAP (umap-learn, cosine, 15 neighbours) keeps each cluster's neighbourhood together, which is
what a reader of the map looks for. Where umap-learn cannot be imported (a broken numba
install) or the run is too small for a neighbour graph, a PCA of the vectors stands in, and
:attr:`Projection.method` says so on the page.

Example::

    import numpy as np
    vectors = np.random.default_rng(0).normal(size=(500, 32)).astype(np.float32)
    xy, method = layout(vectors, seed=0)        # (500, 2), 'UMAP (cosine, 15 neighbours)'
    sample_rows(1_000_000, 200_000, seed=0)     # 200 000 distinct rows, seeded
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from llmclust.models import resolve_model
from llmclust.pipeline.embedding import EmbeddingConfig, make_embedder, stored_vectors
from llmclust.store.finished import find_embedder
from llmclust.store.runs import DamagedOutput

log = logging.getLogger(__name__)

UMAP_NEIGHBOURS = 15
UMAP_MIN_ROWS = 20  # below this a 15-neighbour graph is mostly the whole corpus: PCA says as much


@dataclass
class Projection:
    rows: np.ndarray  # corpus rows (ROW) laid out, a seeded sample of at most max_points
    xy: np.ndarray  # (len(rows), 2)
    method: str  # what laid them out, shown on the page


def sample_rows(n: int, max_points: int, seed: int) -> np.ndarray:
    """Rows in a seeded random order, cut at ``max_points``: every prefix is again a uniform sample."""
    return np.random.default_rng(seed).permutation(n)[:max_points]


def final_vectors(run_path: Path, result: dict, rows: np.ndarray, texts: list[str]) -> np.ndarray:
    """The final embedder's vectors of ``rows`` (whose texts are ``texts``).

    The embed stage holds them when its model is the final embedder (baseline, LUMI); other
    methods' texts are embedded again with the embedder result.json names, which works for all.
    """
    manifest = run_path / "embed" / "manifest.json"
    if manifest.exists():
        embed = json.loads(manifest.read_text())
        if embed["rows"] == result["n"] and resolve_model(embed["model"]) == result["embedder"]:
            try:
                return stored_vectors(run_path / "embed", lazy=True).take(rows)
            except DamagedOutput as err:  # the run is still worth a report: its texts are all we need
                log.warning("report: the embed stage's vectors cannot be read (%s); embedding the texts again", err)
    path = find_embedder(result["embedder"], run_path)
    return make_embedder(EmbeddingConfig(max_seq_length=result["max_seq_length"]), path).encode(texts)


def layout(vectors: np.ndarray, seed: int) -> tuple[np.ndarray, str]:
    """(n, 2) coordinates of ``vectors`` and the name of the method that produced them."""
    if len(vectors) < UMAP_MIN_ROWS:
        return _pca(vectors), f"PCA (fewer than {UMAP_MIN_ROWS} texts: too few for UMAP)"
    try:
        import umap
    except ImportError as err:
        return _pca(vectors), f"PCA (umap-learn could not be imported: {err})"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "n_jobs overridden by random_state": determinism is the point
        # min_dist 0.5: each cluster spreads into a patch its points can be seen (and hovered) in
        reducer = umap.UMAP(n_components=2, n_neighbors=UMAP_NEIGHBOURS, min_dist=0.5, metric="cosine",
                            random_state=seed)
        xy = reducer.fit_transform(vectors)
    return np.asarray(xy, np.float32), f"UMAP (cosine, {UMAP_NEIGHBOURS} neighbours)"


def _pca(vectors: np.ndarray) -> np.ndarray:
    """First two principal components (zero-padded when there are fewer than two)."""
    centred = vectors - vectors.mean(axis=0)
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    xy = np.zeros((len(vectors), 2), np.float32)
    xy[:, : min(2, len(s))] = (u * s)[:, :2]
    return xy


def project(run_path: Path, result: dict, texts: pa.ChunkedArray, max_points: int, seed: int) -> Projection:
    """Lay out a seeded sample of at most ``max_points`` of the run's ``texts`` (in ROW order)."""
    rows = sample_rows(len(texts), max_points, seed)
    vectors = final_vectors(run_path, result, rows, texts.take(rows).to_pylist())
    xy, method = layout(vectors, seed)
    return Projection(rows, xy, method)
