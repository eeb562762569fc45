"""``clustering.n_clusters: auto`` on Banking77 test (3080 texts) and train (10,003), 77 intents each.

    python benchmarks/choose_k_banking77.py       # -> benchmarks/results/choose_k_banking77.json (about 13 minutes)

For each set, on the same MiniLM vectors as the baseline job: what a job with ``n_clusters: auto``
does, K estimated from its reduced samples (``k_seed: 0``; ``chosen_k``, ``seconds``), then the
reduce stage's UMAP for clustering seeds 0..4 and KMeans with that K on each (ACC / NMI, labels
used only to score). ``k_by_seed``: the K of jobs whose clustering seeds are 0, 1, .. 4 (the
estimate reads ``k_seed``, never those seeds). ``k_by_k_seed``: the estimate with ``k_seed`` 0, 8
and 16, disjoint samples (``k_seed_spread``: how far apart they land, the estimator's own
spread); ``k_by_sample``: what each sample alone would choose (why the estimate averages them).
``true_k_baseline``: KMeans told K = 77 on the same reduced vectors. ``bertopic_default``:
BERTopic's default (UMAP + HDBSCAN, outliers as one more cluster) on the same embeddings, as
``benchmarks/reduction_banking77.py`` measured it.

``sample_size``: train's K when the estimate samples 2,400, 3,000 or 6,000 texts.

``shapes``: corpora of other shapes cut from train (12, 25 and 50 intents; 20 texts an intent;
sizes falling as a power law, down to 8 texts), K chosen beside their number of intents: a check
that nothing is tuned to 77 intents of 40 or 130 texts.
"""

from __future__ import annotations

import json
import time

from common import RESULTS, TEST_CSV, TRAIN_CSV, write_result

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from llmclust.pipeline.choose_k import REPEATS, SAMPLE, estimate_k, estimation_seeds  # noqa: E402
from llmclust.pipeline.clustering import ClusteringConfig, kmeans  # noqa: E402
from llmclust.pipeline.embedding import EmbeddingConfig, make_embedder  # noqa: E402
from llmclust.pipeline.evaluation import scores  # noqa: E402
from llmclust.pipeline.reduction import ReductionConfig, fit_transform  # noqa: E402

SEEDS = [0, 1, 2, 3, 4]
K_SEEDS = [0, REPEATS, 2 * REPEATS]  # three estimates from disjoint samples
UMAP = ReductionConfig(method="umap", parallel_seeds="never")
BERTOPIC = {"test": "reduction_banking77.json", "train": "reduction_banking77_train.json"}


def choose(vectors: np.ndarray, cfg: ClusteringConfig = ClusteringConfig(n_clusters="auto")):
    k_min, k_max = cfg.k_range(len(vectors))
    return estimate_k(vectors, k_min, k_max, estimation_seeds(cfg.k_seed), UMAP)


def k_by_clustering_seed(vectors: np.ndarray, chosen) -> list[int]:
    """The K of jobs whose clustering seeds are 0, 1, .. 4: a job drawing the samples ``chosen``
    drew (the default config's) gets its K, since the same samples give the same K run after
    run; any other job is estimated."""
    default = estimation_seeds(ClusteringConfig(n_clusters="auto").k_seed)
    jobs = [ClusteringConfig(n_clusters="auto", seeds=[seed]) for seed in SEEDS]
    return [chosen.k if estimation_seeds(cfg.k_seed) == default else choose(vectors, cfg).k for cfg in jobs]


def scored(spaces: dict, y, k: int) -> dict:
    per_seed = [scores(y, kmeans(spaces[s], k, s, ClusteringConfig(n_clusters=k)).labels) for s in SEEDS]
    return {"acc_mean": round(float(np.mean([r["acc"] for r in per_seed])), 2),
            "acc_std": round(float(np.std([r["acc"] for r in per_seed])), 2),
            "nmi_mean": round(float(np.mean([r["nmi"] for r in per_seed])), 2)}


