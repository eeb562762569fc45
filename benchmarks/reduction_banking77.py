"""UMAP reduction before KMeans vs raw KMeans vs BERTopic, on the same Banking77 embeddings.

    python benchmarks/reduction_banking77.py
    python benchmarks/reduction_banking77.py --data ../shared/data/banking77/train.csv

Embeds the texts once (all-MiniLM-L6-v2, CPU), then over seeds 0..4:

* ``baseline``: KMeans(k) on the 384-d vectors;
* ``reduced``: llmclust.pipeline.reduction (seed s) then KMeans (seed s);
* ``bertopic_kmeans``: BERTopic with its default UMAP (random_state s) and KMeans(k, seed s);
* ``bertopic_default``: BERTopic with its default UMAP (random_state s) and HDBSCAN, whose
  outliers (topic -1) are scored as one more cluster.

Labels (``category``) are used for scoring only. ``seconds`` is the reduction + clustering
time over all seeds (BERTopic's includes its c-TF-IDF topic words, well under a second
here); numba's one-off JIT compilation is done and timed before, as ``jit_warmup_seconds``.
Writes benchmarks/results/reduction_banking77[_<file stem>].json (test.csv: no suffix).
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from dataclasses import asdict, replace
from pathlib import Path

from common import RESULTS, TEST_CSV  # noqa: E402  (puts libs/ on the path)
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # BERTopic must never reach for a model hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from llmclust.pipeline.clustering import ClusteringConfig, cluster_over_seeds  # noqa: E402
from llmclust.pipeline.embedders import SentenceEmbedder
from llmclust.pipeline.embedding import EmbeddingConfig  # noqa: E402
from llmclust.pipeline.evaluation import scores, summarize  # noqa: E402
from llmclust.pipeline.reduction import ReductionConfig, fit_transform  # noqa: E402


def bertopic_umap(seed: int):
    """BERTopic's default UMAP (bertopic/_bertopic.py), seeded."""
    from umap import UMAP

    return UMAP(n_neighbors=15, n_components=5, min_dist=0.0, metric="cosine", low_memory=False, random_state=seed)


def bertopic_labels(texts, vectors, seed: int, k: int | None) -> np.ndarray:
    """BERTopic's topic per text: KMeans(k) as its cluster model, or its HDBSCAN default (k=None)."""
    from bertopic import BERTopic
    from sklearn.cluster import KMeans

    cluster_model = KMeans(n_clusters=k, random_state=seed, n_init=1) if k else None
    topics, _ = BERTopic(umap_model=bertopic_umap(seed), hdbscan_model=cluster_model).fit_transform(texts, vectors)
    return np.asarray(topics)


def jit_warmup(vectors: np.ndarray, cfg: ReductionConfig) -> float:
    """Compile numba's code for both our path (fit + transform) and BERTopic's small-data UMAP path."""
    start = time.time()
    fit_transform(vectors[:600], ReductionConfig(**{**asdict(cfg), "fit_sample": 300}), seed=0)
    bertopic_umap(0).fit(vectors[:300])
    return time.time() - start


def over_seeds(name: str, y, seeds, labels_of) -> tuple[dict, list[np.ndarray]]:
    """Scores of ``labels_of(seed)`` over ``seeds``, and the wall time of all the calls."""
    start, labels = time.time(), []
    for seed in seeds:
        labels.append(labels_of(seed))
        print(f"  {name} seed {seed}: {time.time() - start:.1f} s", flush=True)
    seconds = time.time() - start
    summary = summarize([scores(y, lab) for lab in labels])
    keep = ["acc_mean", "acc_std", "nmi_mean", "nmi_std", "ari_mean"]
    return {**{key: summary[key] for key in keep}, "seconds": round(seconds, 1)}, labels


def main(argv=None):
    defaults = ReductionConfig(method="umap")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(TEST_CSV))
    p.add_argument("--k", type=int, default=77)
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--n-components", type=int, default=defaults.n_components)
    p.add_argument("--n-neighbors", type=int, default=defaults.n_neighbors)
    p.add_argument("--min-dist", type=float, default=defaults.min_dist)
    p.add_argument("--metric", default=defaults.metric)
    p.add_argument("--n-epochs", type=int, default=defaults.n_epochs)
    p.add_argument("--fit-sample", type=int, default=defaults.fit_sample)
    p.add_argument("--skip-bertopic", action="store_true", help="only baseline and reduced (for tuning)")
    p.add_argument("--out", default="")
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore", category=FutureWarning)
    stem = Path(args.data).stem
    out = Path(args.out or RESULTS / f"reduction_banking77{'' if stem == 'test' else '_' + stem}.json")
    seeds = [int(s) for s in args.seeds.split(",")]
    cfg = ReductionConfig(method="umap", n_components=args.n_components, n_neighbors=args.n_neighbors,
                          min_dist=args.min_dist, metric=args.metric, n_epochs=args.n_epochs, fit_sample=args.fit_sample)
    machine = {"cpu_count": os.cpu_count(), "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}

    frame = pd.read_csv(args.data)
    texts, y = frame["text"].tolist(), frame["category"].to_numpy()
    start = time.time()
    vectors = SentenceEmbedder(EmbeddingConfig(device="cpu", batch_size=128)).encode(texts)
    embed_seconds = time.time() - start
    warmup_seconds = jit_warmup(vectors, cfg)
    print(f"{len(texts)} texts embedded in {embed_seconds:.1f} s; numba JIT warm-up {warmup_seconds:.1f} s", flush=True)

    ccfg = ClusteringConfig(n_clusters=args.k, seeds=seeds, n_init=1)

    def kmeans_labels(x: np.ndarray, seed: int) -> np.ndarray:
        return cluster_over_seeds(x, replace(ccfg, seeds=[seed]))[0].labels

    methods = {
        "baseline": lambda seed: kmeans_labels(vectors, seed),
        "reduced": lambda seed: kmeans_labels(fit_transform(vectors, cfg, seed)[1], seed),  # reducer seed = KMeans seed
    }
    if not args.skip_bertopic:
        methods["bertopic_kmeans"] = lambda seed: bertopic_labels(texts, vectors, seed, args.k)
        methods["bertopic_default"] = lambda seed: bertopic_labels(texts, vectors, seed, None)
    results = {}
    for name, labels_of in methods.items():
        results[name], labels = over_seeds(name, y, seeds, labels_of)
        if name == "bertopic_default":
            results[name]["n_clusters_mean"] = float(np.mean([len(set(lab) - {-1}) for lab in labels]))
            results[name]["outlier_share_mean"] = round(float(np.mean([(lab == -1).mean() for lab in labels])), 4)

    import umap

    report = {
        "dataset": f"banking77/{Path(args.data).name}", "n": len(texts), "k": args.k, "seeds": seeds,
        **results, "reduction": asdict(cfg), "machine": machine, "embed_seconds": round(embed_seconds, 1),
        "jit_warmup_seconds": round(warmup_seconds, 1), "umap_learn": umap.__version__,
        "kmeans": "scikit-learn Lloyd, n_init=1 per seed, max_iter=300",
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{'method':<18}{'ACC':>8}{'std':>6}{'NMI':>8}{'seconds':>9}")
    for name, r in results.items():
        print(f"{name:<18}{r['acc_mean']:>8.2f}{r['acc_std']:>6.2f}{r['nmi_mean']:>8.2f}{r['seconds']:>9.1f}")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
