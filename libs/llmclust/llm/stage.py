"""The LLM stage: chats -> answers, sharded over Ray actors, cached, checkpointed, parsed.

``generate_stage(run, name, chats, params, cfg, upstream, parse=None)`` returns a
:class:`GenerationResult`:

* ``answers[i]``: the ``params.n`` raw answers of ``chats[i]`` (after a retry, if one was needed);
* ``parsed[i]``: ``parse(answer)`` for each of them, ``None`` where it still failed
  (the raw answers themselves when no ``parse`` is given);
* ``failures``: answers still unparseable after their retry (also in the stage manifest, with
  the rate); ``calls``: prompts sent to the backend by this invocation (0 on a rerun);
  ``seconds``: time spent generating; ``manifest`` and ``stage``: the checkpointed stage.
``result.texts`` / ``result.values`` give the first answer / parsed value of each chat.

How it runs. Every chat is looked up in the response cache (key: model id, sampling
parameters, chat; :mod:`llmclust.llm.cache` hashes them in one pass and reads the stage's
keys in one query); only misses are generated, by the job's ``cfg.num_actors`` long-lived
engine actors (:mod:`llmclust.llm.engines`: loaded once and shared by every stage and retry
pass that asks for the same engine; ``num_actors=0``: in this process). Before any miss is
sent, the job's call budget ``llm.max_calls`` is charged (:mod:`llmclust.llm.budget`): a
stage that would exceed it stops with an error and sends nothing.
Answers enter the cache batch by batch, so a killed stage resumes where it stopped and a
rerun makes no call. With ``parse``, an unparseable answer is asked again once (seed + 1,
temperature ``cfg.retry_temperature`` whatever the sample's own: hotter than greedy, cooler than
a hot sample) and, if still unparseable, counted, never dropped.
A batch that raises is retried row by row; a row that still raises gets empty answers, its
error in the ``error`` column of ``answers.parquet``, and is not cached. A stage with such
rows is finished (the job goes on) but not reused: a rerun asks the backend again for those
rows only (the others come from the cache). When more than ``llm.max_failed_fraction`` of
the rows fail (a dead engine), the stage raises instead of finishing. ``answers.parquet`` in the stage folder holds every
answer (and with ``save_prompts`` the prompt, as a list of role/content messages, and the first attempt
of retried rows).

Example::

    result = generate_stage(run, "labels", chats, SamplingParams(max_tokens=12), LLMConfig(),
                            upstream=neighbours_stage, parse=parse_label)
    result.values[:3], result.failures, result.manifest["parse_failure_rate"]
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from llmclust import schema
from llmclust.llm.backends import make_backend
from llmclust.llm.base import Chat, LLMBackend, SamplingParams
from llmclust.llm.budget import CallLedger
from llmclust.llm.cache import KeyMaker, ResponseCache
from llmclust.llm.config import LLMConfig, model_id
from llmclust.llm.engines import generate_on_engines, generate_tolerant, stage_done, start_engines
from llmclust.store.runs import Progress, RunDir, Stage, write_table

log = logging.getLogger(__name__)

ANSWERS_FILE = "answers.parquet"
MAX_ERRORS_REPORTED = 5


@dataclass
class GenerationResult:
    answers: list[list[str]]
    parsed: list[list[Any]]
    failures: int
    calls: int
    seconds: float
    manifest: dict = field(default_factory=dict)
    stage: Stage | None = None  # the checkpointed stage: chain the next stage on its fingerprint

    @property
    def texts(self) -> list[str]:
        return [a[0] if a else "" for a in self.answers]

    @property
    def values(self) -> list[Any]:
        return [p[0] if p else None for p in self.parsed]


def _batches_in_process(chats: dict[int, Chat], params: SamplingParams, cfg: LLMConfig,
                        backend: LLMBackend) -> Iterator[tuple[list[int], list, list]]:
    indices = list(chats)
    for start in range(0, len(indices), cfg.batch_size):
        batch = indices[start : start + cfg.batch_size]
        answers, errors = generate_tolerant(backend, [chats[i] for i in batch], params)
        yield batch, answers, errors


class _Generator:
    """Cache lookups, generation of the misses, bookkeeping of calls, time and errors."""

    def __init__(self, run: RunDir, name: str, cfg: LLMConfig, backend: LLMBackend | None):
        self.name, self.cfg, self.backend = name, cfg, backend
        self.model_id = backend.model_id if backend is not None else model_id(cfg)
        self.cache = ResponseCache(cfg.cache_dir or run.path / "llm_cache") if cfg.cache else None
        self.ledger = CallLedger(run, cfg.max_calls)
        self.calls, self.cache_hits, self.seconds = 0, 0, 0.0
        self.startup_s: float | None = None  # engines started and the model loaded: 0 for engines kept running
        self.errors: dict[int, str] = {}  # row -> backend error of its latest attempt

    def keys(self, chats: list[Chat], params: SamplingParams) -> tuple[np.ndarray, np.ndarray]:
        return KeyMaker(self.model_id, params).keys(chats)

    def answer(self, chats: list[Chat], rows: list[int], keyed: tuple[np.ndarray, np.ndarray],
               params: SamplingParams) -> dict[int, list[str]]:
        """Answers of ``chats[i]`` for each i in ``rows``; ``keyed``: the keys and sizes of those rows."""
        keys, sizes = keyed
        found = self.cache.get(keys) if self.cache is not None else {}
        out = {rows[j]: a for j, a in found.items()}
        self.cache_hits += len(out)
        todo = np.setdiff1d(np.arange(len(rows)), np.fromiter(found, np.int64, len(found)))
        todo = todo[np.argsort(-sizes[todo], kind="stable")].tolist()  # longest first: batches pad less
        if not todo:
            return out
        log.info("llm %s: %d prompts, %d cached, %d to generate", self.name, len(rows), len(out), len(todo))
        self.ledger.charge(self.name, len(todo))
        missing = {rows[j]: chats[rows[j]] for j in todo}
        key_of = {rows[j]: keys[j] for j in todo}
        progress, t0 = Progress(f"llm {self.name}", len(missing)), time.time()
        if self.backend is None and self.cfg.num_actors > 0:
            startup = start_engines(self.cfg)
            batches = generate_on_engines(missing, params, self.cfg)
        else:
            self.backend = self.backend or make_backend(self.cfg)
            startup = time.time() - t0
            batches = _batches_in_process(missing, params, self.cfg, self.backend)
        if self.startup_s is None:
            self.startup_s = round(startup, 2)
        for indices, answers, errors in batches:
            fresh = []
            for i, a, e in zip(indices, answers, errors):
                out[i] = a
                if e:
                    self.errors[i] = e
                else:
                    self.errors.pop(i, None)
                    fresh.append(i)
            if self.cache is not None and fresh:
                self.cache.put(np.stack([key_of[i] for i in fresh]), [out[i] for i in fresh])
            self.calls += len(indices)
            progress.update(len(indices))
        if self.cache is not None:
            self.cache.flush()
        self.seconds += time.time() - t0
        return out


def _chats_column(chats: list[Chat]) -> pa.ListArray:
    """The chats as list<struct<role, content>>, built from flat columns (no per-chat JSON)."""
    offsets = pa.array(np.cumsum([0] + [len(c) for c in chats]), pa.int32())
    messages = pa.StructArray.from_arrays([pa.array([m["role"] for c in chats for m in c], pa.string()),
                                           pa.array([m["content"] for c in chats for m in c], pa.string())],
                                          names=["role", "content"])
    return pa.ListArray.from_arrays(offsets, messages)


def _parse_all(answers: list[list[str]], parse: Callable[[str], Any] | None) -> list[list[Any]]:
    return [[parse(a) for a in row] for row in answers] if parse else answers


def _stage_fingerprint(keys: np.ndarray, params: SamplingParams, cfg: LLMConfig, parse) -> list:
    """What the answers depend on; the chats enter through their cache keys (hashed once)."""
    identity = {"model": model_id(cfg), "retry_temperature": cfg.retry_temperature}
    if parse:  # stages finished while a retry was never cooler than its sample are redone (from the cache)
        identity["retry"] = "sampled at retry_temperature"
    parser = f"{parse.__module__}.{parse.__qualname__}" if parse else None
    return [identity, params, hashlib.sha256(keys.tobytes()).hexdigest(), parser]


def generate_stage(run: RunDir, name: str, chats: list[Chat], params: SamplingParams, cfg: LLMConfig,
                   upstream: Stage, parse: Callable[[str], Any] | None = None,
                   backend: LLMBackend | None = None) -> GenerationResult:
    """Answer ``chats`` as checkpointed stage ``name`` (see the module docstring).

    ``backend``: an already loaded backend to run in this process (tests, benchmarks);
    by default the backend of ``cfg`` runs in a Ray actor pool.
    """
    gen = _Generator(run, name, cfg, backend)
    keyed = gen.keys(chats, params)
    stage = run.stage(name, *_stage_fingerprint(keyed[0], params, cfg, parse), upstream.fingerprint)
    if stage.done and stage.file(ANSWERS_FILE).exists() and not stage.manifest.get("errors"):
        answers = [list(a) for a in pq.read_table(stage.file(ANSWERS_FILE)).column(schema.RESPONSE).to_pylist()]
        parsed = _parse_all(answers, parse)
        manifest = stage.manifest
        return GenerationResult(answers, parsed, manifest.get("parse_failures", 0), 0, 0.0, manifest, stage)

    try:
        first = gen.answer(chats, list(range(len(chats))), keyed, params)
        answers = [first[i] for i in range(len(chats))]
        parsed = _parse_all(answers, parse)
        failed = [i for i, row in enumerate(parsed) if any(v is None for v in row)] if parse else []
        if failed:
            # at retry_temperature even below a hot sample's own: SmolLM2's interpretations at 1.5 fail 78 % of the
            # time; asked again at 1.5, 20 % of those parse, at 0.7 87 % (benchmarks/interpretations_smollm2.py)
            retry = replace(params, seed=params.seed + 1, temperature=cfg.retry_temperature)
            second = gen.answer(chats, failed, gen.keys([chats[i] for i in failed], retry), retry)
            for i in failed:
                answers[i] = [a2 if v is None else a for a, a2, v in zip(answers[i], second[i], parsed[i])]
                parsed[i] = [parse(a) for a in answers[i]]
    finally:
        stage_done()  # outside a fit's keep_engines, the engines' CPUs/GPUs go back now
    failures = sum(v is None for row in parsed for v in row) if parse else 0
    total = sum(len(row) for row in answers)
    if len(gen.errors) > cfg.max_failed_fraction * len(chats):
        first = next(iter(gen.errors.values()))
        raise RuntimeError(
            f"llm {name}: {len(gen.errors)} of {len(chats)} prompts failed in the backend (first: {first}); "
            f"more than llm.max_failed_fraction={cfg.max_failed_fraction}, so the engine looks broken and the "
            "stage is not finished. Fix the backend and rerun: the answers that did come back are cached.")

    retried = np.zeros(len(chats), bool)
    retried[failed] = True
    columns = {schema.ROW: pa.array(np.arange(len(chats)), pa.int64()), schema.RESPONSE: pa.array(answers),
               schema.RETRIED: pa.array(retried),
               schema.ERROR: pa.array([gen.errors.get(i, "") for i in range(len(chats))], pa.string())}
    if cfg.save_prompts:
        columns[schema.PROMPT] = _chats_column(chats)
        columns[schema.FIRST_RESPONSE] = pa.array([first[i] for i in range(len(chats))])
    write_table(stage.file(ANSWERS_FILE), pa.table(columns))
    manifest = stage.finish(
        len(chats), model=gen.model_id, calls=gen.calls, cache_hits=gen.cache_hits, llm_seconds=round(gen.seconds, 3),
        startup_s=gen.startup_s,
        retried=len(failed), parse_failures=failures, parse_failure_rate=round(failures / max(total, 1), 4),
        errors=len(gen.errors), first_errors=list(gen.errors.values())[:MAX_ERRORS_REPORTED],
    )
    if failures:
        log.warning("llm %s: %d of %d answers unparseable after one retry (%.1f%%); they are listed in %s",
                    name, failures, total, 100 * failures / max(total, 1), stage.file(ANSWERS_FILE))
    if gen.errors:
        log.warning("llm %s: %d prompts failed in the backend (first: %s); they are marked in %s and a rerun "
                    "retries only them", name, len(gen.errors), next(iter(gen.errors.values())), stage.file(ANSWERS_FILE))
    return GenerationResult(answers, parsed, failures, gen.calls, gen.seconds, manifest, stage)
