import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from llmclust import schema
from llmclust.methods.job import load_job_config
from llmclust.pipeline.corpus import (
    CorpusConfig,
    CorpusError,
    check_job_inputs,
    load_corpus,
)


def write_jsonl(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows))
    return path


def test_reads_csv_without_reading_other_columns(small_csv):
    result = load_corpus(CorpusConfig(path=str(small_csv)))
    assert result.table.column_names == [schema.ROW, schema.ID, schema.TEXT]
    assert result.table.num_rows == 200
    assert result.report["kept"] == 200
    assert result.table.column(schema.ROW).to_pylist() == list(range(200))


def test_reads_parquet_and_jsonl_folders_of_shards(tmp_path):
    shards = tmp_path / "pq"
    shards.mkdir()
    pq.write_table(pa.table({"body": ["a b", "c d"], "key": [10, 11]}), shards / "part-0.parquet")
    pq.write_table(pa.table({"body": ["e f"], "key": [12]}), shards / "part-1.parquet")
    result = load_corpus(CorpusConfig(path=str(shards), text_column="body", id_column="key"))
    assert result.table.column(schema.ID).to_pylist() == ["10", "11", "12"]
    jsonl = write_jsonl(tmp_path / "c.jsonl", [{"text": "x y"}, {"text": "z"}])
    assert load_corpus(CorpusConfig(path=str(jsonl))).table.column(schema.TEXT).to_pylist() == ["x y", "z"]


def test_missing_file_column_type_and_empty_corpus(tmp_path, small_csv):
    with pytest.raises(CorpusError, match="does not exist"):
        load_corpus(CorpusConfig(path=str(tmp_path / "none.csv")))
    with pytest.raises(CorpusError, match=r"column\(s\) \['utterance'\] not found; the file has columns \['text', 'category'\]"):
        load_corpus(CorpusConfig(path=str(small_csv), text_column="utterance"))
    pq.write_table(pa.table({"text": [1, 2]}), tmp_path / "ints.parquet")
    with pytest.raises(CorpusError, match="type int64, expected strings"):
        load_corpus(CorpusConfig(path=str(tmp_path / "ints.parquet")))
    pq.write_table(pa.table({"text": pa.array([], pa.string())}), tmp_path / "empty.parquet")
    with pytest.raises(CorpusError, match="no rows"):
        load_corpus(CorpusConfig(path=str(tmp_path / "empty.parquet")))
    (tmp_path / "mixed").mkdir()
    (tmp_path / "mixed" / "a.csv").write_text("text\nx\n")
    write_jsonl(tmp_path / "mixed" / "b.jsonl", [{"text": "y"}])
    with pytest.raises(CorpusError, match=r"found formats \['csv', 'jsonl'\]"):
        load_corpus(CorpusConfig(path=str(tmp_path / "mixed")))


def test_policies_are_counted_and_rejected_rows_kept(tmp_path):
    rows = [{"text": "card lost"}, {"text": "   "}, {"text": None}, {"text": "card lost"}, {"text": "x" * 50}]
    path = write_jsonl(tmp_path / "c.jsonl", rows)
    result = load_corpus(CorpusConfig(path=str(path), max_chars=10, duplicates="drop", long_texts="drop"))
    assert result.table.column(schema.TEXT).to_pylist() == ["card lost"]
    assert result.report == {"rows_read": 5, "kept": 1, "rejected_empty": 2, "rejected_duplicate": 1,
                             "rejected_long": 1, "truncated_long": 0, "duplicates_kept": 0,
                             "files_read": 1, "files_skipped": 0, "skipped_files": []}
    reasons = dict(zip(result.rejected.column(schema.ID).to_pylist(), result.rejected.column(schema.REASON).to_pylist()))
    assert reasons == {"1": "empty", "2": "empty", "3": "duplicate", "4": "longer than 10 chars"}

    kept = load_corpus(CorpusConfig(path=str(path), max_chars=10))
    assert kept.table.column(schema.TEXT).to_pylist() == ["card lost", "card lost", "x" * 10]
    assert kept.report["truncated_long"] == 1 and kept.report["duplicates_kept"] == 1
    with pytest.raises(CorpusError, match="empty or whitespace-only"):
        load_corpus(CorpusConfig(path=str(path), empty_texts="error"))


