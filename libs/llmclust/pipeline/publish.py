"""Publish a finished clustering: assignments.parquet, clusters.parquet and result.json.

``result.json`` is what :mod:`llmclust.serve.app` loads. Serving centroids live in the final
embedder's space (the mean embedding of each cluster's members), so new texts are assigned
with the embedder alone, whatever space the method clustered in.

The files are written into a staging folder, then moved in by :meth:`RunDir.publish`, which
writes ``result.json`` last with their checksums: a job killed while publishing over an
earlier run never leaves a mix of the two that looks finished. ``config.yaml`` is published
with them, so it always describes the result beside it (a failed or killed invocation never
overwrites a finished run's record).

Example::

    centroids = publish(run, cfg, table, best_run(runs), names, vectors, embedder_path, metrics)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from llmclust import schema
from llmclust.config import to_dict
from llmclust.pipeline.clustering import KMeansRun, centroids_of
from llmclust.store.runs import RunDir, peak_rss_mb
from llmclust.store.vectors import CHUNK_ROWS, StoredVectors, chunks


def publish(run: RunDir, cfg, table: pa.Table, best: KMeansRun, names: list[str],
            embed_vectors: np.ndarray | StoredVectors, embedder_path: str, metrics: dict | None,
            reducer_path: Path | None = None, **extra) -> np.ndarray:
    """Publish the final assignments, cluster table, config.yaml and result.json (what serving loads).

    ``reducer_path``: the fitted reducer ``best`` clustered through, when new texts are to be
    assigned through it (:class:`llmclust.pipeline.assigner.Assigner`); its KMeans centres are kept too.
    Paths inside the run are stored relative to it, so a copied run still serves.
    ``extra``: more keys of result.json, e.g. ``baseline_metrics`` (the untrained embedder + KMeans
    on the same texts with the same K) and ``llm_audit`` (what the LLM contributed).
    Returns the serving centroids (k, d), so the caller need not compute them again.
    """
    k = len(names)
    centroids = centroids_of(embed_vectors, best.labels, k)
    sims = np.empty(len(best.labels), np.float32)
    for start, block in chunks(embed_vectors, CHUNK_ROWS):  # stored vectors: a part at a time
        sims[start : start + len(block)] = np.einsum("nd,nd->n", block, centroids[best.labels[start : start + len(block)]])
    name_arr = np.asarray(names, dtype=object)
    staged = run.staging()
    pq.write_table(pa.table({
        schema.ROW: table.column(schema.ROW), schema.ID: table.column(schema.ID), schema.TEXT: table.column(schema.TEXT),
        schema.CLUSTER: pa.array(best.labels, pa.int64()), schema.CLUSTER_NAME: pa.array(name_arr[best.labels].tolist()),
        schema.SCORE: pa.array(sims),
    }), staged / "assignments.parquet")
    clusters = {
        schema.CLUSTER: pa.array(np.arange(k), pa.int64()), schema.CLUSTER_NAME: pa.array(list(names)),
        schema.SIZE: pa.array(np.bincount(best.labels, minlength=k).astype(np.int64)),
        schema.CENTROID: schema.to_fixed_list(centroids),
    }
    if reducer_path is not None:
        clusters[schema.SPACE_CENTRE] = schema.to_fixed_list(best.centers)
    pq.write_table(pa.table(clusters), staged / "clusters.parquet")
    (staged / "config.yaml").write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
    result = {
        "method": cfg.method, "n": table.num_rows, "k": k, "seed": best.seed,
        "embedder": _in_run(run, embedder_path), "max_seq_length": cfg.embedding.max_seq_length,
        "reducer": _in_run(run, reducer_path) if reducer_path is not None else None,
        "assignments": "assignments.parquet", "clusters": "clusters.parquet",
        "rejected": "corpus/rejected.parquet", "metrics": metrics,
        "driver_peak_rss_mb": peak_rss_mb(),  # the job's own process (the Ray workers' memory is theirs)
        "startup_s": run.startup_seconds(),  # per stage: actors started and models loaded before the first batch
        **extra,
    }
    run.publish(staged, **result)
    return centroids


def _in_run(run: RunDir, path) -> str:
    """``path`` relative to the run directory when it lies inside it, else as given."""
    path = Path(path)
    return str(path.relative_to(run.path)) if path.is_absolute() and path.is_relative_to(run.path) else str(path)
