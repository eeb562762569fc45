"""LUMI's stages: pseudo-labels from an LLM, multi-label refinement, pooling (METHODS.md §1).

texts + embeddings e + neighbours
  -> lumi_sample       above ``llm_sample`` texts: the representatives the LLM is asked about
  -> lumi_labels       one label l_i per text (LLM, shown ``label_context_k`` neighbours)
  -> lumi_label_embed  E(l) for each distinct label
  -> llm_labels_audit  the labels put back to the LLM as closed questions (:mod:`llmclust.llm.audit`):
                       the weight w of the labels; at w = 0 LUMI stops here and returns the
                       embedder's vectors (no multi-label calls, no pooling)
  -> lumi_candidates   neighbours under z_i = mean(e_i, E(l_i)), collecting distinct labels
  -> lumi_multilabel   which candidate labels fit (LLM): S_i = {l_i} + chosen
  -> lumi_pool         h (label-level pooling) and r (Jaccard text-level pooling) + pseudo-labels;
                       KMeans runs on normalise((1 - w) e + w r) (w = 1: the paper's r)

With ``llm_sample`` (default 20 000) a larger corpus costs no more LLM calls: the texts nearest
to ``llm_sample`` fine KMeans centres are labelled and multi-labelled, and every other text
takes the label set of its own centre's representative (its nearest labelled neighbour in
the embedding, in effect). ``lumi_pool``'s manifest reports the coverage: texts asked, texts
that copied, and their cosine to the centre they copied from.

Every stage is checkpointed in the run directory; the LLM stages use the response cache.
A label the LLM never gave in a parseable form (after its retry) falls back to the most
common label among the text's neighbours (or to the text's first words), and is counted.

Example::

    result = run_lumi(run, job_cfg, table, vectors, embed_stage)
    result.text_pooled.shape, result.pseudo_labels[:3], result.report["label_fallbacks"]
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from llmclust import schema
from llmclust.llm import SamplingParams, generate_stage
from llmclust.llm.audit import AuditResult, description_audit
from llmclust.llm.parsers import parse_choices, parse_label
from llmclust.llm.prompts import context_block, numbered
from llmclust.methods.lumi import columns
from llmclust.methods.lumi.pooling import (
    incidence,
    label_level_pool,
    normalize,
    pseudo_label_view,
    text_level_pool,
)
from llmclust.methods.lumi.prompts import LUMI_PROMPTS
from llmclust.pipeline.clustering import members_by_cluster
from llmclust.pipeline.embedding import embed_stage
from llmclust.pipeline.neighbours import neighbours_stage
from llmclust.store.runs import RunDir, Stage, write_json, write_table

log = logging.getLogger(__name__)

POOL_STAGE = "lumi_pool"
PSEUDO_LABELS_FILE = "pseudo_labels.parquet"  # ROW, TEXT, PSEUDO_LABEL, PSEUDO_LABELS (every label kept)


@dataclass
class LumiResult:
    label_pooled: np.ndarray  # h
    text_pooled: np.ndarray  # r
    pseudo_labels: list[list[str]]  # S_i, the initial label first
    report: dict
    stage: Stage | None = None  # lumi_pool (lumi_label_embed when the audit stopped LUMI)
    audit: AuditResult | None = None
    text_vectors: np.ndarray | None = None  # e

    @property
    def weight(self) -> float:
        return 1.0 if self.audit is None else self.audit.weight

    def pooled(self, text_pooling: bool) -> np.ndarray:
        """What KMeans runs on: r (h when text pooling is off, the ablation), mixed with the
        text's own vector e as the audit's weight says; e itself at weight 0."""
        pooled = self.text_pooled if text_pooling else self.label_pooled
        if self.weight >= 1 or self.text_vectors is None:
            return pooled
        return normalize((1 - self.weight) * self.text_vectors + self.weight * pooled)


def labelled_count(lumi, n: int) -> int:
    """Texts the LLM is asked about: every one, or ``lumi.llm_sample`` representatives above that."""
    return n if not lumi.llm_sample or n <= lumi.llm_sample else lumi.llm_sample


def _fallback_label(i: int, parsed: list, neighbours: np.ndarray, text: str) -> str:
    votes = Counter(parsed[j] for j in neighbours[i] if parsed[j])
    return votes.most_common(1)[0][0] if votes else " ".join(text.lower().split()[:4])


@dataclass
class Sample:
    """The texts the LLM is asked about, and where every text takes its labels from."""

    rows: np.ndarray  # (m,) row numbers of the asked texts, ascending
    source: np.ndarray  # (n,) position in ``rows`` of the text each row copies (itself when asked)
    cosine: np.ndarray  # (n,) cosine of each text to the fine centre it copies from


def representatives(vectors: np.ndarray, count: int, neighbours_cfg, seed: int = 0) -> Sample:
    """The text nearest to each of ``count`` fine KMeans centres; every text copies its own
    centre's (centres no text is nearest to are dropped, so there may be fewer)."""
    from llmclust.optional import import_faiss
    from llmclust.pipeline.neighbours import knn

    faiss = import_faiss()
    # a few points per centre and iterations: the centres only need to spread over the corpus
    km = faiss.Kmeans(vectors.shape[1], count, niter=10, seed=seed, spherical=True, max_points_per_centroid=8)
    km.train(np.ascontiguousarray(vectors, dtype=np.float32))
    centre, cosine = knn(km.centroids, replace(neighbours_cfg, k=1), queries=vectors)
    centre, cosine = centre[:, 0], cosine[:, 0]
    rows = np.sort([m[0] for m in members_by_cluster(centre, count, cosine) if len(m)])  # the nearest text a centre
    position = np.full(count, -1)
    position[centre[rows]] = np.arange(len(rows))
    return Sample(rows, position[centre], cosine)