def test_repeated_ids_are_rejected_with_the_first_one_and_its_rows(tmp_path):
    rows = [{"text": "a", "id": 1}, {"text": "b", "id": 2}, {"text": "c", "id": 1}, {"text": "d", "id": 2}]
    path = write_jsonl(tmp_path / "c.jsonl", rows)
    with pytest.raises(CorpusError, match=r"id '1' is on input rows \[0, 2\] .*and 1 more ids repeat"):
        load_corpus(CorpusConfig(path=str(path), id_column="id"))


def test_skipped_files_of_another_format_are_counted_listed_and_warned(tmp_path, caplog):
    (tmp_path / "a.csv").write_text("text\nx\ny\n")
    write_jsonl(tmp_path / "b.jsonl", [{"text": "z"}])
    result = load_corpus(CorpusConfig(path=str(tmp_path), format="csv"))
    assert result.report["rows_read"] == 2
    assert result.report["files_skipped"] == 1 and result.report["skipped_files"] == [str(tmp_path / "b.jsonl")]
    assert "1 file(s) under" in caplog.text and "b.jsonl" in caplog.text


def test_text_in_another_encoding_is_an_error_naming_file_line_and_option(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("text\nhello\ncaf\xe9 au lait\n".encode("latin-1"))
    with pytest.raises(CorpusError, match=r"latin.csv line 3: byte 0xe9 is not valid utf-8 text; set corpus.encoding"):
        load_corpus(CorpusConfig(path=str(path)))
    latin = load_corpus(CorpusConfig(path=str(path), encoding="latin-1"))
    assert latin.table.column(schema.TEXT)[1].as_py() == "café au lait"
    jsonl = tmp_path / "latin.jsonl"
    jsonl.write_bytes('{"text": "a"}\n{"text": "caf\xe9"}\n'.encode("latin-1"))  # pyarrow alone would read "caf\ufffd"
    with pytest.raises(CorpusError, match="latin.jsonl line 2: byte 0xe9"):
        load_corpus(CorpusConfig(path=str(jsonl)))
    assert load_corpus(CorpusConfig(path=str(jsonl), encoding="cp1252")).table.column(schema.TEXT)[1].as_py() == "café"
    with pytest.raises(ValueError, match="encoding='klingon': expected a text encoding"):
        CorpusConfig(encoding="klingon")


@pytest.mark.parametrize("body, message", [
    ('{"text": "a"}\n\n{"text": "b",}\n', r"line 3: not valid JSON"),
    ('{"text": "a"}\n{"text": "b"}\n{"text": 5}\n', r"line 3: 'text' is a number here but a string on line 1"),
    ('{"text": "a"}\n["b"]\n', r"line 2: expected a JSON object per line"),
])
def test_jsonl_errors_name_the_line_counted_from_one(tmp_path, body, message):
    (tmp_path / "c.jsonl").write_text(body)
    with pytest.raises(CorpusError, match=message):
        load_corpus(CorpusConfig(path=str(tmp_path / "c.jsonl")))


def test_job_inputs_are_checked_against_the_corpus_before_embedding(small_csv):
    table = load_corpus(CorpusConfig(path=str(small_csv))).table

    def job(*overrides):
        return load_job_config(None, [f"corpus.path={small_csv}", *overrides])

    check_job_inputs(job("clustering.n_clusters=10", "evaluation.label_column=category"), table)
    with pytest.raises(CorpusError, match=r"clustering.n_clusters=300 but the corpus has only 200 texts"):
        check_job_inputs(job("clustering.n_clusters=300"), table)
    check_job_inputs(job("clustering.n_clusters=300"), table, fixed_k=False)  # the method chooses K
    check_job_inputs(job("clustering.n_clusters=auto"), table)  # k_max 0: half the texts
    with pytest.raises(CorpusError, match=r"n_clusters=auto with k_max=250 but the corpus has only 200 texts.*"
                                          r"set clustering.k_max below 200"):
        check_job_inputs(job("clustering.n_clusters=auto", "clustering.k_max=250"), table)
    with pytest.raises(CorpusError, match=r"auto needs more than reduce.n_neighbors=15 texts to estimate K, but the "
                                          r"corpus has 12 after cleaning; set clustering.n_clusters to a number"):
        check_job_inputs(job("clustering.n_clusters=auto"), table.slice(0, 12))
    with pytest.raises(CorpusError, match=r"ground-truth column 'intent' not found; the file has columns "
                                          r"\['text', 'category'\]. Set evaluation.label_column"):
        check_job_inputs(job("evaluation.label_column=intent"), table)
