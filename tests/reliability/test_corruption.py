"""A damaged run directory: the rerun warns, computes exactly what was damaged, and ends as a clean run."""

import json
import shutil

import pytest
from harness import CHUNK_ROWS, fit, job_config
from llmclust.store.finished import read_run


def _part(run_dir, index):
    return run_dir / "embed" / "parts" / f"part-{index:05d}.parquet"


def truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


ALL_PARTS = [(s, s + CHUNK_ROWS) for s in range(0, 200, CHUNK_ROWS)]

# case -> (damage, rows the rerun must embed again, what its warning says)
DAMAGE = {
    "truncated part": (lambda run: truncate(_part(run, 1)), [(50, 100)],
                       "part-00001.parquet (rows 50-100) does not match"),
    "part holding other rows": (lambda run: shutil.copy(_part(run, 0), _part(run, 2)), [(100, 150)],
                                "part-00002.parquet (rows 100-150) does not match"),
    "deleted part": (lambda run: _part(run, 3).unlink(), [(150, 200)], "part-00003.parquet (rows 150-200) is missing"),
    "manifest without parts": (lambda run: shutil.rmtree(run / "embed" / "parts"), ALL_PARTS,
                               "rows 0-200 are in no intact part"),
    "unreadable parts index": (lambda run: (run / "embed" / "parts" / "index.json").write_text('{"fing'), ALL_PARTS,
                               "no readable index.json"),
    "truncated corpus output": (lambda run: truncate(run / "corpus" / "texts.parquet"), [],
                                "stage corpus was finished but its outputs are damaged"),
}


@pytest.mark.parametrize("case", DAMAGE)
def test_damaged_finished_run_is_repaired_on_rerun(case, copy_of_reference, reference, verdict, monkeypatch, caplog):
    damage, expected, warning = DAMAGE[case]
    damage(copy_of_reference)
    embedded = fit(job_config(copy_of_reference), monkeypatch)
    verdict.same_result(copy_of_reference, reference)
    verdict.nothing_lost(embedded.ranges, expected)
    assert warning in caplog.text


def test_chunk_rows_changed_between_kill_and_rerun(copy_of_reference, reference, verdict, monkeypatch):
    """The state a job killed after 2 of its 4 parts leaves; the rerun splits the rest into chunks of 30."""
    run = copy_of_reference
    for name in ("result.json", "assignments.parquet", "clusters.parquet", "config.yaml", "embed/manifest.json"):
        (run / name).unlink()
    for name in ("cluster", "evaluate"):
        shutil.rmtree(run / name)
    index = json.loads((run / "embed" / "parts" / "index.json").read_text())
    for name in ("part-00002.parquet", "part-00003.parquet"):
        del index["parts"][name]
        (run / "embed" / "parts" / name).unlink()
    (run / "embed" / "parts" / "index.json").write_text(json.dumps(index))

    embedded = fit(job_config(run, "embedding.chunk_rows=30"), monkeypatch)
    verdict.same_result(run, reference)
    verdict.nothing_lost(embedded.ranges, [(100, 130), (130, 160), (160, 190), (190, 200)])
    manifest = json.loads((run / "embed" / "manifest.json").read_text())
    assert manifest["rows"] == 200 and manifest["parts"] == 6


def test_published_file_changed_after_the_run_is_refused_then_republished(copy_of_reference, reference, verdict,
                                                                         monkeypatch):
    shutil.copy(copy_of_reference / "corpus" / "texts.parquet", copy_of_reference / "clusters.parquet")
    with pytest.raises(FileNotFoundError) as refused:
        read_run(str(copy_of_reference))
    verdict.clear_error(refused.value, "clusters.parquet is missing or not the file", "Rerun the job")
    embedded = fit(job_config(copy_of_reference), monkeypatch)
    verdict.same_result(copy_of_reference, reference)
    verdict.nothing_lost(embedded.ranges, [])
