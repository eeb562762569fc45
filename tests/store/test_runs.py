import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from llmclust import schema
from llmclust.pipeline.embedding import stored_vectors
from llmclust.store.parts import PartStore
from llmclust.store.runs import DamagedOutput, RunDir, RunIncomplete, Stage


def rows(start, stop, **extra):
    return pa.table({schema.ROW: pa.array(range(start, stop), pa.int64()), **extra})


def test_stage_is_done_only_for_the_same_fingerprint(tmp_path):
    run = RunDir(tmp_path)
    stage = run.stage("embed", {"model": "a"})
    assert not stage.done
    (stage.path / "out.json").write_text("{}")
    manifest = stage.finish(rows=3, note="x")
    assert manifest["rows"] == 3 and manifest["outputs"] == ["out.json"]
    assert run.stage("embed", {"model": "a"}).done
    changed = run.stage("embed", {"model": "b"})
    assert not changed.done and not (changed.path / "out.json").exists()  # stale outputs removed


def test_parts_survive_a_restart_with_the_same_fingerprint(tmp_path):
    run = RunDir(tmp_path)
    PartStore(run.stage("embed", 1)).write(0, 2, rows(0, 2, x=[1, 2]))
    again = PartStore(run.stage("embed", 1))  # a resumed job, stage not finished
    assert again.missing(5, size=2) == [(2, 4), (4, 5)]
    assert again.intact(5) == {0: 2}
    assert len(PartStore(run.stage("embed", 2))) == 0  # other config: parts discarded


def test_parts_of_another_chunk_size_are_reused_and_only_gaps_computed(tmp_path):
    parts = PartStore(RunDir(tmp_path).stage("embed", 1))
    for start, stop in [(0, 3), (3, 6), (9, 12)]:  # chunk 3; a killed run and a lost part
        parts.write(start, stop, rows(start, stop))
    assert parts.missing(14, size=2) == [(6, 8), (8, 9), (12, 14)]
    with pytest.raises(DamagedOutput, match=r"rows 6-9, 12-14 are in no intact part"):
        parts.read(14)
    with pytest.raises(DamagedOutput, match="do not hold rows 0-14 exactly once"):
        parts.check_cover(14)
    for start, stop in parts.missing(14, size=5):
        parts.write(start, stop, rows(start, stop))
    parts.check_cover(14)
    assert parts.read(14).column(schema.ROW).to_pylist() == list(range(14))
    with pytest.raises(ValueError, match="holds other rows"):
        parts.write(14, 16, rows(0, 2))


DAMAGE = {
    "truncated": lambda f, other: f.write_bytes(f.read_bytes()[:50]),
    "other rows": lambda f, other: f.write_bytes(other.read_bytes()),
    "deleted": lambda f, other: f.unlink(),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_part_is_dropped_with_a_warning_and_its_rows_recomputed(tmp_path, caplog, damage):
    parts = PartStore(RunDir(tmp_path).stage("embed", 1))
    parts.write(0, 2, rows(0, 2, x=[0, 1]))
    parts.write(2, 4, rows(2, 4, x=[2, 3]))
    DAMAGE[damage](parts.path / "part-00001.parquet", parts.path / "part-00000.parquet")
    assert sorted(parts.intact(4)) == [0]
    assert "dropped 1 damaged part(s)" in caplog.text and "part-00001.parquet (rows 2-4)" in caplog.text
    assert parts.missing(4) == [(2, 4)]


def test_unindexed_files_and_a_lost_index_are_not_trusted(tmp_path, caplog):
    stage = RunDir(tmp_path).stage("embed", 1)
    parts = PartStore(stage)
    parts.write(0, 2, rows(0, 2))
    pq.write_table(rows(2, 4), parts.path / "part-00007.parquet")  # killed before it was indexed
    assert len(PartStore(stage)) == 1 and not (parts.path / "part-00007.parquet").exists()
    (parts.path / "index.json").write_text("{trunc")
    assert len(PartStore(stage)) == 0 and "no readable index.json" in caplog.text


def test_a_finished_stage_with_damaged_outputs_is_recomputed(tmp_path, caplog):
    run = RunDir(tmp_path)
    stage = run.stage("s", 1)
    calls = []

    def compute():
        calls.append(1)
        return [1, 2]

    def write(stage, value):
        pq.write_table(pa.table({"x": value}), stage.file("out.parquet"))
        return {"rows": len(value)}

    def read(stage):
        return pq.read_table(stage.file("out.parquet")).column("x").to_pylist()

    assert stage.run(compute, write, read) == [1, 2] and run.stage("s", 1).run(compute, write, read) == [1, 2]
    assert len(calls) == 1
    stage.file("out.parquet").write_bytes(b"PAR1 truncated")
    assert run.stage("s", 1).run(compute, write, read) == [1, 2]
    assert len(calls) == 2 and "stage s was finished but its outputs are damaged" in caplog.text


def test_publish_moves_files_in_and_result_json_checks_them(tmp_path):
    run = RunDir(tmp_path)
    with pytest.raises(RunIncomplete, match="not a finished run"):
        run.read_result()
    staged = run.staging()
    (staged / "a.txt").write_text("A")
    run.publish(staged, k=3)
    result = run.read_result()
    assert result["k"] == 3 and set(result["files"]) == {"a.txt"}
    assert json.loads((tmp_path / "result.json").read_text()) == result and not staged.exists()
    (tmp_path / "a.txt").write_text("B")  # e.g. a later job killed while moving its files in
    with pytest.raises(RunIncomplete, match=r"a.txt is missing or not the file .*result.json describes"):
        run.read_result()


def test_finished_stage_vectors_read_back_from_its_folder(tmp_path):
    run = RunDir(tmp_path)
    stage = run.stage("embed", 1)
    vectors = np.arange(12, dtype=np.float32).reshape(4, 3)
    parts = PartStore(stage)
    for start, stop in ((0, 3), (3, 4)):
        parts.write(start, stop, rows(start, stop, **{schema.EMBEDDING: schema.to_fixed_list(vectors[start:stop])}))
    with pytest.raises(FileNotFoundError, match="no finished stage"):
        stored_vectors(stage.path)
    stage.finish(4)
    assert Stage.finished(stage.path).fingerprint == stage.fingerprint
    np.testing.assert_array_equal(stored_vectors(stage.path), vectors)
