"""Evaluation: ACC (Hungarian matching), NMI and ARI, mean and std over seeds.

Ground truth is read here and only here, and only when ``evaluation.label_column`` is set:
no clustering stage ever sees it.

Example::

    cluster_accuracy([0, 0, 1, 1], [1, 1, 0, 0])   # 1.0: cluster ids are matched to classes
"""

from __future__ import annotations

from dataclasses import dataclass
import numpy as np
import pyarrow as pa

from llmclust.config import expect


@dataclass
class EvaluationConfig:
    label_column: str = ""  # ground-truth column; empty: no evaluation
    labels_path: str = ""  # file/folder holding it; empty: the corpus file itself

    def __post_init__(self):
        expect(not self.labels_path or bool(self.label_column), "labels_path", self.labels_path,
               "evaluation.label_column to be set as well")

    @property
    def enabled(self) -> bool:
        return bool(self.label_column)


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
    from llmclust.corpus import read_columns

    path = cfg.labels_path or corpus_cfg.path
    fmt = "auto" if cfg.labels_path else corpus_cfg.format
    id_col = corpus_cfg.id_column
    raw = read_columns(path, fmt, [cfg.label_column] + ([id_col] if id_col else []))
    raw_ids = raw.column(id_col).cast(pa.string()).to_pylist() if id_col else [str(i) for i in range(raw.num_rows)]
    by_id = dict(zip(raw_ids, raw.column(cfg.label_column).to_pylist()))
    missing = [i for i in ids.to_pylist() if i not in by_id]
    if missing:
        raise ValueError(f"{len(missing)} ids have no ground-truth label in {path} (first: {missing[:5]})")
    return np.asarray([by_id[i] for i in ids.to_pylist()], dtype=object)
