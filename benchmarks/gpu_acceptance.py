"""GPU acceptance: on one GPU, the embed benchmark at 1M texts, then all four jobs on Banking77 test with gpu.yaml.

    python benchmarks/gpu_acceptance.py                 # one H100/H200: about 8 minutes -> results/gpu_acceptance.json
    python benchmarks/gpu_acceptance.py --cpu-smoke     # the script itself, on CPU, tiny inputs -> $TMPDIR/gpu_acceptance_cpu_smoke.json
                                                        # (DeepSpeed on, as on the GPU: .[dev] and a C++ compiler)
    python benchmarks/gpu_acceptance.py --steps baseline cotrain --work-dir /tmp/acc   # a short lease: order, keep logs

Each step runs in its own process under its own time cap, prints one line when it ends, and the
JSON is rewritten after every step, so a step that hangs costs its cap and loses nothing else:

1. ``embed``: ``benchmarks/embed_throughput.py`` at 1M texts (pipeline against plain
   sentence-transformers in the same process): texts/s and the ratio to plain;
2. ``jobs``: baseline, lumi, clusterllm, cotrain (one iteration, 60 DPO steps, DeepSpeed ZeRO-2,
   which must be installed) with ``ray_configs/gpu.yaml`` on a local Ray: finished, seconds,
   each stage's seconds and start-up, ACC / NMI beside the CPU figures, LLM prompts/s, DPO steps/s
   (with start-up and without) and the ZeRO stage the engine ran.

The machine's GPU, library versions and the settings are recorded with them. Without a CUDA
device the script stops at once, saying so (``--cpu-smoke`` runs the same steps on the CPU).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, RESULTS, TEST_CSV, write_result

sys.path.insert(0, str(REPO / "tests"))
from helpers import SMALL_CSV, TINY  # (the tests' tiny budgets, for --cpu-smoke)

LIBRARIES = ("torch", "transformers", "sentence-transformers", "ray", "trl", "peft", "accelerate", "deepspeed", "datasets",
             "vllm", "faiss-cpu", "faiss-gpu-cu12", "umap-learn", "cuml-cu12", "numpy", "pyarrow")
# seconds on one GPU: room for a job to finish where it misses its target (the H200 run of
# 2026-12-04 cut all four at 90-240 s caps and so measured none), so the JSON says by how much
CAPS = {"embed": 240, "baseline": 180, "lumi": 180, "clusterllm": 180, "cotrain": 420}
TARGETS = {"cotrain_max_s": 240, "embed_min_texts_per_s": 30_000, "embed_min_ratio": 0.9, "startup_max_s_after_first": 10}
CPU_SMOKE_SLOWER = 6  # the same steps on 2 CPU cores, tiny inputs
# every stage runs: SmolLM2-135M fails the LLM audit, which would skip the training (the measure here is the machinery)
# one GPU: the driver embeds on it (embedding.num_actors=0: the model loaded once for every embed
# stage, no actor pool to start per stage); the LLM engine stays loaded between LLM stages until
# Ray Train needs the GPU (ray_session.make_room). transformers' generate costs about the same per
# token at 8 rows as at 1024 on an H200 (44-55 ms: Python and kernel launches, 2026-12-04 run), so a
# generation pass of 3080 prompts goes in one batch of up to 4096, not four (SmolLM2: ~26 GB of KV cache),
# and a pass stops at 64 new tokens, not gpu.yaml's 128: a batch runs until its longest answer ends, and past
# 64 tokens SmolLM2 only repeats a keyword, which the parser drops (benchmarks/interpretations_smollm2.py)
GPU_JOB = ["ray.address=", "embedding.num_actors=0", "llm.backend=transformers", "llm.num_actors=1", "llm.batch_size=4096",
           "audit.enabled=false", "cotrain.max_tokens=64",
           "cotrain.iterations=1", "cotrain.dpo.max_steps=60", "cotrain.embedder.max_steps=200"]
CPU_SMOKE = ["embedding.device=cpu", "embedding.gpus_per_actor=0", "embedding.dtype=float32", "embedding.tokenize_workers=0",
             "embedding.cpus_per_actor=2", "llm.device=cpu", "llm.gpus_per_actor=0", "llm.batch_size=16",
             "cotrain.dpo.use_gpu=false", "cotrain.dpo.max_steps=1", "cotrain.dpo.cpus_per_worker=2",
             "cotrain.embedder.use_gpu=false", "cotrain.embedder.max_steps=1", "cotrain.embedder.cpus_per_worker=2",
             "clusterllm.training.use_gpu=false", "reduce.fit_sample=0", "clustering.seeds=[0]", "corpus.limit=16",
             f"corpus.path={SMALL_CSV}", "clustering.n_clusters=4", "cotrain.max_tokens=16", "cotrain.density_runs=5",
             "cotrain.temperatures=[1.0]", "cotrain.embedder.dec_clusters=4"]


def versions() -> dict:
    out = {}
    for name in LIBRARIES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def device() -> str | None:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def run(argv: list[str], cap: int, env: dict) -> tuple[bool, float, str]:
    """A step in its own process: (finished, seconds, the end of its output)."""
    t0 = time.time()
    try:
        done = subprocess.run(argv, check=False, cwd=REPO, env=env, capture_output=True, text=True, timeout=cap)
        return done.returncode == 0, round(time.time() - t0, 1), (done.stdout + done.stderr)[-2000:]
    except subprocess.TimeoutExpired as err:  # what it printed so far (bytes here, even with text=True)
        printed = b"".join(part if isinstance(part, bytes) else part.encode() for part in (err.stdout, err.stderr) if part)
        return False, round(time.time() - t0, 1), f"cut at its cap of {cap} s: {printed.decode(errors='replace')[-1500:]}"


def stage_facts(run_dir: Path) -> dict:
    """Seconds (and start-up, LLM and DPO rates where the stage records them) of every finished stage."""
    out = {}
    manifests = [json.loads(f.read_text()) for f in run_dir.glob("*/manifest.json")]
    for m in sorted(manifests, key=lambda m: m.get("finished_at", "")):  # in the order the stages ran
        facts = {"seconds": m["seconds"]}
        if m.get("startup_s") is not None:
            facts.update(startup_s=m["startup_s"], kind="llm" if m.get("calls") is not None else "embed")
        for key in ("warm_up_wait_s", "seed_timing"):  # the reduce stage's
            if key in m:
                facts[key] = m[key]
        if m.get("calls") and m.get("llm_seconds"):
            facts["llm_prompts_per_s"] = round(m["calls"] / m["llm_seconds"], 1)
        out[m["stage"]] = facts
    return out


def job_facts(method: str, run_dir: Path, finished: bool, seconds: float, tail: str, cpu_reference: dict) -> dict:
    facts = {"finished": finished, "seconds": seconds, "stages": stage_facts(run_dir) if run_dir.exists() else {}}
    result = run_dir / "result.json"
    if finished and result.exists():
        metrics = json.loads(result.read_text()).get("metrics") or {}
        facts.update(acc=metrics.get("acc_mean"), nmi=metrics.get("nmi_mean"), cpu=cpu_reference.get(method))
    iterations = run_dir / "iterations.json"
    dpo = run_dir / "iter0_dpo" / "manifest.json"
    if dpo.exists():
        m = json.loads(dpo.read_text())
        facts["dpo_steps_per_s"] = round(m.get("steps", 0) / max(m["seconds"], 1e-9), 3)  # start-up included
        if m.get("train_seconds"):  # the steps alone, and the ZeRO stage DeepSpeed ran (None: plain DDP)
            facts["dpo_train_steps_per_s"] = round(m["steps"] / m["train_seconds"], 3)
            facts["dpo_zero_stage"] = m["zero_stage"]
    if iterations.exists():
        facts["iterations"] = json.loads(iterations.read_text())
    if not finished:
        facts["output_tail"] = tail
    return facts


def targets(result: dict) -> dict:
    """Issue #22's targets, each met or not (None: its step has not run)."""
    jobs, embed = result["jobs"], result.get("embed") or {}
    startups = [s for job in jobs.values() for s in later_startups(job)]
    cotrain = jobs.get("cotrain")
    return {"limits": TARGETS,
            "all_four_jobs_finished": all(j["finished"] for j in jobs.values()) if len(jobs) == 4 else None,
            "cotrain_in_time": cotrain["finished"] and cotrain["seconds"] <= TARGETS["cotrain_max_s"] if cotrain else None,
            "embed_texts_per_s": embed.get("pipeline_texts_per_s", 0) >= TARGETS["embed_min_texts_per_s"] and
                                 embed.get("ratio", 0) >= TARGETS["embed_min_ratio"] if embed else None,
            "startup_after_first": max(startups) <= TARGETS["startup_max_s_after_first"] if startups else None,
            "later_startups_s": startups}


