"""``clustering.n_clusters: auto`` on Banking77 test (3080 texts) and train (10,003), 77 intents each.

    python benchmarks/choose_k_banking77.py       # -> benchmarks/results/choose_k_banking77.json (about 6 minutes)

For each set, on the same MiniLM vectors as the baseline job: the reduce stage's UMAP for seeds
0..4, then what a job with ``n_clusters: auto`` does, K estimated on seed 0's reduced vectors
(``chosen_k``, ``seconds``) and KMeans with that K for every seed (ACC / NMI, labels used only
to score). ``k_by_seed``: the estimate on each seed's reduced vectors (how much the estimate
moves with the layout). ``true_k_baseline``: KMeans told K = 77 on the same reduced vectors.
``bertopic_default``: BERTopic's default (UMAP + HDBSCAN, outliers as one more cluster) on the
same embeddings, as ``benchmarks/reduction_banking77.py`` measured it (``pip install -e ".[cpu,bench]"``).
"""

from __future__ import annotations

import json
import time

from common import RESULTS, TEST_CSV, TRAIN_CSV, write_result

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from llmclust.pipeline.choose_k import estimate_k  # noqa: E402
from llmclust.pipeline.clustering import ClusteringConfig, kmeans  # noqa: E402
from llmclust.pipeline.embedding import EmbeddingConfig, make_embedder  # noqa: E402
from llmclust.pipeline.evaluation import scores  # noqa: E402
from llmclust.pipeline.reduction import ReductionConfig, fit_transform  # noqa: E402

SEEDS = [0, 1, 2, 3, 4]
BERTOPIC = {"test": "reduction_banking77.json", "train": "reduction_banking77_train.json"}


def scored(spaces: dict, y, k: int) -> dict:
    per_seed = [scores(y, kmeans(spaces[s], k, s, ClusteringConfig(n_clusters=k)).labels) for s in SEEDS]
    return {"acc_mean": round(float(np.mean([r["acc"] for r in per_seed])), 2),
            "acc_std": round(float(np.std([r["acc"] for r in per_seed])), 2),
            "nmi_mean": round(float(np.mean([r["nmi"] for r in per_seed])), 2)}


def one_set(name: str, path, embedder) -> dict:
    data = pd.read_csv(path)
    y, true_k = data["category"].to_numpy(), data["category"].nunique()
    vectors = embedder.encode(data["text"].tolist())
    spaces = {s: fit_transform(vectors, ReductionConfig(method="umap"), s)[1] for s in SEEDS}
    k_min, k_max = ClusteringConfig(n_clusters="auto").k_range(len(data))
    t0 = time.perf_counter()
    chosen = estimate_k(spaces[SEEDS[0]], k_min, k_max, SEEDS[0])
    seconds = round(time.perf_counter() - t0, 2)
    by_seed = [chosen.k] + [estimate_k(spaces[s], k_min, k_max, s).k for s in SEEDS[1:]]
    bertopic = json.loads((RESULTS / BERTOPIC[name]).read_text())["bertopic_default"]
    out = {"n": len(data), "true_k": int(true_k), "chosen_k": chosen.k, "band": list(chosen.band), "reason": chosen.reason,
           "k_by_seed": by_seed, "k_spread": round(max(by_seed) / min(by_seed) - 1, 3),
           "within_10_percent": abs(chosen.k - true_k) <= 0.1 * true_k, **scored(spaces, y, chosen.k), "seconds": seconds,
           "bertopic_default": {"k": bertopic["n_clusters_mean"], "outlier_share": bertopic["outlier_share_mean"],
                                "acc_mean": bertopic["acc_mean"], "nmi_mean": bertopic["nmi_mean"],
                                "source": f"benchmarks/results/{BERTOPIC[name]} (5 seeds)"},
           "true_k_baseline": scored(spaces, y, int(true_k))}
    print(name, {k: v for k, v in out.items() if k not in ("reason", "bertopic_default")}, flush=True)
    return out


def main() -> None:
    embedder = make_embedder(EmbeddingConfig(device="cpu"))
    result = {"estimator": "silhouette band centre (llmclust.pipeline.choose_k), on seed 0's 5-d UMAP vectors",
              "embedder": "all-MiniLM-L6-v2", "seeds": SEEDS}
    for name, path in (("test", TEST_CSV), ("train", TRAIN_CSV)):
        result[name] = one_set(name, path, embedder)
    write_result(RESULTS / "choose_k_banking77.json", result)


if __name__ == "__main__":
    main()
