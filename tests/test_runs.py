import json

import numpy as np
import pyarrow as pa
import pytest

from llmclust import schema
from llmclust.embedding import stored_vectors
from llmclust.runs import RunDir, Stage


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
    parts = run.stage("embed", 1).parts()
    parts.write(0, pa.table({"x": [1, 2]}))
    again = run.stage("embed", 1).parts()  # a resumed job, stage not finished
    assert again.has(0) and not again.has(1)
    assert again.read_all(1).column("x").to_pylist() == [1, 2]
    assert not run.stage("embed", 2).parts().has(0)  # other config: parts discarded


def test_result_round_trip_and_clear_error(tmp_path):
    run = RunDir(tmp_path)
    with pytest.raises(FileNotFoundError, match="not a finished run"):
        run.read_result()
    run.write_result(k=3)
    assert run.read_result() == {"k": 3}
    assert json.loads((tmp_path / "result.json").read_text()) == {"k": 3}


def test_finished_stage_vectors_read_back_from_its_folder(tmp_path):
    run = RunDir(tmp_path)
    stage = run.stage("embed", 1)
    vectors = np.arange(12, dtype=np.float32).reshape(4, 3)
    parts = stage.parts()
    for i, rows in enumerate((slice(0, 3), slice(3, 4))):
        parts.write(i, pa.table({schema.EMBEDDING: schema.to_fixed_list(vectors[rows])}))
    with pytest.raises(FileNotFoundError, match="no finished stage"):
        stored_vectors(stage.path)
    stage.finish(4)
    assert Stage.finished(stage.path).fingerprint == stage.fingerprint
    np.testing.assert_array_equal(stored_vectors(stage.path), vectors)