def later_startups(job: dict) -> list[float]:
    """A job's start-ups after its first embed stage's and its first LLM stage's (each job is a new
    process: its first model and engine load is the one start-up the target allows)."""
    seen, later = set(), []
    for facts in job["stages"].values():
        if "startup_s" in facts:
            if facts["kind"] in seen:
                later.append(facts["startup_s"])
            seen.add(facts["kind"])
    return later


def cpu_reference() -> dict:
    """The CPU figures the GPU run is set beside (benchmarks/results, measured on 2 cores)."""
    reduced = json.loads((RESULTS / "baseline_banking77.json").read_text())["reduced"]  # UMAP + KMeans, as gpu.yaml
    return {"baseline": {"source": "benchmarks/results/baseline_banking77.json (reduced)",
                         "acc": reduced["acc_mean"], "nmi": reduced["nmi_mean"]}}


STEPS = ("embed", "baseline", "lumi", "clusterllm", "cotrain")


def embed_step(args, caps: dict, env: dict, work: Path) -> dict:
    out = work / "embed.json"
    embed = ["--device", "cpu", "--n", "2000", "--batch-size", "64"] if args.cpu_smoke else \
        ["--device", "cuda", "--n", "1000000", "--batch-size", "1024", "--tokenize-workers", "12", "--cpus-per-actor", "1"]
    out.unlink(missing_ok=True)  # a reused --work-dir: only this run's figures count
    ok, seconds, tail = run([sys.executable, str(REPO / "benchmarks" / "embed_throughput.py"), *embed,
                             "--out", str(out)], caps["embed"], env)
    measured = json.loads(out.read_text()) if out.exists() else {}  # the plain rate is written before the pipeline runs
    return {"finished": ok, "seconds": seconds, **measured, **({} if ok else {"output_tail": tail})}


