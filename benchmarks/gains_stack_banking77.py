"""Do the LLM methods' gains stack on the reduce stage? Banking77 test, oracle judges, no LLM.

    python benchmarks/gains_stack_banking77.py          # -> benchmarks/results/gains_stack_banking77.json
    python benchmarks/gains_stack_banking77.py --parts sampling

Each variant is scored twice, K = 77, seeds 0-4: KMeans on the raw 384-d vectors
(``reduce.method: none``) and after the reduce stage's UMAP (``reduce.method: umap``, the
local config's settings; reducer seed = KMeans seed). Ground truth (``category``) is read
here only, to build the oracle judges and to score; no job config can select an oracle.

* ``clusterllm``: ``benchmarks/clusterllm_banking77.py --parts baseline,oracle
  reduce.method=none`` under ``<run-root>/raw`` (skipped once both runs have published)
  -> ``baseline_raw`` and ``clusterllm_oracle_raw`` from the runs' ``result.json``. The
  reduced figures reduce and cluster the same runs' final vectors (``embed``, and the oracle
  run's fine-tuned ``embed_iter1``) with the library's reduce and KMeans functions, over the
  job's seeds: in a ClusterLLM job reduction acts only after the representation (triplets
  are sampled on the raw vectors), so this is what a ``reduce.method=umap`` run computes,
  on the very same fine-tuned embedder, without training it a second time (150 CPU steps,
  ~30 min on 2 loaded cores).
* ``lumi``: ``benchmarks/lumi_sample_banking77.py --reduce none|umap`` with the simulated
  labeller right on 75 % of texts (``--qualities 0.75``) -> ``lumi_oracle_*`` (every text
  labelled; label + Jaccard text pooling), the 770-text sample in ``lumi_oracle_detail``.
* ``sampling``: should reduction also feed ClusterLLM's entropy triplet sampling and its
  granularity hierarchy? On the base embedder's vectors, raw vs UMAP-reduced (seeds 0-4):
  the share of sampled triplets that have a true answer, the embedder's accuracy on those
  (cosine in its own 384-d space; ``teachable``: the share of all triplets with a true
  answer the embedder gets wrong, what a judge can teach it), and on the hierarchy
  (k_max 200, oracle pairs, λ = 3) the K the oracle pairs choose (true 77) and the ACC / NMI
  of the hierarchy cut at 77; the hierarchy also on the oracle run's fine-tuned vectors,
  which are what ``choose_k`` uses.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

from common import REPO, RESULTS, TEST_CSV  # noqa: E402  (puts libs/ on the path)

import numpy as np  # noqa: E402
import yaml  # noqa: E402
from llmclust import schema  # noqa: E402
from llmclust.methods.clusterllm.granularity import (  # noqa: E402
    build_hierarchy,
    choose_k,
    sample_pairs,
)
from llmclust.methods.clusterllm.triplets import sample_triplets  # noqa: E402
from llmclust.methods.job import load_job_config  # noqa: E402
from llmclust.pipeline.clustering import cluster_over_seeds  # noqa: E402
from llmclust.pipeline.corpus import load_corpus  # noqa: E402
from llmclust.pipeline.embedding import stored_vectors  # noqa: E402
from llmclust.pipeline.evaluation import read_ground_truth, scores, summarize  # noqa: E402
from llmclust.pipeline.reduction import fit_transform  # noqa: E402

PARTS = ["clusterllm", "lumi", "sampling"]
VARIANTS = {"raw": "none", "reduced": "umap"}  # variant -> reduce.method
KEYS = ("acc_mean", "acc_std", "nmi_mean", "nmi_std")
_REDUCED: dict = {}  # (vectors' folder, seed) -> UMAP-reduced vectors, shared by the parts


def job_config():
    return load_job_config(str(REPO / "ray_configs" / "clusterllm_local.yaml"),
                           ["evaluation.label_column=category", "reduce.method=umap", "clustering.n_clusters=77"])


def run_script(args: list[str]) -> None:
    print("+ python " + " ".join(args), flush=True)
    subprocess.run([sys.executable, *args], cwd=REPO, check=True)


def reduced(folder: Path, vectors: np.ndarray, cfg, seed: int) -> np.ndarray:
    key = (str(folder), seed)
    if key not in _REDUCED:
        _REDUCED[key] = fit_transform(vectors, cfg.reduce, seed)[1]
    return _REDUCED[key]


def labels_of(args, cfg) -> np.ndarray:
    cfg = replace(cfg, corpus=replace(cfg.corpus, path=args.data))
    table = load_corpus(cfg.corpus).table
    return np.asarray(read_ground_truth(cfg.evaluation, cfg.corpus, table.column(schema.ID).combine_chunks()), object)


def clusterllm_part(args, root: Path) -> dict:
    raw = root / "raw"
    if not all((raw / part / "result.json").exists() for part in ("baseline", "oracle")):
        run_script(["benchmarks/clusterllm_banking77.py", "--parts", "baseline,oracle", "--data", args.data,
                    "--run-root", str(raw), "--out", str(root / "clusterllm_raw.json"), "reduce.method=none"])
    cfg = job_config()
    labels = labels_of(args, cfg)
    out = {}
    for part, key, final in (("baseline", "baseline", "embed"), ("oracle", "clusterllm_oracle", "embed_iter1")):
        run = raw / part
        used = yaml.safe_load((run / "config.yaml").read_text())["reduce"]["method"]
        assert used == "none", f"{run} ran with reduce.method={used}"
        metrics = json.loads((run / "result.json").read_text())["metrics"]
        out[f"{key}_raw"] = {k: metrics[k] for k in KEYS}
        vectors = stored_vectors(run / final)
        spaces = {seed: reduced(run / final, vectors, cfg, seed) for seed in cfg.clustering.seeds}
        summary = summarize([scores(labels, r.labels) for r in cluster_over_seeds(spaces, cfg.clustering)])
        out[f"{key}_reduced"] = {k: summary[k] for k in KEYS}
        if part == "oracle":
            train = json.loads((run / "train_iter1" / "manifest.json").read_text())
            out["clusterllm_oracle_training"] = {k: train.get(k) for k in ("rows", "steps", "train_seconds",
                                                                             "loss_first", "loss_last")}
        print(f"  {key}: raw {out[f'{key}_raw']} reduced {out[f'{key}_reduced']}", flush=True)
    return out


def lumi_part(args, root: Path) -> dict:
    out = {"lumi_oracle_detail": {}}
    for variant, method in VARIANTS.items():
        tmp = root / f"lumi_{variant}.json"
        if not tmp.exists():
            run_script(["benchmarks/lumi_sample_banking77.py", "--qualities", "0.75", "--samples", "770",
                        "--reduce", method, "--out", str(tmp)])
        figures = json.loads(tmp.read_text())
        runs = {r["variant"]: r for r in figures["runs"]}
        out[f"lumi_oracle_{variant}"] = {k: runs["full"]["label_and_text_pooling"][k] for k in KEYS}
        out["lumi_oracle_detail"][variant] = {
            "baseline_same_process": {k: figures["baseline"][k] for k in KEYS},
            **{name: {"copied_label_correct": r["copied_label_correct"], "llm_calls_per_step": r["llm_calls_per_step"],
                      "label_pooling": {k: r["label_pooling"][k] for k in KEYS},
                      "label_and_text_pooling": {k: r["label_and_text_pooling"][k] for k in KEYS}}
               for name, r in runs.items()},
        }
    return out


def oracle_triplet_answers(labels: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """1 / 2: the choice sharing the anchor's class; 0: both or neither do (no true answer)."""
    anchor, first, second = (labels[rows[:, i]] for i in range(3))
    hit1, hit2 = first == anchor, second == anchor
    return np.where(hit1 & ~hit2, 1, np.where(hit2 & ~hit1, 2, 0))


