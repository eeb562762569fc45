import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from llmclust import schema
from llmclust.corpus import CorpusConfig, CorpusError, load_corpus


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
                             "rejected_long": 1, "truncated_long": 0, "duplicates_kept": 0}
    reasons = dict(zip(result.rejected.column(schema.ID).to_pylist(), result.rejected.column(schema.REASON).to_pylist()))
    assert reasons == {"1": "empty", "2": "empty", "3": "duplicate", "4": "longer than 10 chars"}

    kept = load_corpus(CorpusConfig(path=str(path), max_chars=10))
    assert kept.table.column(schema.TEXT).to_pylist() == ["card lost", "card lost", "x" * 10]
    assert kept.report["truncated_long"] == 1 and kept.report["duplicates_kept"] == 1
    with pytest.raises(CorpusError, match="empty or whitespace-only"):
        load_corpus(CorpusConfig(path=str(path), empty_texts="error"))


def test_repeated_ids_are_rejected(tmp_path):
    path = write_jsonl(tmp_path / "c.jsonl", [{"text": "a", "id": 1}, {"text": "b", "id": 1}])
    with pytest.raises(CorpusError, match="repeated ids"):
        load_corpus(CorpusConfig(path=str(path), id_column="id"))