def sample_stage(run: RunDir, cfg, vectors: np.ndarray, upstream: Stage) -> tuple[Sample, Stage]:
    stage = run.stage("lumi_sample", cfg.lumi.llm_sample, cfg.lumi.seed, cfg.neighbours, upstream.fingerprint)

    def write(stage: Stage, sample: Sample) -> dict:
        asked = np.zeros(len(sample.source), bool)
        asked[sample.rows] = True
        write_table(stage.file("sample.parquet"), pa.table({"asked": asked, "source": sample.source, "cosine": sample.cosine}))
        return {"rows": len(sample.source), "asked": len(sample.rows)}

    def read(stage: Stage) -> Sample:
        table = pq.read_table(stage.file("sample.parquet"))
        return Sample(np.flatnonzero(table.column("asked").to_numpy(zero_copy_only=False)),
                      table.column("source").to_numpy(), table.column("cosine").to_numpy())

    sample = stage.run(lambda: representatives(vectors, cfg.lumi.llm_sample, cfg.neighbours, cfg.lumi.seed), write, read)
    return sample, stage


def initial_labels(run: RunDir, cfg, texts: list[str], neighbours: np.ndarray, upstream: Stage, rows: np.ndarray):
    """Step 1: one label per asked text (``rows``); returns (their labels, generation result, fallback count)."""
    lumi = cfg.lumi
    chats = [LUMI_PROMPTS.render("lumi_label", lumi.task, text=texts[i],
                    context=context_block([texts[j] for j in neighbours[i, : lumi.label_context_k]], lumi.context_chars))
             for i in rows.tolist()]
    result = generate_stage(run, "lumi_labels", chats, SamplingParams(max_tokens=lumi.label_max_tokens, seed=lumi.seed),
                            cfg.llm, upstream, parse=parse_label)
    parsed = [None] * len(texts)  # by row, for the fallback's vote among neighbours that were asked
    for i, p in zip(rows.tolist(), result.values):
        parsed[i] = p
    labels = [parsed[i] or _fallback_label(i, parsed, neighbours, texts[i]) for i in rows.tolist()]
    return labels, result, sum(p is None for p in result.values)


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
                 cand_neighbours: np.ndarray, upstream: Stage, rows: np.ndarray):
    """Step 3: S_i = {l_i} + the candidate labels the LLM says fit, for the asked ``rows``;
    returns (their sets, result, report)."""
    lumi = cfg.lumi
    candidates = candidate_labels(label_index, cand_neighbours[rows], lumi.candidate_labels)
    chats = [LUMI_PROMPTS.render("lumi_multilabel", lumi.task, text=texts[i], labels=numbered([names[c] for c in candidates[j]]))
             for j, i in enumerate(rows.tolist())]
    result = generate_stage(run, "lumi_multilabel", chats, SamplingParams(max_tokens=lumi.choice_max_tokens, seed=lumi.seed),
                            cfg.llm, upstream, parse=parse_choices)
    sets, out_of_range = [], 0
    for i, (answer, parsed) in enumerate(zip(result.texts, result.values)):
        picked, bad = chosen_labels(answer, parsed, [names[c] for c in candidates[i]])
        out_of_range += bad
        sets.append(list(dict.fromkeys([int(label_index[rows[i]])] + [candidates[i][k] for k in picked])))
    sizes = np.array([len(s) for s in sets])
    report = {"labels_per_text_mean": round(float(sizes.mean()), 3), "texts_with_extra_labels": int((sizes > 1).sum()),
              "choices_out_of_range": out_of_range, "multilabel_parse_failures": result.failures}
    return sets, result, report


