"""Bad inputs: a clear error naming the input and the option, before any embedding, nothing half-written.

Each case builds its input from the small Banking77 subset and runs the suite's job on it.
After the error the run directory holds no published file and no embedding, and a finished
run that was already there is left exactly as it was.
"""

import json

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from harness import SMALL_CSV, InProcessEmbedder, differences, fit, job_config

PUBLISHED = ("result.json", "assignments.parquet", "clusters.parquet", "config.yaml")


def small() -> pa.Table:
    return pacsv.read_csv(SMALL_CSV)


def latin1_csv(tmp):
    lines = SMALL_CSV.read_text().splitlines()
    lines[4] = "Je n'ai pas reçu ma carte,card_arrival"
    (tmp / "latin.csv").write_bytes("\n".join(lines).encode("latin-1"))
    return [f"corpus.path={tmp / 'latin.csv'}"]


def broken_jsonl(tmp):
    lines = [json.dumps(row) for row in small().to_pylist()]
    lines[6] = lines[6][:-1]  # line 7 loses its closing brace
    (tmp / "c.jsonl").write_text("\n".join(lines))
    return [f"corpus.path={tmp / 'c.jsonl'}"]


def repeated_ids(tmp):
    table = small().append_column("key", pa.array([f"k{i}" for i in range(200)]))
    keys = table.column("key").to_pylist()
    keys[10] = keys[3]
    pq.write_table(table.set_column(2, "key", pa.array(keys)), tmp / "c.parquet")
    return [f"corpus.path={tmp / 'c.parquet'}", "corpus.id_column=key"]


def numbers_as_texts(tmp):
    pq.write_table(pa.table({"text": list(range(200)), "category": ["a"] * 200}), tmp / "c.parquet")
    return [f"corpus.path={tmp / 'c.parquet'}"]


def blank_texts(tmp):
    (tmp / "blank.csv").write_text("text,category\n" + "  ,a\n" * 200)
    return [f"corpus.path={tmp / 'blank.csv'}"]


def header_only(tmp):
    (tmp / "empty.csv").write_text("text,category\n")
    return [f"corpus.path={tmp / 'empty.csv'}"]


def truncated_parquet(tmp):
    pq.write_table(small(), tmp / "c.parquet")
    data = (tmp / "c.parquet").read_bytes()
    (tmp / "c.parquet").write_bytes(data[: len(data) // 2])
    return [f"corpus.path={tmp / 'c.parquet'}"]


# case -> (input builder, what the error must say)
BAD_INPUTS = {
    "latin-1 text read as utf-8": (latin1_csv, ["latin.csv line 5", "not valid utf-8", "corpus.encoding"]),
    "jsonl line not JSON": (broken_jsonl, ["c.jsonl line 7: not valid JSON"]),
    "repeated ids": (repeated_ids, ["id 'k3' is on input rows [3, 10]", "corpus.id_column"]),
    "K above the row count": (lambda tmp: ["clustering.n_clusters=500"],
                              ["clustering.n_clusters=500", "only 200 texts"]),
    "missing ground-truth column": (lambda tmp: ["evaluation.label_column=intent"],
                                    ["'intent' not found", "evaluation.label_column"]),
    "missing corpus file": (lambda tmp: [f"corpus.path={tmp / 'none.csv'}"],
                            ["none.csv", "does not exist", "corpus.path"]),
    "missing text column": (lambda tmp: ["corpus.text_column=body"], ["['body'] not found", "corpus.text_column"]),
    "texts are numbers": (numbers_as_texts, ["type int64, expected strings", "corpus.text_column"]),
    "every text blank": (blank_texts, ["all 200 rows were rejected"]),
    "header only": (header_only, ["empty.csv", "has no rows"]),
    "truncated parquet corpus": (truncated_parquet, ["could not read", "c.parquet as parquet"]),
}


def run_bad(build, run_dir, tmp_path, monkeypatch):
    """(the error the job raised or None, the embedder that would have run)."""
    embedder = InProcessEmbedder()
    try:
        fit(job_config(run_dir, *build(tmp_path)), monkeypatch, embedder)
    except Exception as err:  # the case judges whatever was raised
        return err, embedder
    return None, embedder


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_is_a_clear_error_before_embedding(case, tmp_path, verdict, monkeypatch):
    build, fragments = BAD_INPUTS[case]
    run_dir = tmp_path / "run"
    raised, embedder = run_bad(build, run_dir, tmp_path, monkeypatch)
    verdict.clear_error(raised, *fragments)
    assert embedder.ranges == [] and not (run_dir / "embed").exists(), "failed after embedding"
    assert not [name for name in PUBLISHED if (run_dir / name).exists()], "half-written outputs"


@pytest.mark.parametrize("case", ["missing corpus file", "K above the row count"])
def test_bad_input_over_a_finished_run_leaves_it_as_it_was(case, copy_of_reference, reference, tmp_path, verdict,
                                                          monkeypatch):
    before = {name: (copy_of_reference / name).read_bytes() for name in PUBLISHED}
    build, fragments = BAD_INPUTS[case]
    raised, _ = run_bad(build, copy_of_reference, tmp_path, monkeypatch)
    verdict.clear_error(raised, *fragments)
    assert {name: (copy_of_reference / name).read_bytes() for name in PUBLISHED} == before  # config.yaml too
    assert differences(copy_of_reference, reference) == []


def test_skipped_shards_of_another_format_are_reported_and_warned(tmp_path, verdict, monkeypatch, caplog):
    shards = tmp_path / "shards"
    shards.mkdir()
    table = small()
    pacsv.write_csv(table.slice(0, 100), shards / "a.csv")
    (shards / "b.jsonl").write_text("\n".join(json.dumps(row) for row in table.slice(100).to_pylist()))
    run_dir = tmp_path / "run"
    fit(job_config(run_dir, f"corpus.path={shards}", "corpus.format=csv"), monkeypatch)
    report = json.loads((run_dir / "corpus" / "manifest.json").read_text())["report"]
    warned = "1 file(s) under" in caplog.text and "b.jsonl" in caplog.text
    verdict.record("silently_wrong", not warned or report["skipped_files"] != [str(shards / "b.jsonl")])
    assert report["rows_read"] == 100 and report["files_skipped"] == 1
    assert report["skipped_files"] == [str(shards / "b.jsonl")] and warned
