"""LUMI's stages: pseudo-labels from an LLM, multi-label refinement, pooling (METHODS.md §1).

texts + embeddings e + neighbours
  -> lumi_labels       one label l_i per text (LLM, shown ``label_context_k`` neighbours)
  -> lumi_label_embed  E(l) for each distinct label
  -> lumi_candidates   neighbours under z_i = mean(e_i, E(l_i)), collecting distinct labels
  -> lumi_multilabel   which candidate labels fit (LLM): S_i = {l_i} + chosen
  -> lumi_pool         h (label-level pooling) and r (Jaccard text-level pooling) + pseudo-labels

Every stage is checkpointed in the run directory; the LLM stages use the response cache.
A label the LLM never gave in a parseable form (after its retry) falls back to the most
common label among the text's neighbours (or to the text's first words), and is counted.

Example::

    result = run_lumi(run, job_cfg, table, vectors, embed_stage)
    result.pooled.shape, result.pseudo_labels[:3], result.report["label_fallbacks"]
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from llmclust import pipeline, schema
from llmclust.config import expect
from llmclust.llm import SamplingParams, generate_stage
from llmclust.llm.parsers import parse_choices, parse_label
from llmclust.llm.prompts import context_block, numbered, render
from llmclust.pooling import incidence, label_level_pool, pseudo_label_view, text_level_pool
from llmclust.runs import RunDir, Stage, write_json, write_table

log = logging.getLogger(__name__)

LABEL_POOLED = "label_pooled"  # h: column of lumi_pool/vectors.parquet
TEXT_POOLED = "text_pooled"  # r


@dataclass
class LumiConfig:
    task: str = "intent: banking customer purpose"  # "<task>: <standard>", picks the prompt templates
    label_context_k: int = 10  # neighbours shown to the LLM when labelling (0: the text alone)
    context_chars: int = 100  # characters of each neighbour shown
    label_max_tokens: int = 12
    candidate_labels: int = 10  # distinct neighbour labels offered in the multi-label step
    candidate_search: int = 50  # neighbours searched (in the pooled space) to collect them
    choice_max_tokens: int = 10
    text_pooling: bool = True  # False: cluster the label-level pooled vectors h (ablation)
    text_pool_top_m: int = 200  # partners per text in text-level pooling (0: all, as the paper)
    label_posting_cap: int = 2000  # texts per label used as partners (0: all)
    llm_names: bool = False  # also ask the LLM for a cluster name from its members' labels
    seed: int = 0

    def __post_init__(self):
        expect(":" in self.task, "task", self.task, "'<task>: <standard>', e.g. 'intent: banking customer purpose'")
        expect(self.label_context_k >= 0, "label_context_k", self.label_context_k, "0 or more neighbours")
        expect(self.context_chars > 0, "context_chars", self.context_chars, "a positive number of characters")
        expect(self.label_max_tokens > 0, "label_max_tokens", self.label_max_tokens, "a positive integer")
        expect(self.candidate_labels > 0, "candidate_labels", self.candidate_labels, "a positive integer")
        expect(self.candidate_search >= self.candidate_labels, "candidate_search", self.candidate_search,
               f"at least candidate_labels={self.candidate_labels}")
        expect(self.choice_max_tokens > 0, "choice_max_tokens", self.choice_max_tokens, "a positive integer")
        expect(self.text_pool_top_m >= 0, "text_pool_top_m", self.text_pool_top_m, "0 (all) or a positive integer")
        expect(self.label_posting_cap >= 0, "label_posting_cap", self.label_posting_cap, "0 (all) or a positive integer")


@dataclass
class LumiResult:
    pooled: np.ndarray  # what KMeans runs on: r, or h when text_pooling is off
    label_pooled: np.ndarray  # h
    text_pooled: np.ndarray  # r
    pseudo_labels: list[list[str]]  # S_i, the initial label first
    stage: Stage  # lumi_pool
    report: dict


def _fallback_label(i: int, parsed: list, neighbours: np.ndarray, text: str) -> str:
    votes = Counter(parsed[j] for j in neighbours[i] if parsed[j])
    return votes.most_common(1)[0][0] if votes else " ".join(text.lower().split()[:4])


def initial_labels(run: RunDir, cfg, texts: list[str], neighbours: np.ndarray, upstream: Stage):
    """Step 1: one label per text; returns (labels, generation result, fallback count)."""
    lumi = cfg.lumi
    chats = [render("lumi_label", lumi.task, text=t,
                    context=context_block([texts[j] for j in neighbours[i, : lumi.label_context_k]], lumi.context_chars))
             for i, t in enumerate(texts)]
    result = generate_stage(run, "lumi_labels", chats, SamplingParams(max_tokens=lumi.label_max_tokens, seed=lumi.seed),
                            cfg.llm, upstream, parse=parse_label)
    parsed = result.values
    labels = [p or _fallback_label(i, parsed, neighbours, texts[i]) for i, p in enumerate(parsed)]
    return labels, result, sum(p is None for p in parsed)


def candidate_labels(label_index: np.ndarray, neighbours: np.ndarray, count: int) -> list[list[int]]:
    """Distinct label ids of each text's neighbours, nearest first, at most ``count``."""
    out = []
    for row in label_index[neighbours]:
        seen = list(dict.fromkeys(row.tolist()))
        out.append(seen[:count])
    return out


