"""The shared stages every method runs, each checkpointed in the run directory.

corpus -> embed -> (neighbours) -> [method-specific representation] -> cluster -> evaluate -> publish

Each function takes the :class:`runs.RunDir`, the job config and its upstream stage, reuses
the stage's outputs when they were finished under the same fingerprint, and returns its
result plus its :class:`runs.Stage` (whose fingerprint the next stage chains on).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from llmclust import schema
from llmclust.clustering import KMeansRun, centroids_of, cluster_over_seeds
from llmclust.corpus import clean, load_corpus, shard_files
from llmclust.embedding import embed_corpus
from llmclust.evaluation import read_ground_truth, scores, summarize
from llmclust.neighbours import from_table, knn, to_table
from llmclust.runs import RunDir, Stage, write_json, write_table

log = logging.getLogger(__name__)


def _source_fingerprint(cfg, texts: list[str] | None) -> list:
    if texts is not None:
        return [hashlib.sha256("\x00".join(texts).encode()).hexdigest()]
    files, _ = shard_files(Path(cfg.corpus.path), cfg.corpus.format)
    return [(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files]


def corpus_stage(run: RunDir, cfg, texts: list[str] | None = None) -> tuple[pa.Table, Stage]:
    """Read and clean the corpus (or in-memory ``texts``); rejected rows go to rejected.parquet."""
    stage = run.stage("corpus", cfg.corpus, _source_fingerprint(cfg, texts))
    if not stage.done:
        if texts is None:
            result = load_corpus(cfg.corpus)
        else:
            raw = pa.table({cfg.corpus.text_column: pa.array(texts, pa.string())})
            result = clean(raw, cfg.corpus)
        write_table(stage.file("texts.parquet"), result.table)
        write_table(stage.file("rejected.parquet"), result.rejected)
        log.info("corpus: %s", result.report)
        if result.rejected.num_rows:
            log.warning("corpus: %d rows rejected, listed with reasons in %s",
                        result.rejected.num_rows, stage.file("rejected.parquet"))
        stage.finish(result.table.num_rows, report=result.report)
    return pq.read_table(stage.file("texts.parquet")), stage


def embed_stage(run: RunDir, cfg, table: pa.Table, upstream: Stage, name: str = "embed",
                model_path: str | None = None) -> tuple[np.ndarray, Stage]:
    """Embed every text (checkpointed per chunk); ``model_path`` overrides the configured model."""
    emb_cfg = replace(cfg.embedding, model=model_path) if model_path else cfg.embedding
    # throughput knobs do not change the vectors, so they do not invalidate the stage
    identity = {"model": emb_cfg.model, "dtype": emb_cfg.dtype, "max_seq_length": emb_cfg.max_seq_length}
    stage = run.stage(name, identity, upstream.fingerprint)
    parts = stage.parts()  # the parts are the stage's output: no second copy of the vectors
    if not stage.done:
        vectors = embed_corpus(table, emb_cfg, parts)
        stage.finish(len(vectors), dim=int(vectors.shape[1]), model=emb_cfg.model, parts=parts.count())
        return vectors, stage
    return parts.read_vectors(parts.count()), stage


def stored_vectors(stage_dir: Path) -> np.ndarray:
    """The vectors a finished embed stage holds, e.g. ``<run dir>/embed`` (reports, benchmarks)."""
    parts = Stage.finished(stage_dir).parts()
    return parts.read_vectors(parts.count())


def neighbours_stage(run: RunDir, cfg, vectors: np.ndarray, upstream: Stage,
                     name: str = "neighbours") -> tuple[np.ndarray, np.ndarray, Stage]:
    stage = run.stage(name, cfg.neighbours, upstream.fingerprint)
    if not stage.done:
        ids, sims = knn(vectors, cfg.neighbours)
        write_table(stage.file("neighbours.parquet"), to_table(ids, sims))
        stage.finish(len(ids), k=int(ids.shape[1]))
    ids, sims = from_table(pq.read_table(stage.file("neighbours.parquet")))
    return ids, sims, stage


def cluster_stage(run: RunDir, cfg, vectors: np.ndarray, upstream: Stage,
                  name: str = "cluster") -> tuple[list[KMeansRun], Stage]:
    """KMeans once per seed; labels of every seed kept (for mean/std metrics)."""
    stage = run.stage(name, cfg.clustering, upstream.fingerprint)
    if not stage.done:
        runs = cluster_over_seeds(vectors, cfg.clustering)
        write_table(stage.file("labels.parquet"), pa.table({f"seed_{r.seed}": r.labels for r in runs}))
        np.save(stage.file("centers.npy"), np.stack([r.centers for r in runs]))
        stage.finish(len(vectors), k=cfg.clustering.n_clusters, inertia={r.seed: r.inertia for r in runs})
    labels = pq.read_table(stage.file("labels.parquet"))
    centers = np.load(stage.file("centers.npy"))
    inertia = stage.manifest["inertia"]
    return [KMeansRun(s, labels.column(f"seed_{s}").to_numpy(), centers[i], inertia[str(s)])
            for i, s in enumerate(cfg.clustering.seeds)], stage


def evaluate_stage(run: RunDir, cfg, table: pa.Table, runs: list[KMeansRun], upstream: Stage,
                   name: str = "evaluate") -> dict | None:
    """ACC/NMI/ARI per seed and their mean/std; None when no label column is configured."""
    if not cfg.evaluation.enabled:
        return None
    stage = run.stage(name, cfg.evaluation, upstream.fingerprint)
    if not stage.done:
        truth = read_ground_truth(cfg.evaluation, cfg.corpus, table.column(schema.ID).combine_chunks())
        per_seed = [scores(truth, r.labels) for r in runs]
        metrics = {**summarize(per_seed), "per_seed": dict(zip(map(str, (r.seed for r in runs)), per_seed))}
        write_json(stage.file("metrics.json"), metrics)
        stage.finish(len(truth), **{k: v for k, v in metrics.items() if k != "per_seed"})
    metrics = json.loads(stage.file("metrics.json").read_text())
    log.info("evaluation (mean over %d seeds): ACC %.2f ± %.2f, NMI %.2f ± %.2f, ARI %.2f",
             len(runs), metrics["acc_mean"], metrics["acc_std"], metrics["nmi_mean"], metrics["nmi_std"], metrics["ari_mean"])
    return metrics


def publish(run: RunDir, cfg, table: pa.Table, best: KMeansRun, names: list[str],
            embed_vectors: np.ndarray, embedder_path: str, metrics: dict | None, **extra) -> np.ndarray:
    """Write the final assignments, cluster table and result.json (what serving loads).

    Returns the serving centroids (k, d), so the caller need not compute them again.

    Serving centroids live in the embedder's space (the mean embedding of each cluster's
    members), so new texts are assigned with the embedder alone, whatever space the method
    clustered in.
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