def run_lumi(run: RunDir, cfg, table: pa.Table, vectors: np.ndarray, embed: Stage) -> LumiResult:
    """Steps 1-5 of LUMI on the embedded corpus; checkpointed, resumable."""
    lumi = cfg.lumi
    texts = table.column(schema.TEXT).to_pylist()
    neighbours, _, upstream = neighbours_stage(run, cfg.neighbours, vectors, embed)
    n = len(texts)
    if labelled_count(lumi, n) < n:
        sample, upstream = sample_stage(run, cfg, vectors, upstream)
    else:
        sample = Sample(np.arange(n), np.arange(n), np.ones(n, np.float32))
    asked_labels, label_result, fallbacks = initial_labels(run, cfg, texts, neighbours, upstream, sample.rows)
    labels = [asked_labels[p] for p in sample.source.tolist()]

    names = sorted(set(labels))
    lookup = {name: i for i, name in enumerate(names)}
    label_index = np.array([lookup[l] for l in labels], np.int64)
    label_table = pa.table({schema.ROW: pa.array(np.arange(len(names)), pa.int64()), schema.TEXT: names})
    label_vectors, lstage = embed_stage(run, cfg.embedding, label_table, label_result.stage, name="lumi_label_embed")
    audit = description_audit(run, "labels", cfg.audit, lumi.task, [texts[i] for i in sample.rows.tolist()],
                              asked_labels, vectors[sample.rows], label_vectors[label_index[sample.rows]], cfg.llm, lstage)
    log.info("lumi audit: %s", audit.decision)
    if audit.weight == 0:  # the labels would pull texts apart at random: keep the embedder's vectors
        report = {"distinct_labels": len(names), "label_fallbacks": fallbacks, "audit": audit.to_dict()}
        return LumiResult(vectors, vectors, [[l] for l in labels], report, lstage, audit, vectors)
    z = pseudo_label_view(vectors, label_vectors, label_index)
    search = replace(cfg.neighbours, k=min(lumi.candidate_search, len(texts) - 1))
    cand, _, cstage = neighbours_stage(run, search, z, lstage, name="lumi_candidates")
    asked_sets, multi_result, multi_report = multi_labels(run, cfg, texts, names, label_index, cand, cstage, sample.rows)
    sets = [asked_sets[p] for p in sample.source.tolist()]
    copied = np.ones(n, bool)
    copied[sample.rows] = False
    coverage = {"llm_sample": lumi.llm_sample, "texts_asked": len(sample.rows), "texts_copied": int(copied.sum()),
                "copied_cosine_mean": round(float(sample.cosine[copied].mean()), 4) if copied.any() else None,
                "copied_cosine_p10": round(float(np.percentile(sample.cosine[copied], 10)), 4) if copied.any() else None}

    stage = run.stage(POOL_STAGE, lumi, cfg.audit, multi_result.stage.fingerprint)

    def compute() -> LumiResult:
        S = incidence(sets, len(names))
        h = label_level_pool(vectors, label_vectors, S)
        r, pool_report = text_level_pool(h, S, lumi.text_pool_top_m, lumi.label_posting_cap, lumi.seed)
        report = {"distinct_labels": len(names), "label_fallbacks": fallbacks,
                  "label_parse_failure_rate": label_result.manifest.get("parse_failure_rate"),
                  "multilabel_parse_failure_rate": multi_result.manifest.get("parse_failure_rate"),
                  **multi_report, **coverage, **pool_report, "audit": audit.to_dict()}
        return LumiResult(h, r, [[names[l] for l in s] for s in sets], report)

    def write(stage: Stage, result: LumiResult) -> dict:
        write_table(stage.file("vectors.parquet"), pa.table({
            schema.ROW: table.column(schema.ROW), columns.LABEL_POOLED: schema.to_fixed_list(result.label_pooled),
            columns.TEXT_POOLED: schema.to_fixed_list(result.text_pooled)}))
        write_table(stage.file(PSEUDO_LABELS_FILE), pa.table({
            schema.ROW: table.column(schema.ROW), schema.TEXT: texts,
            columns.PSEUDO_LABEL: labels, columns.PSEUDO_LABELS: result.pseudo_labels}))
        write_json(stage.file("report.json"), result.report)
        return {"rows": len(texts), **result.report}

    def read(stage: Stage) -> LumiResult:
        vec = pq.read_table(stage.file("vectors.parquet"))
        pseudo = pq.read_table(stage.file(PSEUDO_LABELS_FILE)).column(columns.PSEUDO_LABELS).to_pylist()
        return LumiResult(*(schema.from_fixed_list(vec.column(c)) for c in (columns.LABEL_POOLED, columns.TEXT_POOLED)),
                          pseudo, stage.read_json("report.json"))

    result = stage.run(compute, write, read)
    result.stage, result.audit, result.text_vectors = stage, audit, vectors
    log.info("lumi: %d distinct labels, %s labels per text, %d fallbacks", result.report["distinct_labels"],
             result.report["labels_per_text_mean"], result.report["label_fallbacks"])
    return result


