"""Density-guided DPO co-training of the LLM and the embedder: the iteration loop.

Iteration t (t = 0..iterations), each step a checkpointed stage named ``iter<t>_<step>``:

1. ``greedy`` / ``sample<m>``: interpretations of every text by the LLM (base + the adapter
   trained so far): one greedy, one per sampling temperature (the last iteration only needs
   the greedy one). Unparseable ones are asked again at ``llm.retry_temperature`` (the
   ``retried`` column of each stage's answers), so most of a hot sample's candidates come
   from that cooler retry (SmolLM2 at 1.5: 78 %); seeds differ between the passes, or a
   sample's retries would be the greedy pass's (same seed, same retry temperature);
2. ``interpretations`` + ``embed``: the parsed candidates, embedded with the current embedder;
   ``cluster`` / ``evaluate``: KMeans on the greedy interpretations' embeddings (iteration t's
   result);
3. ``prefer``: density (or random) preference pairs;
4. ``dpo``: LoRA DPO of the LLM on the pairs (Ray Train) -> the adapter of iteration t+1;
5. ``embedder``: contrastive + DEC fine-tuning (Ray Train, :mod:`llmclust.training.contrastive_dec`)
   -> the embedder of iteration t+1.

The last iteration's ``cluster`` / ``evaluate`` are the job's result: the clusterer publishes
them as they are, without clustering the same space again.

Before the first clustering, the audit (:mod:`llmclust.llm.audit`) puts iteration 0's greedy
interpretations back to the LLM as closed questions ("which fits this text?"). At weight 0
the interpretations carry no signal the LLM itself stands by: co-training then clusters the
raw texts' embeddings (``iter0_`` stages on ``embed``), trains nothing and stops, and says so.

A killed job rerun with the same config skips every finished stage and resumes at the first
unfinished one. ``iterations.json`` in the run directory holds the per-iteration summary.

Example::

    cfg = load_job_config("ray_configs/cotrain_local.yaml", ["corpus.limit=40"])
    result = run_cotrain(RunDir(cfg.run.dir), cfg, table, corpus_stage, clusterer.cluster)
    result.clustered.runs, result.iterations[-1]["acc"]
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from llmclust import schema
from llmclust.llm import SamplingParams, generate_stage
from llmclust.llm.audit import AuditResult, description_audit
from llmclust.methods.cotrain import columns
from llmclust.methods.cotrain.interpretations import (
    interpretation_chats,
    parse_interpretation,
)
from llmclust.methods.cotrain.preference import (
    density_scores,
    duplicate_matrix,
    preference_pairs,
)
from llmclust.methods.cotrain.report import CANDIDATES_FILE, ITERATIONS_FILE
from llmclust.models import model_weights, resolve_model
from llmclust.pipeline.clustering import ClusteringConfig, kmeans
from llmclust.pipeline.embedding import embed_stage
from llmclust.store.runs import TRANSIENT, RunDir, Stage, write_json, write_table
from llmclust.training.contrastive_dec import ContrastiveDECLoss
from llmclust.training.dpo import train_dpo
from llmclust.training.embedder_trainer import TrainResult, train_embedder

log = logging.getLogger(__name__)


@dataclass
class CoTrainResult:
    vectors: np.ndarray  # E_T(x+) of the last iteration: the clustering space
    clustered: object  # methods.base.Clustered: the last iteration's KMeans runs and metrics
    stage: Stage  # the stage that produced the clustering space
    embedder: str  # the final embedder
    adapter: str  # the final LoRA adapter ("" when no DPO ran)
    iterations: list[dict]  # per iteration: acc/nmi, DPO and embedder losses, pairs, seconds
    audit: AuditResult | None = None  # of iteration 0's interpretations


@dataclass
class _State:
    """What an iteration starts from: the current models and the stage they chain on."""

    embedder: str
    adapter: str
    upstream: Stage


def _generate(run: RunDir, cfg, t: int, texts: list[str], state: _State, last: bool) -> tuple[list[Stage], list[list[str]], list[list]]:
    """Greedy + sampled interpretations: (their stages, raw answers (n, m), parsed (n, m))."""
    ct = cfg.cotrain
    llm_cfg = replace(cfg.llm, adapter=state.adapter)
    chats = interpretation_chats(texts, ct.task)
    settings = [("greedy", SamplingParams(temperature=0.0, max_tokens=ct.max_tokens, seed=ct.seed))]
    if not last:
        settings += [(f"sample{m + 1}", SamplingParams(temperature=temp, max_tokens=ct.max_tokens, seed=ct.seed + 1000 * t + m + 1))
                     for m, temp in enumerate(ct.temperatures)]
    stages, raw, parsed = [], [], []
    for name, params in settings:  # one engine load for them all (fit's keep_engines)
        result = generate_stage(run, f"iter{t}_{name}", chats, params, llm_cfg, state.upstream,
                                parse=parse_interpretation)
        stages.append(result.stage)
        raw.append(result.texts)
        parsed.append(result.values)
    return stages, [list(r) for r in zip(*raw)], [list(p) for p in zip(*parsed)]


def _interpretations(run: RunDir, t: int, texts: list[str], raw, parsed, upstream: list[Stage]) -> tuple[pa.Table, Stage]:
    """Table of every candidate (ROW = text * m + candidate); unparseable ones fall back to the text."""
    stage = run.stage(f"iter{t}_interpretations", [s.fingerprint for s in upstream])
    n, m = len(texts), len(raw[0])

    def compute() -> pa.Table:
        valid = np.array([[p is not None for p in row] for row in parsed], bool).reshape(n, m)
        shown = [p if p is not None else texts[i] for i, row in enumerate(parsed) for p in row]
        return pa.table({
            schema.ROW: pa.array(np.arange(n * m), pa.int64()),
            schema.ID: pa.array(np.repeat(np.arange(n), m), pa.int64()),
            columns.CANDIDATE: pa.array(np.tile(np.arange(m), n), pa.int64()),
            schema.TEXT: pa.array(shown), schema.RESPONSE: pa.array([a for row in raw for a in row]),
            columns.VALID: pa.array(valid.ravel()),
        })

    def write(stage: Stage, candidates: pa.Table) -> dict:
        write_table(stage.file(CANDIDATES_FILE), candidates)
        valid = candidates.column(columns.VALID).to_numpy(zero_copy_only=False).reshape(n, m)
        failed_greedy = int((~valid[:, 0]).sum())
        if failed_greedy:
            log.warning("iteration %d: %d of %d greedy interpretations unparseable; their texts stand in", t, failed_greedy, n)
        return {"rows": n * m, "candidates": m, "unparseable": int((~valid).sum()), "greedy_fallback_to_text": failed_greedy}

    return stage.run(compute, write, lambda stage: pq.read_table(stage.file(CANDIDATES_FILE))), stage


def _prefer(run: RunDir, cfg, t: int, candidates: pa.Table, vectors: np.ndarray, upstream: Stage) -> tuple[list[dict], Stage]:
    """DPO pairs (trl's conversational format) from density (or random) preference."""
    ct = cfg.cotrain
    stage = run.stage(f"iter{t}_prefer", ct.preference, ct.density_k, ct.density_runs, ct.max_pairs, ct.seed,
                      cfg.clustering.n_clusters, ct.task, upstream.fingerprint)
    m = int(candidates.column(columns.CANDIDATE).to_numpy().max()) + 1
    n = candidates.num_rows // m
    k = min(ct.density_k or cfg.clustering.n_clusters, n)

    def compute():
        cand_vectors = vectors.reshape(n, m, -1)
        valid = candidates.column(columns.VALID).to_numpy(zero_copy_only=False).reshape(n, m)
        shown = np.asarray(candidates.column(schema.TEXT).to_pylist(), dtype=object).reshape(n, m)
        raw = np.asarray(candidates.column(schema.RESPONSE).to_pylist(), dtype=object).reshape(n, m)
        scores = density_scores(cand_vectors[:, 0], cand_vectors, k, ct.density_runs, ct.seed)
        pairs = preference_pairs(scores, valid, ct.max_pairs, ct.seed + t, same=duplicate_matrix(shown.tolist()),
                                 random_choice=ct.preference == "random")
        log.info("iteration %d preference (%s): %s", t, ct.preference, pairs.report, extra=TRANSIENT)
        table = pa.table({
            schema.ROW: pa.array(pairs.row), columns.CHOSEN_CANDIDATE: pa.array(pairs.chosen),
            columns.REJECTED_CANDIDATE: pa.array(pairs.rejected),
            columns.CHOSEN: pa.array(raw[pairs.row, pairs.chosen].tolist(), pa.string()),
            columns.REJECTED: pa.array(raw[pairs.row, pairs.rejected].tolist(), pa.string()),
        })
        return table, scores, pairs.report

    def write(stage: Stage, result) -> dict:
        table, scores, report = result
        write_table(stage.file("pairs.parquet"), table)
        np.save(stage.file("density.npy"), scores)
        return {"rows": table.num_rows, "k": k, **report}

    def read(stage: Stage):
        return pq.read_table(stage.file("pairs.parquet")), np.load(stage.file("density.npy")), stage.manifest

    table, _, _ = stage.run(compute, write, read)
    return table.to_pylist(), stage


def _dpo(run: RunDir, cfg, t: int, texts: list[str], pairs: list[dict], state: _State, upstream: Stage) -> tuple[dict, Stage]:
    """LoRA DPO of the LLM on the pairs; returns its summary (adapter folder, losses, steps)."""
    ct = cfg.cotrain
    stage = run.stage(f"iter{t}_dpo", ct.dpo, cfg.llm.model, state.adapter, upstream.fingerprint)

    def compute() -> dict:
        chats = interpretation_chats([texts[p[schema.ROW]] for p in pairs], ct.task)
        examples = [{"prompt": chat, "chosen": [{"role": "assistant", "content": p[columns.CHOSEN]}],
                     "rejected": [{"role": "assistant", "content": p[columns.REJECTED]}]} for chat, p in zip(chats, pairs)]
        return train_dpo(examples, model_weights(cfg.llm.model), state.adapter, ct.dpo, stage.path)

    return stage.run(compute, lambda stage, result: {"rows": len(pairs), **result}, lambda stage: stage.manifest), stage


def _embedder(run: RunDir, cfg, t: int, texts: list[str], greedy: list[str], greedy_vectors: np.ndarray,
              state: _State, upstream: Stage) -> tuple[dict, Stage]:
    """Contrastive + DEC update of the embedder; returns its summary (model folder, losses)."""
    ect = cfg.cotrain.embedder
    stage = run.stage(f"iter{t}_embedder", ect, state.embedder, upstream.fingerprint)
    k = max(min(ect.dec_clusters, len(texts)), 2)

    def compute() -> TrainResult:
        seed = cfg.cotrain.seed
        centres = kmeans(greedy_vectors, k, seed, ClusteringConfig(n_clusters=k, seeds=[seed])).centers
        loss = ContrastiveDECLoss(centres, ect.temperature, ect.dec_weight, ect.dec_alpha)
        # the interpretation twice: two dropout views in the trainer's one forward pass
        tuples = [(text, interp, interp) for text, interp in zip(texts, greedy)]
        return train_embedder(tuples, loss, state.embedder, stage.file("model"), ect, stage.file("ray"), name="embedder")

    stage.run(compute, lambda stage, result: {**result.write(stage), "dec_centres": k}, TrainResult.read)
    return stage.manifest, stage


def _seconds(*stages: Stage) -> float:
    return round(sum((s.manifest or {}).get("seconds", 0.0) for s in stages), 1)


def run_cotrain(run: RunDir, cfg, table: pa.Table, corpus: Stage, cluster: Callable) -> CoTrainResult:
    """Run (or resume) every iteration; ``cluster(run, vectors, upstream, prefix)`` clusters and
    evaluates one iteration's space (the clusterer's). Returns the last iteration's clustering."""
    ct = cfg.cotrain
    texts = table.column(schema.TEXT).to_pylist()
    state = _State(resolve_model(cfg.embedding.model), "", corpus)
    summary = []
    for t in range(ct.iterations + 1):
        last = t == ct.iterations
        gen_stages, raw, parsed = _generate(run, cfg, t, texts, state, last)
        candidates, interp_stage = _interpretations(run, t, texts, raw, parsed, gen_stages)
        vectors, embed = embed_stage(run, cfg.embedding, candidates, interp_stage, f"iter{t}_embed", state.embedder)
        m = len(raw[0])
        greedy_vectors = np.ascontiguousarray(vectors.reshape(len(texts), m, -1)[:, 0])
        greedy = candidates.column(schema.TEXT).to_pylist()[::m]
        if t == 0:
            text_vectors, text_stage = embed_stage(run, cfg.embedding, table, corpus)
            audit = description_audit(run, "interpretations", cfg.audit, ct.task, texts, greedy, text_vectors,
                                      greedy_vectors, replace(cfg.llm, adapter=state.adapter), embed)
            log.info("co-training audit: %s", audit.decision)
            if audit.weight == 0:  # interpretations the LLM does not stand by: cluster the texts themselves
                clustered = cluster(run, text_vectors, text_stage, "iter0_")
                metrics = clustered.metrics
                row = {"iteration": 0, "acc": metrics and metrics["acc_mean"], "nmi": metrics and metrics["nmi_mean"],
                       "unparseable": interp_stage.manifest["unparseable"], "space": "raw texts (audit weight 0)",
                       "embedder": state.embedder, "adapter": "",
                       "seconds": _seconds(*gen_stages, interp_stage, embed, text_stage, clustered.stage)}
                write_json(run.path / ITERATIONS_FILE, [row])
                return CoTrainResult(text_vectors, clustered, text_stage, state.embedder, "", [row], audit)
        clustered = cluster(run, greedy_vectors, embed, f"iter{t}_")
        metrics = clustered.metrics
        row = {"iteration": t, "acc": metrics and metrics["acc_mean"], "nmi": metrics and metrics["nmi_mean"],
               "unparseable": interp_stage.manifest["unparseable"], "embedder": state.embedder, "adapter": state.adapter}
        stages = [*gen_stages, interp_stage, embed, clustered.stage]
        if not last:
            pairs, prefer_stage = _prefer(run, cfg, t, candidates, vectors, embed)
            dpo, dpo_stage = _dpo(run, cfg, t, texts, pairs, state, prefer_stage)
            emb, emb_stage = _embedder(run, cfg, t, texts, greedy, greedy_vectors, state, embed)
            stages += [prefer_stage, dpo_stage, emb_stage]
            row.update(pairs=len(pairs), dpo_loss_start=dpo["loss_start"], dpo_loss_end=dpo["loss_end"],
                       dpo_steps=dpo["steps"], embedder_loss_start=emb["loss_start"], embedder_loss_end=emb["loss_end"])
            # the next iteration chains on both trainings, so a changed config reruns what follows
            chained = run.stage(f"iter{t}_done", dpo_stage.fingerprint, emb_stage.fingerprint)
            if not chained.done:
                chained.finish(len(texts))
            state = _State(emb["model"], dpo["adapter"], chained)
        row["seconds"] = _seconds(*stages)
        summary.append(row)
        write_json(run.path / ITERATIONS_FILE, summary)
        log.info("co-training iteration %d: %s", t, json.dumps({k: v for k, v in row.items() if k not in ("embedder", "adapter")}),
                 extra=TRANSIENT)
    return CoTrainResult(greedy_vectors, clustered, embed, state.embedder, state.adapter, summary, audit)
