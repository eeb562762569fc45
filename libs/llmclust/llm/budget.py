"""What a job will ask the LLM, said before it asks, and a hard cap on what it may send.

Each LLM method declares its LLM stages up front: :func:`plan` turns the job config and the
corpus into one :class:`StagePlan` per stage (prompts to send, the upper bound with the one
retry of unparseable answers, estimated prompt and generated tokens). The method's
``representation()`` calls :func:`announce` first: the plan is logged, written to
``RUN/llm_plan.json``, and checked against ``llm.max_calls`` (0 = unlimited), so a job whose
plan does not fit stops before any LLM work. While it runs, :class:`CallLedger` charges every
prompt actually sent to the backend (cache hits are free) to ``RUN/llm_calls.json``, over all
invocations of the run, and refuses a stage whose misses would take the total past the cap.

Token figures are estimates: prompt tokens ~ characters / 4 + 4 per message, rendered from
the real templates and a sample of the corpus' texts; generated tokens are the upper bound
``calls x max_tokens``.

Example::

    cfg = load_job_config("ray_configs/lumi_local.yaml")
    [(s.stage, s.calls) for s in plan(cfg, texts)]
    # 3080 texts: [('lumi_labels', 3080), ('llm_labels_audit', 1024), ('lumi_multilabel', 3080)]
    announce(RunDir("runs/x"), cfg, texts)           # logs, writes runs/x/llm_plan.json, checks llm.max_calls
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass

import numpy as np

from llmclust.runs import RunDir, write_json

log = logging.getLogger(__name__)

PLAN_FILE = "llm_plan.json"
LEDGER_FILE = "llm_calls.json"
SAMPLE_TEXTS = 64  # texts rendered to estimate prompt lengths
LABEL_CHARS = 24  # a typical LUMI label ("card arrival delay") when estimating multi-label prompts


class BudgetExceeded(RuntimeError):
    """The job would send more prompts than ``llm.max_calls`` allows."""


@dataclass
class StagePlan:
    stage: str
    calls: int  # prompts of the first pass
    calls_with_retries: int  # upper bound: every unparseable answer asked once more
    prompt_tokens: int  # estimated, first pass
    generated_tokens: int  # upper bound, first pass: calls x max_tokens


def _stage(name: str, calls: int, sample_chats: list, max_tokens: int, retried: bool = True) -> StagePlan:
    per_prompt = np.mean([sum(len(m["content"]) / 4 + 4 for m in c) for c in sample_chats]) if sample_chats else 0
    return StagePlan(name, int(calls), int(calls) * (2 if retried else 1), int(round(calls * per_prompt)),
                     int(calls) * max_tokens)


def _sample(texts: list[str]) -> list[str]:
    picks = np.random.default_rng(0).choice(len(texts), size=min(SAMPLE_TEXTS, len(texts)), replace=False)
    return [texts[i] for i in picks] or [""]


def audit_plan(cfg, name: str, texts: list[str], task: str, candidates: int) -> list[StagePlan]:
    """The audit's closed questions: ``audit.sample`` of ``candidates`` texts, each description
    (its own and a neighbour's) asked yes / no in two orders: 4 prompts a text, one token scored."""
    from llmclust.llm.prompts import render

    if not cfg.audit.enabled:
        return []
    chats = [render("description_fit", task, text=t, candidate="x" * LABEL_CHARS) for t in _sample(texts)]
    return [_stage(f"llm_{name}", 4 * min(cfg.audit.sample, candidates), chats, 1, retried=False)]


def lumi_plan(cfg, texts: list[str]) -> list[StagePlan]:
    """Two prompts per labelled text (label, then multi-label choice), the audit of the labels,
    plus naming when asked."""
    from llmclust.llm.prompts import context_block, numbered, render
    from llmclust.methods.lumi.stages import labelled_count

    lumi, sample = cfg.lumi, _sample(texts)
    asked = labelled_count(lumi, len(texts))
    label = [render("lumi_label", lumi.task, text=t, context=context_block(sample[: lumi.label_context_k], lumi.context_chars))
             for t in sample]
    labels = numbered(["x" * LABEL_CHARS] * lumi.candidate_labels)
    multi = [render("lumi_multilabel", lumi.task, text=t, labels=labels) for t in sample]
    stages = [_stage("lumi_labels", asked, label, lumi.label_max_tokens),
              *audit_plan(cfg, "labels_audit", texts, lumi.task, asked),
              _stage("lumi_multilabel", asked, multi, lumi.choice_max_tokens)]
    if lumi.llm_names:
        names = [render("cluster_name", lumi.task, labels=numbered(["x" * LABEL_CHARS] * 8))]
        stages.append(_stage("lumi_names", cfg.clustering.n_clusters, names, lumi.label_max_tokens))
    return stages


def clusterllm_plan(cfg, texts: list[str]) -> list[StagePlan]:
    """The triplet budget per iteration, plus the merge pairs when K is chosen: every question in
    both orders (``same_pair`` triplets: two pairs each), one answer token scored, no retries."""
    from llmclust.methods.clusterllm.judges import pair_chat
    from llmclust.methods.clusterllm.questions import triplet_views

    cl, sample = cfg.clusterllm, _sample(texts)
    triplets = [c for t in sample for c in triplet_views(cl.triplet_question, cl.task, t, t, t)[0].chats]
    per_triplet = 2 * len(triplet_views(cl.triplet_question, cl.task, "", "", "")[0].chats)
    stages = [_stage(f"llm_judge_iter{it}", per_triplet * cl.triplets.budget, triplets, 1, retried=False)
              for it in range(1, cl.iterations + 1)]
    if cl.choose_k:
        g = cl.granularity
        pairs = [pair_chat(cl.task, t, t, g.demonstrations) for t in sample]
        merges = min(g.k_max, len(texts)) - g.k_min
        stages.append(_stage("llm_granularity", 2 * max(merges, 0) * g.pairs_per_merge, pairs, 1, retried=False))
    return stages


def cotrain_plan(cfg, texts: list[str]) -> list[StagePlan]:
    """Per iteration, one greedy and M sampled interpretations per text (the last only greedy),
    and the audit of iteration 0's interpretations."""
    from llmclust.methods.cotrain.interpretations import interpretation_chats

    ct = cfg.cotrain
    chats = interpretation_chats(_sample(texts), ct.task)
    stages = []
    for t in range(ct.iterations + 1):
        names = ["greedy"] + ([f"sample{m + 1}" for m in range(len(ct.temperatures))] if t < ct.iterations else [])
        stages += [_stage(f"iter{t}_{name}", len(texts), chats, ct.max_tokens) for name in names]
        if t == 0:
            stages += audit_plan(cfg, "interpretations_audit", texts, ct.task, len(texts))
    return stages


PLANS = {"lumi": lumi_plan, "clusterllm": clusterllm_plan, "cotrain": cotrain_plan}


def plan(cfg, texts: list[str]) -> list[StagePlan]:
    """The LLM stages of ``cfg.method`` on ``texts`` (none for the baseline)."""
    return PLANS[cfg.method](cfg, texts) if cfg.method in PLANS else []


def announce(run: RunDir, cfg, texts: list[str]) -> list[StagePlan]:
    """Log the plan, write it to RUN/llm_plan.json, and stop if it cannot fit ``llm.max_calls``."""
    stages = plan(cfg, texts)
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
