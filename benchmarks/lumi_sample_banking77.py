"""LUMI asking the LLM about a sample (``lumi.llm_sample``) against asking about every text.

    python benchmarks/lumi_sample_banking77.py      # Banking77 test -> benchmarks/results/lumi_sample_banking77.json

No LLM runs: as in the oracle sweep of benchmarks/lumi_banking77.py, the labeller is simulated
from the true intents (read for that only): with probability ``quality`` it names the text's
intent ("card arrival"), else it gives the text's first four words (the kind of fragment
SmolLM2-135M gives). ``full`` labels every text; ``sample s`` labels only the s texts that
LUMI's sampling picks (those nearest to s fine KMeans centres, :func:`representatives`) and
every other text copies the label of its centre's representative. Label pooling, Jaccard
text pooling and KMeans (K = 77, 5 seeds) are LUMI's own; the multi-label step is left out
(one label per text). ``copied_label_correct`` is the share of texts whose label, asked or
copied, names their intent.

``--reduce umap`` clusters every space (the baseline's and the pooled ones) after the
reduce stage's UMAP (llmclust.pipeline.reduction, the local config's settings, reducer seed = KMeans
seed), as a LUMI job with ``reduce.method: umap`` does; the default, ``none``, clusters the
raw vectors.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np

from common import RESULTS, TEST_CSV  # noqa: E402  (puts libs/ on the path)

from llmclust.methods.lumi.config import LumiConfig  # noqa: E402
from llmclust.methods.lumi.pooling import incidence, label_level_pool, text_level_pool  # noqa: E402
from llmclust.methods.lumi.stages import representatives  # noqa: E402
from llmclust.pipeline.clustering import ClusteringConfig, cluster_over_seeds  # noqa: E402
from llmclust.pipeline.embedders import SentenceEmbedder
from llmclust.pipeline.embedding import EmbeddingConfig  # noqa: E402
from llmclust.pipeline.evaluation import scores, summarize  # noqa: E402
from llmclust.pipeline.neighbours import NeighboursConfig  # noqa: E402
from llmclust.pipeline.reduction import ReductionConfig, fit_transform  # noqa: E402

DATA = TEST_CSV
OUT = RESULTS / "lumi_sample_banking77.json"


def mean_scores(vectors, truth, k, reduce: ReductionConfig | None = None) -> dict:
    cfg = ClusteringConfig(n_clusters=k)
    if reduce is not None and reduce.enabled:  # one reducer per KMeans seed, as the reduce stage fits
        vectors = {seed: fit_transform(vectors, reduce, seed)[1] for seed in cfg.seeds}
    s = summarize([scores(truth, r.labels) for r in cluster_over_seeds(vectors, cfg)])
    return {key: s[key] for key in ("acc_mean", "acc_std", "nmi_mean", "nmi_std")}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, nargs="+", default=[385, 770, 1540])
    parser.add_argument("--qualities", type=float, nargs="+", default=[1.0, 0.75])
    parser.add_argument("--reduce", choices=["none", "umap"], default="none",
                        help="cluster after UMAP (the local config's reduce settings) or on the raw vectors")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    reduce = ReductionConfig(method=args.reduce)
    t0 = time.time()
    rows = list(csv.DictReader(DATA.open()))
    texts, truth = [r["text"] for r in rows], np.array([r["category"] for r in rows])
    k, lumi = len(set(truth)), LumiConfig()
    embedder = SentenceEmbedder(EmbeddingConfig(model="all-MiniLM-L6-v2", device="cpu"))
    e = embedder.encode(texts)
    encoded: dict[str, np.ndarray] = {}
    result = {"n": len(texts), "k": k, **({"reduce": args.reduce} if reduce.enabled else {}),
              "baseline": mean_scores(e, truth, k, reduce), "runs": []}
    samples = {s: representatives(e, s, NeighboursConfig(), lumi.seed) for s in args.samples}
    for quality in args.qualities:
        rng = np.random.default_rng(0)
        oracle = [t.replace("_", " ") if rng.random() < quality else " ".join(x.lower().split()[:4])
                  for x, t in zip(texts, truth)]
        variants = {"full": np.arange(len(texts))} | {f"sample {s}": smp.rows[smp.source] for s, smp in samples.items()}
        for name, source in variants.items():
            labels = [oracle[i] for i in source]
            names = sorted(set(labels))
            missing = [x for x in names if x not in encoded]
            if missing:
                encoded.update(zip(missing, embedder.encode(missing)))
            lookup = {x: i for i, x in enumerate(names)}
            S = incidence([[lookup[x]] for x in labels], len(names))
            h = label_level_pool(e, np.stack([encoded[x] for x in names]), S)
            r, _ = text_level_pool(h, S, lumi.text_pool_top_m, lumi.label_posting_cap, lumi.seed)
            row = {"quality": quality, "variant": name, "llm_calls_per_step": len(set(source.tolist())),
                   "copied_label_correct": round(float(np.mean([x == t.replace("_", " ") for x, t in zip(labels, truth)])), 4),
                   "label_pooling": mean_scores(h, truth, k, reduce),
                   "label_and_text_pooling": mean_scores(r, truth, k, reduce)}
            result["runs"].append(row)
            print(json.dumps(row), flush=True)
    result["seconds"] = round(time.time() - t0, 1)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
