"""Evaluation: ACC (Hungarian matching), NMI and ARI, mean and std over seeds.

Ground truth is read here and only here, only when ``evaluation.label_column`` is set, and
once per run (:class:`GroundTruth` keeps it after the first evaluation): no clustering stage
ever sees it.

Example::

    cluster_accuracy([0, 0, 1, 1], [1, 1, 0, 0])   # 1.0: cluster ids are matched to classes
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from llmclust.config import expect
from llmclust.store.runs import TRANSIENT, RunDir, Stage, write_json

log = logging.getLogger(__name__)

# how the summary and the report name the untrained embedder + KMeans beside a method
BASELINE_ROW = "baseline (same texts, same K)"


@dataclass
class EvaluationConfig:
    label_column: str = ""  # ground-truth column; empty: no evaluation
    labels_path: str = ""  # file/folder holding it; empty: the corpus file itself
    # with ground truth, a method other than the baseline also clusters the untrained embedder's
    # vectors of the same texts with the same K, and reports both (result.json: baseline_metrics)
    compare_baseline: bool = True

    def __post_init__(self):
        expect(not self.labels_path or bool(self.label_column), "labels_path", self.labels_path,
               "evaluation.label_column to be set as well")
        expect(isinstance(self.compare_baseline, bool), "compare_baseline", self.compare_baseline, "true or false")

    @property
    def enabled(self) -> bool:
        return bool(self.label_column)

    @property
    def identity(self) -> dict:
        """What decides the metrics (a stage fingerprint): the labels' column and file, not the switches."""
        return {"label_column": self.label_column, "labels_path": self.labels_path}


def cluster_accuracy(y_true, y_pred) -> float:
    """Best one-to-one matching of clusters to classes (Hungarian), fraction correct."""
    from scipy.optimize import linear_sum_assignment

    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has {y_true.shape} labels but y_pred has {y_pred.shape}")
    _, t = np.unique(y_true, return_inverse=True)
    _, p = np.unique(y_pred, return_inverse=True)
    counts = np.zeros((p.max() + 1, t.max() + 1), np.int64)
    np.add.at(counts, (p, t), 1)
    rows, cols = linear_sum_assignment(-counts)
    return float(counts[rows, cols].sum() / len(y_true))


def scores(y_true, y_pred) -> dict:
    """ACC, NMI and ARI in percent."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    return {
        "acc": 100 * cluster_accuracy(y_true, y_pred),
        "nmi": 100 * normalized_mutual_info_score(y_true, y_pred),
        "ari": 100 * adjusted_rand_score(y_true, y_pred),
    }


def summarize(per_seed: list[dict]) -> dict:
    """{acc_mean, acc_std, ...} over per-seed score dicts (population std, as the papers)."""
    out = {}
    for key in per_seed[0]:
        values = np.array([s[key] for s in per_seed], dtype=float)
        out[f"{key}_mean"] = round(float(values.mean()), 2)
        out[f"{key}_std"] = round(float(values.std()), 2)
    return out


def read_ground_truth(cfg: EvaluationConfig, corpus_cfg, ids: pa.Array) -> np.ndarray:
    """Labels aligned to the kept corpus ``ids`` (ids are the id column or input row numbers)."""
    from llmclust.pipeline.corpus_files import read_columns

    path = cfg.labels_path or corpus_cfg.path
    fmt = "auto" if cfg.labels_path else corpus_cfg.format
    id_col = corpus_cfg.id_column
    raw = read_columns(path, fmt, [cfg.label_column] + ([id_col] if id_col else []), encoding=corpus_cfg.encoding)
    raw_ids = (raw.column(id_col) if id_col else pa.array(np.arange(raw.num_rows))).cast(pa.string())
    # the last row of a repeated id wins, as a dict would keep it; matched in Arrow, not per id in Python
    position = pc.index_in(ids.cast(pa.string()), value_set=raw_ids[::-1])
    if position.null_count:
        missing = ids.filter(pc.is_null(position)).to_pylist()
        raise ValueError(f"{len(missing)} ids have no ground-truth label in {path} (first: {missing[:5]})")
    rows = pc.subtract(raw.num_rows - 1, position)
    return raw.column(cfg.label_column).take(rows).to_numpy(zero_copy_only=False).astype(object)


class GroundTruth:
    """The labels of the kept corpus rows, read on first use and kept for the run's later stages."""

    def __init__(self, cfg: EvaluationConfig, corpus_cfg, ids: pa.Array):
        self.cfg, self._corpus_cfg, self._ids, self._labels, self._codes = cfg, corpus_cfg, ids, None, None

    @property
    def labels(self) -> np.ndarray:
        if self._labels is None:
            self._labels = read_ground_truth(self.cfg, self._corpus_cfg, self._ids)
        return self._labels

    @property
    def codes(self) -> np.ndarray:
        """The labels as integers 0..C-1: encoded once, not per seed by every metric."""
        if self._codes is None:  # hashed in Arrow: sorting a million Python strings took seconds
            self._codes = pa.array(self.labels).dictionary_encode().indices.to_numpy()
        return self._codes


def evaluate_stage(run: RunDir, truth: GroundTruth, runs: list, upstream: Stage, name: str = "evaluate") -> dict | None:
    """ACC/NMI/ARI of every seed's labels and their mean/std; None when no label column is configured."""
    if not truth.cfg.enabled:
        return None
    stage = run.stage(name, truth.cfg.identity, upstream.fingerprint)

    def compute() -> dict:
        per_seed = [scores(truth.codes, r.labels) for r in runs]
        return {**summarize(per_seed), "per_seed": dict(zip(map(str, (r.seed for r in runs)), per_seed))}

    def write(stage: Stage, metrics: dict) -> dict:
        write_json(stage.file("metrics.json"), metrics)
        return {"rows": len(runs[0].labels), **{k: v for k, v in metrics.items() if k != "per_seed"}}

    metrics = stage.run(compute, write, lambda stage: stage.read_json("metrics.json"))
    log.info("evaluation (mean over %d seeds): ACC %.2f ± %.2f, NMI %.2f ± %.2f, ARI %.2f",
             len(runs), metrics["acc_mean"], metrics["acc_std"], metrics["nmi_mean"], metrics["nmi_std"], metrics["ari_mean"],
             extra=TRANSIENT)
    return metrics
