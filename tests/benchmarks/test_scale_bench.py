"""The scale benchmark at a tiny N, so that it cannot rot: every stage, ours and plain, and the LLM part."""

import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture
def scale(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    import scale
    import scale_stages

    # fewer clusters and density runs than the real run: the same code, in seconds
    monkeypatch.setattr(scale_stages, "K", 10)
    monkeypatch.setattr(scale_stages, "DENSITY_RUNS", 2)
    monkeypatch.setattr(scale_stages, "SEEDS", [0, 1])
    monkeypatch.setattr(scale_stages, "REDUCE_FIT_SAMPLE", 300)  # UMAP fitted on a sample, the rest transformed
    yield scale
    for name in ("scale", "scale_stages", "scale_data"):
        sys.modules.pop(name, None)


def test_scale_benchmark_writes_every_figure(scale, tmp_path):
    out = tmp_path / "scale.json"
    scale.main(["--sizes", "600", "1200", "--llm-sizes", "500", "--inline", "--data", str(tmp_path / "data"),
                "--out", str(out)])
    result = json.loads(out.read_text())
    assert set(result) >= {"stages", "exponents", "llm_overhead_us_per_prompt", "driver_peak_rss_mb_1m", "machine",
                           "neighbours_recall_at_10", "largest_stage_peak_rss_mb_1m"}
    stages = ["neighbours", "clustering", "lumi_pooling", "triplets", "density", "naming", "evaluation", "publish",
              "reduce"]
    assert list(result["stages"]) == stages and set(result["exponents"]) == set(stages)
    for stage in stages:
        for n in ("600", "1200"):
            assert set(result["stages"][stage][n]) >= {"seconds", "peak_rss_mb", "plain_seconds", "ratio"}
        assert isinstance(result["exponents"][stage], float)
    assert result["neighbours_recall_at_10"]["1200"] == 1.0  # exact search at this size
    assert set(result["llm_overhead_us_per_prompt"]["500"]) >= {"cold", "cached", "finished"}
    assert result["machine"]["cpus"] >= 1 and len(result["machine"]["load_average_start"]) == 3


@pytest.mark.slow
def test_scale_job_runs_the_baseline_job_and_records_the_drivers_memory(tmp_path, monkeypatch):
    """The whole baseline job (hashing embedder, UMAP on a sample, KMeans, publish) at a small N,
    as the 1M measurement runs it: the driver's peak and every stage's time reach the JSON."""
    monkeypatch.syspath_prepend(str(BENCH))
    import scale_job

    out = tmp_path / "scale.json"
    try:
        scale_job.main(["--sizes", "3000", "--fit-sample", "1000", "--data", str(tmp_path / "data"),
                        "--runs", str(tmp_path / "runs"), "--out", str(out)])
    finally:
        sys.modules.pop("scale_job", None)
    row = json.loads(out.read_text())["baseline_job"]["sizes"]["3000"]
    assert 100 < row["driver_peak_rss_mb"] < 4000 and row["fit_sample"] == 1000
    assert {"corpus", "embed", "reduce", "cluster", "evaluate"} <= set(row["stages"])
    assert all(s["driver_peak_rss_mb"] <= row["driver_peak_rss_mb"] for s in row["stages"].values())
    assert 0 <= row["acc"] <= 100 and row["k"] == 100
