"""Checks a job makes before Ray starts: everything knowable without reading the data.

The corpus path exists and holds files of one format; the text and id columns are in the
header of its first file, and so is the ground-truth column when evaluation is asked for;
every model the method loads resolves to local weights (:func:`llmclust.models.resolve_model`).
Only headers are read (for JSONL, the first file's rows). A problem is a :class:`PreflightError`
with one line naming the key to change; the jobs print it and exit with status 2.

Example::

    from llmclust.methods.job import load_job_config
    cfg = load_job_config("ray_configs/local.yaml", ["corpus.path=missing.csv"])
    preflight(cfg)   # PreflightError: corpus path 'missing.csv' does not exist; set corpus.path ...
"""

from __future__ import annotations

from pathlib import Path

from llmclust.methods import clusterer_class
from llmclust.models import ModelNotFound, resolve_model
from llmclust.pipeline.corpus_files import CorpusError, file_columns, shard_files


class PreflightError(ValueError):
    """A job cannot start: the message names the problem and the key to change."""


def _first_file_columns(path: str, fmt: str, encoding: str) -> tuple[Path, list[str]]:
    try:
        files, fmt, _ = shard_files(Path(path), fmt)
        return files[0], file_columns(files[0], fmt, encoding)
    except CorpusError as err:
        raise PreflightError(str(err)) from None


def check_corpus(cfg) -> None:
    """corpus.path readable, its text / id columns and (when evaluating) the label column present."""
    corpus, ev = cfg.corpus, cfg.evaluation
    if not corpus.path:
        raise PreflightError("corpus.path is empty; set it to a .parquet, .jsonl or .csv file or a folder of them")
    file, columns = _first_file_columns(corpus.path, corpus.format, corpus.encoding)
    for key in ("text_column", "id_column"):
        name = getattr(corpus, key)
        if name and name not in columns:
            raise PreflightError(f"corpus.{key}={name!r} is not a column of {file}; its columns are {columns}")
    if ev.label_column:
        if ev.labels_path:
            file, columns = _first_file_columns(ev.labels_path, "auto", corpus.encoding)
        if ev.label_column not in columns:
            raise PreflightError(f"evaluation.label_column={ev.label_column!r} is not a column of {file}; its "
                                 f"columns are {columns}. Name the column of true labels, or set it to '' "
                                 "to skip evaluation")


def check_models(cfg) -> None:
    """The embedder, and for LLM methods the LLM (unless served over HTTP) and its adapter, are on this machine."""
    uses_llm = clusterer_class(cfg.method).uses_llm
    models = [("embedding.model", cfg.embedding.model)]
    if uses_llm and cfg.llm.backend != "openai":
        models.append(("llm.model", cfg.llm.model))
    for key, name in models:
        try:
            resolve_model(name)
        except ModelNotFound as err:
            raise PreflightError(f"{key}: {err}") from None
    if uses_llm and cfg.llm.adapter and not Path(cfg.llm.adapter).exists():
        raise PreflightError(f"llm.adapter={cfg.llm.adapter!r} does not exist; set a LoRA adapter folder or ''")


def preflight(cfg) -> None:
    """Raise :class:`PreflightError` for the first problem a job would otherwise meet after Ray started."""
    check_corpus(cfg)
    check_models(cfg)
