"""The reliability suite's shared pieces: the job, an in-process embedder, run comparison, verdicts.

Every case ends in one of two outcomes, and :class:`Verdict` checks which and records it
(``benchmarks/reliability.py`` counts the records):

* the same result as a clean run (assignments, clusters, stored vectors), with no intact
  work thrown away; a finished run that differs is *silently wrong*, intact parts or cached
  answers computed again are *data lost*;
* a clear error naming the input and the option to change, raised before any half-written
  output; a run that finishes on bad input is *silently wrong*.

In-process cases run the embedder in this process instead of a Ray actor pool (same model,
same batching; ``embed_with_ray`` is the only function replaced), so a case costs seconds.
The kill cases run real jobs in subprocesses and SIGKILL them.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import yaml
from helpers import REPO, SMALL_CSV
from llmclust import schema
from llmclust.llm import LLMConfig, SamplingParams, generate_stage

CHUNK_ROWS = 50  # 4 parts over the 200 texts


def job_overrides(run_dir: Path, *overrides: str) -> list[str]:
    """The baseline job the suite runs: 200 texts, K=10, one seed, evaluated, 4 embedding parts."""
    # reduce.method=none: the suite checks the run directory. A UMAP layout is not stable under the
    # 1e-7 float differences that another chunk_rows (other batch padding) gives the vectors, so a
    # reduced run would differ for reasons that have nothing to do with what was stored
    return [f"corpus.path={SMALL_CSV}", f"run.dir={run_dir}", "clustering.n_clusters=10", "clustering.seeds=[0]",
            "reduce.method=none", f"embedding.chunk_rows={CHUNK_ROWS}", "embedding.batch_size=32",
            "embedding.cpus_per_actor=1", *overrides]


def job_config(run_dir: Path, *overrides: str):
    from llmclust.methods.job import load_job_config

    return load_job_config(REPO / "ray_configs" / "local.yaml", job_overrides(run_dir, *overrides))


class InProcessEmbedder:
    """Stands in for ``embed_with_ray``: the same model in this process; records the rows it embeds."""

    models: dict = {}

    def __init__(self):
        self.ranges: list[tuple[int, int]] = []

    def __call__(self, table, cfg, on_batch=None) -> np.ndarray:
        from llmclust.pipeline.embedders import SentenceEmbedder

        rows = table.column(schema.ROW).to_numpy()
        self.ranges.append((int(rows[0]), int(rows[-1]) + 1))
        if cfg.model not in self.models:
            self.models[cfg.model] = SentenceEmbedder(cfg)
        vectors = self.models[cfg.model].encode(table.column(schema.TEXT).to_pylist())
        if on_batch:
            on_batch(len(vectors))
        return vectors


def fit(cfg, monkeypatch, embedder: InProcessEmbedder | None = None) -> InProcessEmbedder:
    """``KMeansClusterer(cfg).fit()`` without Ray: returns the embedder, to see what it embedded."""
    from llmclust.methods import KMeansClusterer

    embedder = embedder or InProcessEmbedder()
    monkeypatch.setattr("llmclust.pipeline.embedding.embed_with_ray", embedder)
    monkeypatch.setattr("llmclust.methods.base.init_ray", lambda cfg: None)
    KMeansClusterer(cfg).fit()
    return embedder


def differences(run_dir: Path, reference: Path) -> list[str]:
    """What differs between two finished runs (empty: the same result)."""
    from llmclust.pipeline.embedding import stored_vectors
    from llmclust.store.runs import RunDir

    try:
        result = RunDir(run_dir).read_result()
    except FileNotFoundError as err:
        return [f"not a finished run: {err}"]
    expected = RunDir(reference).read_result()
    out = [f"result.json {key}: {result[key]} != {expected[key]}"
           for key in ("n", "k", "method") if result[key] != expected[key]]
    configs = [yaml.safe_load((d / "config.yaml").read_text()) for d in (run_dir, reference)]
    if any(configs[0][key] != configs[1][key] for key in ("method", "corpus", "clustering", "evaluation")):
        out.append("config.yaml is not the config of the result")
    got, want = pq.read_table(run_dir / "assignments.parquet"), pq.read_table(reference / "assignments.parquet")
    for column in (schema.ID, schema.TEXT, schema.CLUSTER, schema.CLUSTER_NAME):
        if got.column(column) != want.column(column):
            out.append(f"assignments column {column} differs")
    if not np.allclose(got.column(schema.SCORE).to_numpy(), want.column(schema.SCORE).to_numpy(), atol=1e-4):
        out.append("assignment scores differ")
    got, want = pq.read_table(run_dir / "clusters.parquet"), pq.read_table(reference / "clusters.parquet")
    centroids = [schema.from_fixed_list(t.column(schema.CENTROID)) for t in (got, want)]
    if got.column(schema.SIZE) != want.column(schema.SIZE) or not np.allclose(*centroids, atol=1e-4):
        out.append("cluster sizes or centroids differ")
    vectors, reference_vectors = stored_vectors(run_dir / "embed"), stored_vectors(reference / "embed")
    if vectors.shape != reference_vectors.shape or not np.allclose(vectors, reference_vectors, atol=1e-4):
        out.append(f"stored vectors differ ({vectors.shape} vs {reference_vectors.shape})")
    return out


class Verdict:
    """Checks a case's outcome and records it as test properties for the benchmark to count."""

    def __init__(self, record):
        self.record = record

    def same_result(self, run_dir: Path, reference: Path) -> None:
        problems = differences(run_dir, reference)
        finished = (run_dir / "result.json").exists()
        self.record("silently_wrong", bool(problems) and finished)
        assert not problems, problems

    def nothing_lost(self, recomputed: list, expected: list) -> None:
        """``recomputed``: the work a rerun redid; anything beyond ``expected`` was intact work thrown away."""
        self.record("data_lost", any(r not in expected for r in recomputed))
        assert sorted(recomputed) == sorted(expected), f"recomputed {recomputed}, expected {expected}"

    def clear_error(self, raised: BaseException | None, *fragments: str) -> None:
        self.record("silently_wrong", raised is None)
        assert raised is not None, "bad input was accepted"
        missing = [f for f in fragments if f not in str(raised)]
        assert not missing, f"error {str(raised)!r} does not say {missing}"


def llm_chats(n: int = 20) -> list:
    """One chat per text: the first ``n`` texts of the small corpus."""
    return [[{"role": "user", "content": t}] for t in pacsv.read_csv(SMALL_CSV).column("text").to_pylist()[:n]]


class LabelBackend:
    """A fake LLM backend: answers 'label <text>' after ``delay`` seconds per batch; counts its calls."""

    model_id = "fake-labeller"

    def __init__(self, delay: float = 0.0):
        self.delay, self.calls = delay, 0

    def generate(self, chats, params):
        time.sleep(self.delay)
        self.calls += len(chats)
        return [[f"label {c[-1]['content'][:30]}"] * params.n for c in chats]


def label_stage(run_dir: Path, backend: LabelBackend):
    """The LLM stage of the kill case: 20 chats, batches of 2, answers cached in the run."""
    from llmclust.store.runs import RunDir

    run = RunDir(run_dir)
    return generate_stage(run, "labels", llm_chats(), SamplingParams(max_tokens=8),
                          LLMConfig(num_actors=0, batch_size=2), run.stage("up", 1), backend=backend)
