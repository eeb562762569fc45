"""Load benchmark of POST /assign on loopback: N client threads, bounded in requests and time.

    python cluster_jobs/baseline.py --config ray_configs/local.yaml \\
        corpus.path=tests/fixtures/banking77_small.csv clustering.n_clusters=10 run.dir=/tmp/serve-run
    python benchmarks/serve_load.py --run-dir /tmp/serve-run --requests 400 --concurrency 8 --texts-per-request 8

Starts a local Ray and the Serve app (127.0.0.1 only), sends ``--warmup`` untimed requests, then
``--requests`` timed ones from ``--concurrency`` threads (each a keep-alive session), stopping
early at ``--max-seconds``. Texts are the run's own, cycled. Writes
benchmarks/results/serve_load.json: requests, concurrency, errors, p50_ms, p99_ms, texts_per_s,
plus the settings, the machine's load and the same embedder's in-process rate without Serve
(``raw_encode_texts_per_s``, measured right after). Exits 1 when any request failed.
"""

import argparse
import itertools
import os
import socket
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import requests
from llmclust import schema
from llmclust.serve.deploy import deploy_locally
from llmclust.store.finished import read_run
from common import RESULTS, write_result

OUT = RESULTS / "serve_load.json"


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run-dir", default="/tmp/serve-run", help="a finished run (default: %(default)s)")
    p.add_argument("--requests", type=int, default=400, help="timed requests (default: %(default)s)")
    p.add_argument("--concurrency", type=int, default=8, help="client threads (default: %(default)s)")
    p.add_argument("--texts-per-request", type=int, default=8)
    p.add_argument("--max-seconds", type=float, default=120, help="time cap of the timed phase")
    p.add_argument("--warmup", type=int, default=16, help="untimed requests first (model warm-up)")
    p.add_argument("--replicas", type=int, default=1)
    p.add_argument("--cpus-per-replica", type=float, default=2)
    p.add_argument("--out", default=str(OUT))
    return p.parse_args(argv)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_clients(url: str, bodies, total: int, concurrency: int, max_seconds: float) -> tuple[list[float], list[str], float]:
    """Send ``total`` requests from ``concurrency`` threads; (latencies in s, error strings, wall s)."""
    latencies, errors, lock = [], [], threading.Lock()
    tickets = iter(range(total))
    deadline = time.perf_counter() + max_seconds

    def client():
        session = requests.Session()
        while time.perf_counter() < deadline:
            with lock:
                if next(tickets, None) is None:
                    return
                body = next(bodies)
            start = time.perf_counter()
            try:
                reply = session.post(url, json=body, timeout=60)
                failure = None if reply.status_code == 200 else f"HTTP {reply.status_code}: {reply.text[:200]}"
            except requests.RequestException as err:
                failure = f"{type(err).__name__}: {err}"
            elapsed = time.perf_counter() - start
            with lock:
                if failure is None:
                    latencies.append(elapsed)
                else:
                    errors.append(failure)

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, errors, time.perf_counter() - start


def raw_encode_rate(embedder_path: str, texts: list[str], threads: float) -> float:
    """Texts/s of the same embedder in this process, no Serve: the ceiling the endpoint is measured against."""
    import torch
    from llmclust.pipeline.embedders import SentenceEmbedder
    from llmclust.pipeline.embedding import EmbeddingConfig

    torch.set_num_threads(max(1, int(threads)))
    embedder = SentenceEmbedder(EmbeddingConfig(model=embedder_path, device="auto", batch_size=64), embedder_path)
    embedder.encode(texts[:16])  # warm-up
    start = time.perf_counter()
    embedder.encode(texts)
    return len(texts) / (time.perf_counter() - start)


def main(argv=None):
    args = parse_args(argv)
    # 1. the run's texts, cut into request bodies (cycled)
    result = read_run(args.run_dir)
    texts = pq.read_table(Path(args.run_dir) / result["assignments"]).column(schema.TEXT).to_pylist()
    per = args.texts_per_request
    bodies = itertools.cycle([{"texts": texts[i:i + per]} for i in range(0, len(texts) - per + 1, per)])
    # 2. a local Ray and the app, loopback only
    import ray

    ray.init(num_cpus=max(2, int(args.replicas * args.cpus_per_replica)), include_dashboard=False, log_to_driver=False)
    base = deploy_locally({"run_dir": str(Path(args.run_dir).resolve()), "num_replicas": args.replicas,
                           "num_cpus": args.cpus_per_replica, "max_texts": max(64, per), "max_batch_size": max(128, per)},
                          port=free_port(), name="serve-load")
    health = requests.get(base + "/healthz", timeout=30).json()
    # 3. warm-up (untimed), then the timed phase
    _, warm_errors, _ = run_clients(base + "/assign", bodies, args.warmup, min(args.concurrency, args.warmup), 60)
    load_before = os.getloadavg()[0]
    latencies, errors, wall = run_clients(base + "/assign", bodies, args.requests, args.concurrency, args.max_seconds)
    from ray import serve

    serve.shutdown()
    ray.shutdown()
    raw = raw_encode_rate(result["embedder"], texts, args.cpus_per_replica)
    # 4. figures
    ms = np.asarray(latencies) * 1000
    report = {
        "requests": len(latencies) + len(errors), "concurrency": args.concurrency, "errors": len(errors) + len(warm_errors),
        "p50_ms": round(float(np.percentile(ms, 50)), 1) if len(ms) else None,
        "p99_ms": round(float(np.percentile(ms, 99)), 1) if len(ms) else None,
        "texts_per_s": round(len(latencies) * per / wall, 1),
        "requests_per_s": round(len(latencies) / wall, 1), "raw_encode_texts_per_s": round(raw, 1), "texts_per_request": per, "replicas": args.replicas,
        "cpus_per_replica": args.cpus_per_replica, "device": health["device"], "limits": health["limits"],
        "requested": args.requests, "max_seconds": args.max_seconds, "time_capped": len(latencies) + len(errors) < args.requests,
        "wall_s": round(wall, 2), "warmup_requests": args.warmup, "host_cpus": os.cpu_count(),
        "load_avg_1m_before": round(load_before, 2), "first_errors": errors[:5] + warm_errors[:5],
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_result(args.out, report)
    print(f"wrote {args.out}")
    sys.exit(1 if report["errors"] else 0)


if __name__ == "__main__":
    main()