def job_step(method: str, args, caps: dict, env: dict, work: Path) -> dict:
    run_dir = work / method
    overrides = [*GPU_JOB, f"run.dir={run_dir}", f"corpus.path={TEST_CSV}"]
    if args.cpu_smoke:
        overrides += [*CPU_SMOKE, *TINY[method]]
    ok, seconds, tail = run([sys.executable, str(REPO / "cluster_jobs" / f"{method}.py"), "--no-report",
                             "--config", str(REPO / "ray_configs" / "gpu.yaml"), *overrides], caps[method], env)
    return job_facts(method, run_dir, ok, seconds, tail, cpu_reference())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpu-smoke", action="store_true", help="run every step on the CPU on tiny inputs")
    parser.add_argument("--out", type=Path, default=None,
                        help="the JSON (default: results/gpu_acceptance.json; with --cpu-smoke a file in the temporary "
                             "folder, so that a smoke run never replaces a GPU run's figures)")
    parser.add_argument("--steps", nargs="+", choices=STEPS, default=list(STEPS),
                        help="the steps to run, in this order (a short lease: the most wanted first)")
    parser.add_argument("--cap", nargs="+", default=[], metavar="STEP=SECONDS",
                        help=f"another time cap for a step (defaults: {CAPS})")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="keep each job's run folder (logs, manifests) here; default: a temporary folder")
    args = parser.parse_args()
    args.out = args.out or (Path(tempfile.gettempdir()) / "gpu_acceptance_cpu_smoke.json" if args.cpu_smoke
                            else RESULTS / "gpu_acceptance.json")
    caps = {step: cap * (CPU_SMOKE_SLOWER if args.cpu_smoke else 1) for step, cap in CAPS.items()}
    for item in args.cap:
        step, _, seconds = item.partition("=")
        if step not in CAPS or not seconds.isdigit():
            parser.error(f"--cap {item!r}: expected STEP=SECONDS with STEP one of {', '.join(CAPS)}, e.g. cotrain=300")
        caps[step] = int(seconds)
    gpu = device()
    if gpu is None and not args.cpu_smoke:
        sys.exit("gpu_acceptance: no CUDA device is visible (torch.cuda.is_available() is False). This script measures "
                 "the GPU path on one H100/H200; on a CPU machine run benchmarks/placement_cpu.py, or pass --cpu-smoke "
                 "to check the script itself.")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("RAY_ADDRESS")},
           "PYTHONPATH": os.pathsep.join([str(REPO / "libs"), os.environ.get("PYTHONPATH", "")])}
    result = {"device": gpu or "cpu (--cpu-smoke)", "versions": versions(), "caps_s": caps, "settings": GPU_JOB,
              "jobs": {}}
    t_start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work_dir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        for step in args.steps:
            if step == "embed":
                facts = result["embed"] = embed_step(args, caps, env, work)
            else:
                facts = result["jobs"][step] = job_step(step, args, caps, env, work)
            print(f"{step}: finished={facts['finished']} in {facts['seconds']} s", flush=True)
            result["targets"] = targets(result)
            write_result(args.out, result, {step: "written"})
    result["total_s"] = round(time.time() - t_start, 1)
    write_result(args.out, result, {k: result[k] for k in ("device", "total_s")})
    print(f"gpu_acceptance: written to {args.out}", flush=True)


if __name__ == "__main__":
    main()
