import json

import pyarrow as pa

from llmclust.runs import RunDir


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
    try:
        run.read_result()
    except FileNotFoundError as err:
        assert "not a finished run" in str(err)
    run.write_result(k=3)
    assert run.read_result() == {"k": 3}
    assert json.loads((tmp_path / "result.json").read_text()) == {"k": 3}