def chosen_labels(answer: str, parsed: list[int] | None, candidates: list[str]) -> tuple[list[int], int]:
    """Candidate positions picked by an answer: its numbers, plus candidates it quotes verbatim.

    SmolLM2 often answers '1. card not working' meaning the label, not the number. Returns the
    positions and how many numbers were out of range.
    """
    picked = {n - 1 for n in (parsed or []) if 1 <= n <= len(candidates)}
    out_of_range = sum(1 for n in (parsed or []) if n > len(candidates))
    lowered = answer.lower()
    picked |= {k for k, c in enumerate(candidates) if len(c) > 3 and c in lowered}
    return sorted(picked), out_of_range


def multi_labels(run: RunDir, cfg, texts: list[str], names: list[str], label_index: np.ndarray,
                 cand_neighbours: np.ndarray, upstream: Stage):
    """Step 3: S_i = {l_i} + the candidate labels the LLM says fit; returns (sets, result, report)."""
    lumi = cfg.lumi
    candidates = candidate_labels(label_index, cand_neighbours, lumi.candidate_labels)
    chats = [render("lumi_multilabel", lumi.task, text=t, labels=numbered([names[c] for c in candidates[i]]))
             for i, t in enumerate(texts)]
    result = generate_stage(run, "lumi_multilabel", chats, SamplingParams(max_tokens=lumi.choice_max_tokens, seed=lumi.seed),
                            cfg.llm, upstream, parse=parse_choices)
    sets, out_of_range = [], 0
    for i, (answer, parsed) in enumerate(zip(result.texts, result.values)):
        picked, bad = chosen_labels(answer, parsed, [names[c] for c in candidates[i]])
        out_of_range += bad
        sets.append(list(dict.fromkeys([int(label_index[i])] + [candidates[i][k] for k in picked])))
    sizes = np.array([len(s) for s in sets])
    report = {"labels_per_text_mean": round(float(sizes.mean()), 3), "texts_with_extra_labels": int((sizes > 1).sum()),
              "choices_out_of_range": out_of_range, "multilabel_parse_failures": result.failures}
    return sets, result, report