def one_set(name: str, vectors: np.ndarray, y: np.ndarray) -> dict:
    true_k = len(set(y))
    chosen = choose(vectors)
    by_seed = k_by_clustering_seed(vectors, chosen)
    by_k_seed = [chosen.k] + [choose(vectors, ClusteringConfig(n_clusters="auto", k_seed=k)).k for k in K_SEEDS[1:]]
    spaces = {s: fit_transform(vectors, UMAP, s)[1] for s in SEEDS}
    bertopic = json.loads((RESULTS / BERTOPIC[name]).read_text())["bertopic_default"]
    out = {"n": len(y), "true_k": true_k, "chosen_k": chosen.k, "band": list(chosen.band), "reason": chosen.reason,
           "k_by_seed": by_seed, "k_by_k_seed": by_k_seed, "k_seed_spread": round(max(by_k_seed) / min(by_k_seed) - 1, 3),
           "k_by_sample": chosen.k_by_sample, "k_stderr": chosen.k_stderr,
           "within_10_percent": abs(chosen.k - true_k) <= 0.1 * true_k, **scored(spaces, y, chosen.k),
           "seconds": chosen.seconds,
           "bertopic_default": {"k": bertopic["n_clusters_mean"], "outlier_share": bertopic["outlier_share_mean"],
                                "acc_mean": bertopic["acc_mean"], "nmi_mean": bertopic["nmi_mean"],
                                "source": f"benchmarks/results/{BERTOPIC[name]} (5 seeds)"},
           "true_k_baseline": scored(spaces, y, true_k)}
    print(name, {k: v for k, v in out.items() if k not in ("reason", "bertopic_default")}, flush=True)
    return out


def shapes(vectors: np.ndarray, y: np.ndarray) -> dict:
    """Other corpus shapes cut from train's vectors (intents in a seeded order)."""
    intents = np.random.default_rng(1).permutation(np.unique(y))
    rng = np.random.default_rng(0)

    def cut(classes, size) -> np.ndarray:
        return np.sort(np.concatenate([rng.choice(np.flatnonzero(y == c), min(size(i, c), (y == c).sum()), replace=False)
                                       for i, c in enumerate(classes)]))

    cuts = {"12 intents, all texts": cut(intents[:12], lambda i, c: len(y)),
            "25 intents, all texts": cut(intents[:25], lambda i, c: len(y)),
            "50 intents, 60 texts each": cut(intents[:50], lambda i, c: 60),
            "77 intents, 20 texts each": cut(intents, lambda i, c: 20),
            "77 intents, power-law sizes (8 to 130)": cut(intents, lambda i, c: max(8, int((y == c).sum() / (1 + i) ** 0.7)))}
    out = {}
    for name, rows in cuts.items():
        chosen = choose(vectors[rows])
        true_k = len(np.unique(y[rows]))
        out[name] = {"n": len(rows), "true_k": true_k, "chosen_k": chosen.k, "band": list(chosen.band),
                     "error": round(chosen.k / true_k - 1, 3), "seconds": chosen.seconds}
        print(name, out[name], flush=True)
    return out


def sample_sizes(vectors: np.ndarray, y: np.ndarray, estimated: dict) -> dict:
    """Train's K when the estimate samples 2,400 (the least at k_max = 300: 8 texts a cluster),
    6,000, or the estimator's 3,000 (``estimated``: train's result above): where K follows the
    sample size, the estimate reads UMAP's clump scale (texts a cluster) as much as the classes."""
    k_min, k_max = ClusteringConfig(n_clusters="auto").k_range(len(vectors))
    by_size = {SAMPLE: (estimated["chosen_k"], estimated["band"], estimated["seconds"])}
    for size in (2400, 6000):
        chosen = estimate_k(vectors, k_min, k_max, estimation_seeds(0), UMAP, sample=size)
        by_size[size] = (chosen.k, list(chosen.band), chosen.seconds)
    out = {str(size): {"chosen_k": k, "band": band, "texts_per_cluster": round(size / k, 1), "seconds": seconds}
           for size, (k, band, seconds) in sorted(by_size.items())}
    print("sample sizes:", out, flush=True)
    return {"true_k": len(set(y)), "by_sample_size": out}


def main() -> None:
    embedder = make_embedder(EmbeddingConfig(device="cpu"))
    result = {"estimator": f"silhouette band's centre of mass over {REPEATS} re-reduced samples of {SAMPLE} rows "
                           "(llmclust.pipeline.choose_k)",
              "embedder": "all-MiniLM-L6-v2", "seeds": SEEDS}
    sets = {}
    for name, path in (("test", TEST_CSV), ("train", TRAIN_CSV)):
        data = pd.read_csv(path)
        t0 = time.perf_counter()
        sets[name] = embedder.encode(data["text"].tolist()), data["category"].to_numpy()
        print(f"{name}: embedded in {time.perf_counter() - t0:.0f} s", flush=True)
        result[name] = one_set(name, *sets[name])
    result["shapes"] = shapes(*sets["train"])
    result["sample_size"] = sample_sizes(*sets["train"], result["train"])
    write_result(RESULTS / "choose_k_banking77.json", result)


if __name__ == "__main__":
    main()
