"""What a job will ask the LLM, said before it asks, and a hard cap on what it may send.

Each LLM method declares its LLM stages up front: its ``llm_plan(texts)``
(:meth:`llmclust.methods.base.TextClusterer.llm_plan`) turns the job config and the corpus
into one :class:`StagePlan` per stage (prompts to send, the upper bound with the one retry of
unparseable answers, estimated prompt and generated tokens), built with :func:`stage_plan`
and :func:`audit_plan`. The method's ``representation()`` calls :func:`announce` first: the
plan is logged, written to
``RUN/llm_plan.json``, and checked against ``llm.max_calls`` (0 = unlimited), so a job whose
plan does not fit stops before any LLM work. While it runs, :class:`CallLedger` charges every
prompt actually sent to the backend (cache hits are free) to ``RUN/llm_calls.json``, over all
invocations of the run, and refuses a stage whose misses would take the total past the cap.

Token figures are estimates: prompt tokens ~ characters / 4 + 4 per message, rendered from
the real templates and a sample of the corpus' texts; generated tokens are the upper bound
``calls x max_tokens``.

Example::

    model = make_clusterer(load_job_config("ray_configs/lumi_local.yaml"))
    [(s.stage, s.calls) for s in model.llm_plan(texts)]
    # 3080 texts: [('lumi_labels', 3080), ('llm_labels_audit', 1024), ('lumi_multilabel', 3080)]
    announce(RunDir("runs/x"), model.config, texts, model.llm_plan(texts))   # logs, writes llm_plan.json, checks the cap
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass

import numpy as np

from llmclust.llm.prompts import AUDIT_PROMPTS
from llmclust.store.runs import RunDir, write_json

log = logging.getLogger(__name__)

PLAN_FILE = "llm_plan.json"
LEDGER_FILE = "llm_calls.json"
SAMPLE_TEXTS = 64  # texts rendered to estimate prompt lengths
LABEL_CHARS = 24  # a typical short label ("card arrival delay") when estimating prompts that list labels


class BudgetExceeded(RuntimeError):
    """The job would send more prompts than ``llm.max_calls`` allows."""


@dataclass
class StagePlan:
    stage: str
    calls: int  # prompts of the first pass
    calls_with_retries: int  # upper bound: every unparseable answer asked once more
    prompt_tokens: int  # estimated, first pass
    generated_tokens: int  # upper bound, first pass: calls x max_tokens


def stage_plan(name: str, calls: int, sample_chats: list, max_tokens: int, retried: bool = True) -> StagePlan:
    """The plan of one stage: ``calls`` prompts like ``sample_chats``, at most ``max_tokens`` answered each."""
    per_prompt = np.mean([sum(len(m["content"]) / 4 + 4 for m in c) for c in sample_chats]) if sample_chats else 0
    return StagePlan(name, int(calls), int(calls) * (2 if retried else 1), int(round(calls * per_prompt)),
                     int(calls) * max_tokens)


def sample_texts(texts: list[str]) -> list[str]:
    """A seeded sample of the corpus to render prompts from (lengths are estimated on it)."""
    picks = np.random.default_rng(0).choice(len(texts), size=min(SAMPLE_TEXTS, len(texts)), replace=False)
    return [texts[i] for i in picks] or [""]


def audit_plan(cfg, name: str, texts: list[str], task: str, candidates: int) -> list[StagePlan]:
    """The audit's closed questions: ``audit.sample`` of ``candidates`` texts, each description
    (its own and a neighbour's) asked yes / no in two orders: 4 prompts a text, one token scored."""
    if not cfg.audit.enabled:
        return []
    chats = [AUDIT_PROMPTS.render("description_fit", task, text=t, candidate="x" * LABEL_CHARS)
             for t in sample_texts(texts)]
    return [stage_plan(f"llm_{name}", 4 * min(cfg.audit.sample, candidates), chats, 1, retried=False)]


def announce(run: RunDir, cfg, texts: list[str], stages: list[StagePlan]) -> list[StagePlan]:
    """Log the method's plan (``stages``, from :meth:`TextClusterer.llm_plan`), write it to
    RUN/llm_plan.json, and stop if it cannot fit ``llm.max_calls``."""
    total = {"calls": sum(s.calls for s in stages), "calls_with_retries": sum(s.calls_with_retries for s in stages),
             "prompt_tokens": sum(s.prompt_tokens for s in stages),
             "generated_tokens": sum(s.generated_tokens for s in stages)}
    write_json(run.path / PLAN_FILE, {"method": cfg.method, "model": cfg.llm.model, "texts": len(texts),
                                      "max_calls": cfg.llm.max_calls, "total": total,
                                      "stages": [asdict(s) for s in stages]})
    lines = [f"  {s.stage}: {s.calls} calls (<= {s.calls_with_retries} with retries), ~{s.prompt_tokens} prompt "
             f"tokens, <= {s.generated_tokens} generated" for s in stages]
    log.info("LLM plan for %s on %d texts (%s):\n%s\n  total: %s", cfg.method, len(texts), run.path / PLAN_FILE,
             "\n".join(lines), total)
    if cfg.llm.max_calls and total["calls"] > cfg.llm.max_calls:
        raise BudgetExceeded(
            f"the {cfg.method} plan needs {total['calls']} LLM calls (without retries) but llm.max_calls="
            f"{cfg.llm.max_calls}; see {run.path / PLAN_FILE}. Raise llm.max_calls (0 = unlimited) or shrink the "
            "work (fewer texts, a smaller triplet budget, fewer iterations or temperatures).")
    return stages


class CallLedger:
    """Prompts sent to the backend over the run's life (RUN/llm_calls.json), capped by ``max_calls``."""

    def __init__(self, run: RunDir, max_calls: int):
        self.file, self.max_calls = run.path / LEDGER_FILE, max_calls

    def spent(self) -> dict:
        return json.loads(self.file.read_text()) if self.file.exists() else {"calls": 0, "by_stage": {}}

    def charge(self, stage: str, calls: int) -> None:
        """Record ``calls`` prompts about to be sent by ``stage``; refuse them past the cap."""
        ledger = self.spent()
        if self.max_calls and ledger["calls"] + calls > self.max_calls:
            raise BudgetExceeded(
                f"llm {stage}: {calls} prompts to send, but this run has sent {ledger['calls']} of llm.max_calls="
                f"{self.max_calls} ({self.file}); nothing was sent. Raise llm.max_calls (0 = unlimited) and rerun: "
                "finished stages and cached answers are not asked again.")
        ledger["calls"] += calls
        ledger["by_stage"][stage] = ledger["by_stage"].get(stage, 0) + calls
        write_json(self.file, ledger)