def run_lumi(run: RunDir, cfg, table: pa.Table, vectors: np.ndarray, embed: Stage) -> LumiResult:
    """Steps 1-5 of LUMI on the embedded corpus; checkpointed, resumable."""
    lumi = cfg.lumi
    texts = table.column(schema.TEXT).to_pylist()
    neighbours, _, nstage = pipeline.neighbours_stage(run, cfg, vectors, embed)
    labels, label_result, fallbacks = initial_labels(run, cfg, texts, neighbours, nstage)

    names = sorted(set(labels))
    lookup = {name: i for i, name in enumerate(names)}
    label_index = np.array([lookup[l] for l in labels], np.int64)
    label_table = pa.table({schema.ROW: pa.array(np.arange(len(names)), pa.int64()), schema.TEXT: names})
    label_vectors, lstage = pipeline.embed_stage(run, cfg, label_table, label_result.stage, name="lumi_label_embed")
    z = pseudo_label_view(vectors, label_vectors, label_index)
    search = replace(cfg, neighbours=replace(cfg.neighbours, k=min(lumi.candidate_search, len(texts) - 1)))
    cand, _, cstage = pipeline.neighbours_stage(run, search, z, lstage, name="lumi_candidates")
    sets, multi_result, multi_report = multi_labels(run, cfg, texts, names, label_index, cand, cstage)

    stage = run.stage("lumi_pool", lumi, multi_result.stage.fingerprint)
    if not stage.done:
        S = incidence(sets, len(names))
        h = label_level_pool(vectors, label_vectors, S)
        r, pool_report = text_level_pool(h, S, lumi.text_pool_top_m, lumi.label_posting_cap, lumi.seed)
        write_table(stage.file("vectors.parquet"), pa.table({
            schema.ROW: table.column(schema.ROW), LABEL_POOLED: schema.to_fixed_list(h), TEXT_POOLED: schema.to_fixed_list(r)}))
        write_table(stage.file("pseudo_labels.parquet"), pa.table({
            schema.ROW: table.column(schema.ROW), schema.TEXT: texts,
            schema.PSEUDO_LABEL: labels, schema.PSEUDO_LABELS: [[names[l] for l in s] for s in sets]}))
        report = {"distinct_labels": len(names), "label_fallbacks": fallbacks,
                  "label_parse_failure_rate": label_result.manifest.get("parse_failure_rate"),
                  "multilabel_parse_failure_rate": multi_result.manifest.get("parse_failure_rate"),
                  **multi_report, **pool_report}
        write_json(stage.file("report.json"), report)
        stage.finish(len(texts), **report)
    vec = pq.read_table(stage.file("vectors.parquet"))
    h, r = (schema.from_fixed_list(vec.column(c)) for c in (LABEL_POOLED, TEXT_POOLED))
    pseudo = pq.read_table(stage.file("pseudo_labels.parquet")).column(schema.PSEUDO_LABELS).to_pylist()
    report = {k: v for k, v in stage.manifest.items() if k not in ("outputs",)}
    log.info("lumi: %d distinct labels, %s labels per text, %d fallbacks", report["distinct_labels"],
             report["labels_per_text_mean"], report["label_fallbacks"])
    return LumiResult(r if lumi.text_pooling else h, h, r, pseudo, stage, report)


def label_names(pseudo_labels: list[list[str]], clusters: np.ndarray, k: int, top: int = 2) -> list[str]:
    """Each cluster's name: its members' most common pseudo-labels ('card arrival / lost card')."""
    counts = _label_counts(pseudo_labels, clusters, k)
    return [" / ".join(l for l, _ in cnt.most_common(top)) or f"cluster {c}" for c, cnt in enumerate(counts)]


def llm_names(run: RunDir, cfg, pseudo_labels: list[list[str]], clusters: np.ndarray, k: int, upstream: Stage) -> list[str]:
    """A short LLM summary of each cluster's top labels; the label name where it gives none."""
    fallback = label_names(pseudo_labels, clusters, k)
    top = [[l for l, _ in cnt.most_common(8)] for cnt in _label_counts(pseudo_labels, clusters, k)]
    chats = [render("cluster_name", cfg.lumi.task, labels=numbered(t)) for t in top]
    result = generate_stage(run, "lumi_names", chats, SamplingParams(max_tokens=cfg.lumi.label_max_tokens),
                            cfg.llm, upstream, parse=parse_label)
    return [v or f for v, f in zip(result.values, fallback)]


def _label_counts(pseudo_labels, clusters, k) -> list[Counter]:
    counts = [Counter() for _ in range(k)]
    for labels, c in zip(pseudo_labels, clusters):
        counts[c].update(labels)
    return counts