def triplet_quality(vectors: np.ndarray, space: np.ndarray, labels: np.ndarray, cfg) -> dict:
    """Triplets sampled in ``space``; truth from ``labels``; the embedder answers by cosine in ``vectors``."""
    rows = sample_triplets(space, cfg).rows
    truth = oracle_triplet_answers(labels, rows)
    has = truth > 0
    a, c1, c2 = (vectors[rows[:, i]] for i in range(3))
    embedder = np.where(np.einsum("nd,nd->n", a, c1) >= np.einsum("nd,nd->n", a, c2), 1, 2)
    right = embedder[has] == truth[has]
    return {"triplets": len(rows), "with_truth": float(has.mean()), "embedder_acc": float(right.mean()),
            "teachable": float((~right).sum() / len(rows)),
            "anchor_classes": int(len(set(labels[rows[:, 0]])))}


def hierarchy_quality(space: np.ndarray, labels: np.ndarray, gcfg, seed: int, pairs_per_merge: int) -> dict:
    h = build_hierarchy(space, gcfg.k_max, gcfg.k_min, seed)
    pairs = sample_pairs(h, pairs_per_merge, seed)
    same = (labels[pairs[:, 0]] == labels[pairs[:, 1]]).astype(np.int8)  # the oracle's pair answers
    choice = choose_k(h, pairs, same, gcfg.beta)
    s = scores(labels, h.labels_at(len(set(labels))))
    return {"k_oracle": int(choice.k), "acc_at_true_k": s["acc"], "nmi_at_true_k": s["nmi"]}


