"""Publish a finished clustering: assignments.parquet, clusters.parquet and result.json.

``result.json`` is what :mod:`llmclust.serving` loads. Serving centroids live in the final
embedder's space (the mean embedding of each cluster's members), so new texts are assigned
with the embedder alone, whatever space the method clustered in.

Example::

    centroids = publish(run, cfg, table, best_run(runs), names, vectors, embedder_path, metrics)
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from llmclust import schema
from llmclust.clustering import KMeansRun, centroids_of
from llmclust.runs import RunDir, write_table


def publish(run: RunDir, cfg, table: pa.Table, best: KMeansRun, names: list[str],
            embed_vectors: np.ndarray, embedder_path: str, metrics: dict | None, **extra) -> np.ndarray:
    """Write the final assignments, cluster table and result.json (what serving loads).

    Returns the serving centroids (k, d), so the caller need not compute them again.
    """
    k = len(names)
    centroids = centroids_of(embed_vectors, best.labels, k)
    sims = np.einsum("nd,nd->n", embed_vectors, centroids[best.labels])
    name_arr = np.asarray(names, dtype=object)
    write_table(run.path / "assignments.parquet", pa.table({
        schema.ROW: table.column(schema.ROW), schema.ID: table.column(schema.ID), schema.TEXT: table.column(schema.TEXT),
        schema.CLUSTER: pa.array(best.labels, pa.int64()), schema.CLUSTER_NAME: pa.array(name_arr[best.labels].tolist()),
        schema.SCORE: pa.array(sims.astype(np.float32)),
    }))
    write_table(run.path / "clusters.parquet", pa.table({
        schema.CLUSTER: pa.array(np.arange(k), pa.int64()), schema.CLUSTER_NAME: pa.array(list(names)),
        schema.SIZE: pa.array(np.bincount(best.labels, minlength=k).astype(np.int64)),
        schema.CENTROID: schema.to_fixed_list(centroids),
    }))
    result = {
        "method": cfg.method, "n": table.num_rows, "k": k, "seed": best.seed,
        "embedder": embedder_path, "max_seq_length": cfg.embedding.max_seq_length,
        "assignments": "assignments.parquet", "clusters": "clusters.parquet",
        "rejected": "corpus/rejected.parquet", "metrics": metrics, **extra,
    }
    run.write_result(**result)
    return centroids
