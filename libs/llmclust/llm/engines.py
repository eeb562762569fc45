"""Long-lived LLM engine actors, shared by every LLM stage of a job.

Loading an engine is the expensive part of an LLM stage (seconds for SmolLM2 on a CPU,
minutes for a 7B model on vLLM). A stage used to build a new Ray Data pipeline, so a new set
of engines, for every call and for its retry pass: 4-8 loads per co-training iteration.
Here ``llm.num_actors`` actors, each holding one engine, serve a stage's first pass and its
retry pass, and every later stage run inside ``with keep_engines():`` (the whole of
:meth:`TextClusterer.fit`) as long as it asks for the same engine (backend, model, adapter,
device, batch size). In between they stay loaded, idle, until a stage needs the CPUs or GPUs
they hold: every stage that starts actors or GPU tasks asks :func:`llmclust.ray_session.make_room`
first, which releases them when the cluster has not enough free (on one GPU an embed actor pool
or Ray Train does; an embed stage in the driver, ``embedding.num_actors: 0``, does not). Outside ``keep_engines`` a stage
releases them at its end. Asking for another engine (the next iteration's adapter) releases the
old ones first, so two sets never hold a GPU.
Batches are spread over the actors as they free up and come back as they finish, so the stage
sees progress batch by batch.

Example::

    with keep_engines():
        start_engines(cfg)  # seconds until one engine is loaded (0.0 when kept from an earlier stage)
        for indices, answers, errors in generate_on_engines(chats_by_index, SamplingParams(), cfg):
            ...
    engine_stats()      # {'engines_started': 1, 'batches': 3}
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from typing import Iterator

from llmclust.config import fingerprint
from llmclust.llm.backends import make_backend
from llmclust.llm.base import Chat, LLMBackend, SamplingParams
from llmclust.llm.config import LLMConfig
from llmclust.ray_session import on_shortage, require_resources
from llmclust.store.runs import TRANSIENT

log = logging.getLogger(__name__)


def generate_tolerant(backend: LLMBackend, chats: list[Chat], params: SamplingParams) -> tuple[list[list[str]], list[str]]:
    """Answers and an error message per chat ("" if fine): one bad prompt never fails the batch."""
    try:
        return backend.generate(chats, params), [""] * len(chats)
    except Exception:  # noqa: BLE001 - isolate the bad row below
        answers, errors = [], []
        for chat in chats:
            try:
                answers.append(backend.generate([chat], params)[0])
                errors.append("")
            except Exception as err:  # noqa: BLE001 - reported in the manifest
                answers.append([""] * params.n)
                errors.append(f"{type(err).__name__}: {err}"[:500])
        return answers, errors


class EngineWorker:
    """The body of one engine actor: loads the backend once, answers batches."""

    def __init__(self, cfg: LLMConfig):
        self.backend = make_backend(cfg)

    def ready(self) -> bool:
        return True

    def generate(self, indices: list[int], chats: list[Chat], params: SamplingParams) -> tuple[list[int], list, list]:
        answers, errors = generate_tolerant(self.backend, chats, params)
        return indices, answers, errors


class _Engines:
    """The job's one set of engine actors and the config they were started for."""

    def __init__(self):
        self.key, self.actors, self.kept = None, [], 0
        self.stats = {"engines_started": 0, "batches": 0}

    def for_config(self, cfg: LLMConfig) -> list:
        import ray

        # another Ray session (ray.shutdown, ray.init) has none of the old actors
        key = (fingerprint(cfg), ray.get_runtime_context().get_job_id())
        if key != self.key:
            self.release()
            require_resources("the LLM engines", {"CPU": cfg.cpus_per_actor, "GPU": cfg.gpus_per_actor}, cfg.num_actors,
                              "llm.num_actors, llm.cpus_per_actor or llm.gpus_per_actor")
            options = {"num_cpus": cfg.cpus_per_actor, "num_gpus": cfg.gpus_per_actor or None}
            self.actors = [ray.remote(EngineWorker).options(**options).remote(cfg) for _ in range(cfg.num_actors)]
            self.key = key
            self.stats["engines_started"] += cfg.num_actors
            log.info("llm: started %d engine actor(s) for %s", cfg.num_actors, cfg.model, extra=TRANSIENT)
        return self.actors

    def start(self, cfg: LLMConfig) -> float:
        """Seconds until one of the engines for ``cfg`` is loaded: 0 when they are kept from an earlier stage."""
        import ray

        t0, before = time.time(), self.stats["engines_started"]
        actors = self.for_config(cfg)
        if self.stats["engines_started"] == before:
            return 0.0
        ray.wait([actor.ready.remote() for actor in actors], num_returns=1, timeout=None)
        return round(time.time() - t0, 2)

    def release(self) -> None:
        import ray

        if ray.is_initialized():
            for actor in self.actors:
                ray.kill(actor)
        self.key, self.actors = None, []


_ENGINES = _Engines()
on_shortage(_ENGINES.release)


def start_engines(cfg: LLMConfig) -> float:
    """Start the engines for ``cfg`` unless they are running; the seconds until one is ready
    (a stage's start-up: 0 for engines kept from an earlier stage)."""
    return _ENGINES.start(cfg)


def generate_on_engines(chats: dict[int, Chat], params: SamplingParams, cfg: LLMConfig) -> Iterator[tuple[list[int], list, list]]:
    """(indices, answers, errors) per batch of ``cfg.batch_size`` chats, in the order they finish."""
    from ray.util import ActorPool

    items = list(chats.items())
    batches = [items[s:s + cfg.batch_size] for s in range(0, len(items), cfg.batch_size)]
    pool = ActorPool(_ENGINES.for_config(cfg))
    submit = lambda actor, batch: actor.generate.remote([i for i, _ in batch], [c for _, c in batch], params)  # noqa: E731
    for result in pool.map_unordered(submit, batches):
        _ENGINES.stats["batches"] += 1
        yield result


def engine_stats() -> dict:
    return dict(_ENGINES.stats)


@contextmanager
def keep_engines():
    """Keep the engines loaded across the stages run inside (until :func:`llmclust.ray_session.make_room`
    needs their share); release them at the end."""
    _ENGINES.kept += 1
    try:
        yield
    finally:
        _ENGINES.kept -= 1
        stage_done()


def stage_done() -> None:
    """Called by each LLM stage at its end: free the engines unless ``keep_engines`` holds them."""
    if not _ENGINES.kept:
        _ENGINES.release()