def mean_over(rows: list[dict]) -> dict:
    return {k: round(float(np.mean([r[k] for r in rows])), 4) for k in rows[0]} | (
        {f"{k}_std": round(float(np.std([r[k] for r in rows])), 4) for k in rows[0]})


def sampling_part(args, root: Path) -> dict:
    cfg = job_config()
    labels = labels_of(args, cfg)
    folders = {"base": root / "raw" / "baseline" / "embed", "fine_tuned_oracle": root / "raw" / "oracle" / "embed_iter1"}
    gcfg, tcfg = cfg.clusterllm.granularity, cfg.clusterllm.triplets
    out = {"triplet_config": {"budget": tcfg.budget, "coarse_k": tcfg.coarse_k, "band": [tcfg.band_high, tcfg.band_low]},
           "granularity_config": {"k_max": gcfg.k_max, "beta": gcfg.beta, "pairs_per_merge": args.pairs_per_merge}}
    for name, folder in folders.items():
        if not (folder / "manifest.json").exists():
            continue
        vectors = stored_vectors(folder)
        assert len(vectors) == len(labels)
        start, trip, hier = time.time(), {"raw": [], "reduced": []}, {"raw": [], "reduced": []}
        for seed in cfg.clustering.seeds:
            for variant, space in (("raw", vectors), ("reduced", reduced(folder, vectors, cfg, seed))):
                if name == "base":  # sampling runs on the untrained embedder's vectors
                    trip[variant].append(triplet_quality(vectors, space, labels, replace(tcfg, seed=seed)))
                hier[variant].append(hierarchy_quality(space, labels, gcfg, seed, args.pairs_per_merge))
            print(f"  sampling {name} seed {seed}: {time.time() - start:.0f} s", flush=True)
        entry = {"hierarchy": {v: mean_over(r) for v, r in hier.items()}}
        if trip["raw"]:
            entry["triplets"] = {v: mean_over(r) for v, r in trip.items()}
        out[name] = entry
    return {"sampling": out}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(TEST_CSV))
    parser.add_argument("--run-root", default="/tmp/gains")
    parser.add_argument("--out", default=str(RESULTS / "gains_stack_banking77.json"))
    parser.add_argument("--parts", default=",".join(PARTS), help="comma-separated subset of %(default)s")
    parser.add_argument("--pairs-per-merge", type=int, default=3, help="λ of the oracle hierarchy measurement")
    args = parser.parse_args(argv)
    parts = [p for p in args.parts.split(",") if p]
    if set(parts) - set(PARTS):
        parser.error(f"--parts: expected a subset of {PARTS}")
    root = Path(args.run_root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    out = Path(args.out)
    result = json.loads(out.read_text()) if out.exists() else {}
    cfg = job_config()
    result["settings"] = {"data": args.data, "k": cfg.clustering.n_clusters, "seeds": cfg.clustering.seeds,
                          "reduce": asdict(cfg.reduce), "run_root": str(root)}
    steps = {"clusterllm": clusterllm_part, "lumi": lumi_part, "sampling": sampling_part}
    for part in parts:
        start = time.time()
        result.update(steps[part](args, root))
        result.setdefault("seconds", {})[part] = round(time.time() - start, 1)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")  # after every part: a crash keeps the others
    print(json.dumps(result, indent=2))
    print(f"results: {out}")


if __name__ == "__main__":
    main()
