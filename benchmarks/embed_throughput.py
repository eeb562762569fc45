"""Embedding throughput: the Ray Data stage against a plain SentenceTransformer.encode loop.

    python benchmarks/embed_throughput.py                                   # CPU, Banking77 train
    python benchmarks/embed_throughput.py --device cuda --n 1000000 --batch-size 1024 \
        --tokenize-workers 12 --out benchmarks/results/embed_throughput_gpu.json

Both run in the same process on the same texts, after warm-up: the plain loop is timed after
one warm-up call; the pipeline from its first result batch to its last, so actor start-up and
model loading (reported separately as pipeline_startup_s) are excluded from both rates.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import pyarrow as pa

from common import RESULTS, TRAIN_CSV, write_result  # noqa: E402  (puts libs/ on the path)
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from llmclust import schema  # noqa: E402
from llmclust.devices import resolve_device  # noqa: E402
from llmclust.models import resolve_model  # noqa: E402
from llmclust.pipeline.corpus import CorpusConfig, load_corpus  # noqa: E402
from llmclust.pipeline.embedding import EmbeddingConfig, embed_with_ray  # noqa: E402


def load_texts(path: str, n: int) -> list[str]:
    texts = load_corpus(CorpusConfig(path=path)).table.column(schema.TEXT).to_pylist()
    reps = -(-n // len(texts)) if n else 1
    return (texts * reps)[: n or len(texts)]


def time_plain(texts: list[str], cfg: EmbeddingConfig) -> tuple[float, np.ndarray]:
    import torch
    from sentence_transformers import SentenceTransformer

    device = resolve_device(cfg.device, "embedding.device")
    if device == "cpu":
        torch.set_num_threads(int(cfg.cpus_per_actor))
    model = SentenceTransformer(resolve_model(cfg.model), device=device)
    model.max_seq_length = cfg.max_seq_length
    if device == "cuda":
        model.half()
    model.encode(texts[: cfg.batch_size], batch_size=cfg.batch_size)  # warm-up
    start = time.perf_counter()
    out = model.encode(texts, batch_size=cfg.batch_size, normalize_embeddings=True, convert_to_numpy=True)
    if device == "cuda":
        torch.cuda.synchronize()
    return len(texts) / (time.perf_counter() - start), out


def time_pipeline(texts: list[str], cfg: EmbeddingConfig) -> tuple[float, float, float, np.ndarray]:
    table = pa.table({schema.ROW: pa.array(np.arange(len(texts)), pa.int64()), schema.TEXT: texts})
    marks: list[tuple[float, int]] = []
    start = time.perf_counter()
    out = embed_with_ray(table, cfg, on_batch=lambda rows: marks.append((time.perf_counter(), rows)))
    end = time.perf_counter()
    first_time, first_rows = marks[0]
    steady = (len(texts) - first_rows) / max(end - first_time, 1e-9)
    return steady, first_time - start, end - start, out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(TRAIN_CSV))
    p.add_argument("--n", type=int, default=0, help="texts (the data repeated as needed); 0: the file once")
    p.add_argument("--model", default="all-MiniLM-L6-v2", help="local path or the embedded default")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--num-actors", type=int, default=1)
    p.add_argument("--cpus-per-actor", type=float, default=float(os.cpu_count() or 1))
    p.add_argument("--tokenize-workers", type=int, default=0)
    p.add_argument("--out", default=str(RESULTS / "embed_throughput.json"))
    args = p.parse_args(argv)

    import ray

    texts = load_texts(args.data, args.n)
    gpus = 1 if args.device == "cuda" else 0
    cfg = EmbeddingConfig(model=args.model, device=args.device, batch_size=args.batch_size, num_actors=args.num_actors,
                          cpus_per_actor=args.cpus_per_actor, gpus_per_actor=gpus, tokenize_workers=args.tokenize_workers)
    result = {
        "n": len(texts), "device": resolve_device(args.device, "--device"), "host": platform.node(), "cpus": os.cpu_count(),
        "model": cfg.model, "batch_size": cfg.batch_size, "num_actors": cfg.num_actors,
        "cpus_per_actor": cfg.cpus_per_actor, "tokenize_workers": cfg.tokenize_workers,
        "timing": "steady state after warm-up: plain after one warm-up call; pipeline from first to last result batch",
    }
    plain, ref = time_plain(texts, cfg)
    result["plain_texts_per_s"] = round(plain, 1)
    write_result(args.out, result, {"plain_texts_per_s": result["plain_texts_per_s"]})  # kept if the pipeline is cut
    ray.init(include_dashboard=False, log_to_driver=False)
    pipe, startup, total, out = time_pipeline(texts, cfg)
    ray.shutdown()
    # fp16 on GPU reorders additions: compare loosely; on CPU the two must agree closely
    result.update(pipeline_texts_per_s=round(pipe, 1), ratio=round(pipe / plain, 3), pipeline_startup_s=round(startup, 2),
                  pipeline_total_s=round(total, 2), max_abs_diff_vs_plain=float(np.abs(out - ref).max()))
    write_result(args.out, result)
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