def label_names(pseudo_labels: list[list[str]], clusters: np.ndarray, k: int, top: int = 2) -> list[str]:
    """Each cluster's name: its members' most common pseudo-labels ('card arrival / lost card')."""
    counts = _label_counts(pseudo_labels, clusters, k)
    return [" / ".join(l for l, _ in cnt.most_common(top)) or f"cluster {c}" for c, cnt in enumerate(counts)]


def llm_names(run: RunDir, cfg, pseudo_labels: list[list[str]], clusters: np.ndarray, k: int, upstream: Stage) -> list[str]:
    """A short LLM summary of each cluster's top labels; the label name where it gives none."""
    fallback = label_names(pseudo_labels, clusters, k)
    top = [[l for l, _ in cnt.most_common(8)] for cnt in _label_counts(pseudo_labels, clusters, k)]
    chats = [LUMI_PROMPTS.render("cluster_name", cfg.lumi.task, labels=numbered(t)) for t in top]
    result = generate_stage(run, "lumi_names", chats, SamplingParams(max_tokens=cfg.lumi.label_max_tokens),
                            cfg.llm, upstream, parse=parse_label)
    return [v or f for v, f in zip(result.values, fallback)]


def _label_counts(pseudo_labels, clusters, k) -> list[Counter]:
    counts = [Counter() for _ in range(k)]
    for labels, c in zip(pseudo_labels, clusters):
        counts[c].update(labels)
    return counts
