"""Density-guided DPO co-training of the LLM and the embedder: the iteration loop.

Iteration t (t = 0..iterations), each step a checkpointed stage named ``iter<t>_<step>``:

1. ``greedy`` / ``sample<m>``: interpretations of every text by the LLM (base + the adapter
   trained so far): one greedy, one per sampling temperature (the last iteration only needs
   the greedy one);
2. ``interpretations`` + ``embed``: the parsed candidates, embedded with the current embedder;
   ``cluster`` / ``evaluate``: KMeans on the greedy interpretations' embeddings (iteration t's
   result);
3. ``prefer``: density (or random) preference pairs;
4. ``dpo``: LoRA DPO of the LLM on the pairs (Ray Train) -> the adapter of iteration t+1;
5. ``embedder``: contrastive + DEC fine-tuning (Ray Train) -> the embedder of iteration t+1.

A killed job rerun with the same config skips every finished stage and resumes at the first
unfinished one. ``iterations.json`` in the run directory holds the per-iteration summary.

Example::

    cfg = load_job_config("ray_configs/cotrain_local.yaml", ["corpus.limit=40"])
    result = run_cotrain(RunDir(cfg.run.dir), cfg, table, corpus_stage)
    result.vectors, result.iterations[-1]["acc"]
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from llmclust import pipeline, schema
from llmclust.config import expect, expect_choice
from llmclust.interpretations import interpretation_chats, parse_interpretation
from llmclust.llm import LLMConfig, SamplingParams, generate_stage
from llmclust.models import resolve_model
from llmclust.preference import density_scores, duplicate_matrix, preference_pairs
from llmclust.runs import RunDir, Stage, write_json, write_table
from llmclust.training.cotrain_embedder import EmbedderTrainConfig, train_embedder
from llmclust.training.dpo import DPOTrainConfig, train_dpo, trainable_model_dir

log = logging.getLogger(__name__)


@dataclass
class CoTrainConfig:
    task: str = "intent: banking customer purpose"  # "<task>: <standard>" shown to the LLM
    iterations: int = 2  # training rounds; interpretations are clustered after each (0 = untrained)
    temperatures: list[float] = field(default_factory=lambda: [0.5, 1.0, 1.5])  # one sampled candidate each (M)
    max_tokens: int = 64  # new tokens per interpretation
    density_k: int = 0  # KMeans K of the density step; 0: clustering.n_clusters
    density_runs: int = 100  # KMeans runs averaged by the density score
    max_pairs: int = 10_000  # DPO pairs sampled per iteration
    preference: str = "density"  # density | random (the seed paper's ablation)
    seed: int = 0
    dpo: DPOTrainConfig = field(default_factory=DPOTrainConfig)
    embedder: EmbedderTrainConfig = field(default_factory=EmbedderTrainConfig)

    def __post_init__(self):
        expect(":" in self.task, "task", self.task, "'<task>: <standard>', e.g. 'intent: banking customer purpose'")
        expect(self.iterations >= 0, "iterations", self.iterations, "0 or more")
        expect(len(self.temperatures) > 0 and all(t > 0 for t in self.temperatures), "temperatures",
               self.temperatures, "a non-empty list of positive temperatures")
        expect(self.max_tokens >= 8, "max_tokens", self.max_tokens, "an integer >= 8")
        expect(self.density_k >= 0, "density_k", self.density_k, "0 (clustering.n_clusters) or an integer >= 2")
        expect(self.density_runs > 0, "density_runs", self.density_runs, "a positive integer")
        expect(self.max_pairs > 0, "max_pairs", self.max_pairs, "a positive integer")
        expect_choice("preference", self.preference, ["density", "random"])


@dataclass
class CoTrainResult:
    vectors: np.ndarray  # E_T(x+) of the last iteration: the clustering space
    stage: Stage  # the stage that produced them
    embedder: str  # the final embedder
    adapter: str  # the final LoRA adapter ("" when no DPO ran)
    iterations: list[dict]  # per iteration: acc/nmi, DPO and embedder losses, pairs, seconds


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
        settings += [(f"sample{m + 1}", SamplingParams(temperature=temp, max_tokens=ct.max_tokens, seed=ct.seed + 1000 * t + m))
                     for m, temp in enumerate(ct.temperatures)]
    stages, raw, parsed = [], [], []
    for name, params in settings:
        result = generate_stage(run, f"iter{t}_{name}", chats, params, llm_cfg, state.upstream, parse=parse_interpretation)
        stages.append(Stage(f"iter{t}_{name}", run.path / f"iter{t}_{name}", result.manifest["fingerprint"]))
        raw.append(result.texts)
        parsed.append(result.values)
    return stages, [list(r) for r in zip(*raw)], [list(p) for p in zip(*parsed)]


def _interpretations(run: RunDir, t: int, texts: list[str], raw, parsed, upstream: list[Stage]) -> tuple[pa.Table, Stage]:
    """Table of every candidate (ROW = text * m + candidate); unparseable ones fall back to the text."""
    stage = run.stage(f"iter{t}_interpretations", [s.fingerprint for s in upstream])
    n, m = len(texts), len(raw[0])
    if not stage.done:
        valid = np.array([[p is not None for p in row] for row in parsed], bool).reshape(n, m)
        shown = [p if p is not None else texts[i] for i, row in enumerate(parsed) for p in row]
        write_table(stage.file("candidates.parquet"), pa.table({
            schema.ROW: pa.array(np.arange(n * m), pa.int64()),
            schema.ID: pa.array(np.repeat(np.arange(n), m), pa.int64()),
            schema.CANDIDATE: pa.array(np.tile(np.arange(m), n), pa.int64()),
            schema.TEXT: pa.array(shown), schema.RESPONSE: pa.array([a for row in raw for a in row]),
            "valid": pa.array(valid.ravel()),
        }))
        failed_greedy = int((~valid[:, 0]).sum())
        if failed_greedy:
            log.warning("iteration %d: %d of %d greedy interpretations unparseable; their texts stand in", t, failed_greedy, n)
        stage.finish(n * m, candidates=m, unparseable=int((~valid).sum()), greedy_fallback_to_text=failed_greedy)
    return pq.read_table(stage.file("candidates.parquet")), stage


def _prefer(run: RunDir, cfg, t: int, candidates: pa.Table, vectors: np.ndarray, upstream: Stage) -> tuple[list[dict], Stage]:
    """DPO pairs (trl's conversational format) from density (or random) preference."""
    ct = cfg.cotrain
    stage = run.stage(f"iter{t}_prefer", ct.preference, ct.density_k, ct.density_runs, ct.max_pairs, ct.seed,
                      cfg.clustering.n_clusters, ct.task, upstream.fingerprint)
    if not stage.done:
        m = int(candidates.column(schema.CANDIDATE).to_numpy().max()) + 1
        n = candidates.num_rows // m
        cand_vectors = vectors.reshape(n, m, -1)
        valid = candidates.column("valid").to_numpy(zero_copy_only=False).reshape(n, m)
        shown = np.asarray(candidates.column(schema.TEXT).to_pylist(), dtype=object).reshape(n, m)
        raw = np.asarray(candidates.column(schema.RESPONSE).to_pylist(), dtype=object).reshape(n, m)
        k = min(ct.density_k or cfg.clustering.n_clusters, n)
        scores = density_scores(cand_vectors[:, 0], cand_vectors, k, ct.density_runs, ct.seed)
        pairs = preference_pairs(scores, valid, ct.max_pairs, ct.seed + t, same=duplicate_matrix(shown.tolist()),
                                 random_choice=ct.preference == "random")
        write_table(stage.file("pairs.parquet"), pa.table({
            schema.ROW: pa.array(pairs.row), "chosen_candidate": pa.array(pairs.chosen),
            "rejected_candidate": pa.array(pairs.rejected),
            schema.CHOSEN: pa.array(raw[pairs.row, pairs.chosen].tolist(), pa.string()),
            schema.REJECTED: pa.array(raw[pairs.row, pairs.rejected].tolist(), pa.string()),
        }))
        np.save(stage.file("density.npy"), scores)
        log.info("iteration %d preference (%s): %s", t, ct.preference, pairs.report)
        stage.finish(len(pairs), k=k, **pairs.report)
    table = pq.read_table(stage.file("pairs.parquet"))
    return table.to_pylist(), stage


def _dpo(run: RunDir, cfg, t: int, texts: list[str], pairs: list[dict], state: _State, upstream: Stage) -> tuple[dict, Stage]:
    ct = cfg.cotrain
    stage = run.stage(f"iter{t}_dpo", ct.dpo, cfg.llm.model, state.adapter, upstream.fingerprint)
    if not stage.done:
        chats = interpretation_chats([texts[p[schema.ROW]] for p in pairs], ct.task)
        examples = [{"prompt": chat, "chosen": [{"role": "assistant", "content": p[schema.CHOSEN]}],
                     "rejected": [{"role": "assistant", "content": p[schema.REJECTED]}]} for chat, p in zip(chats, pairs)]
        result = train_dpo(examples, trainable_model_dir(cfg.llm.model), state.adapter, ct.dpo, stage.path)
        stage.finish(len(pairs), **result)
    return stage.manifest, stage


def _embedder(run: RunDir, cfg, t: int, texts: list[str], greedy: list[str], greedy_vectors: np.ndarray,
              state: _State, upstream: Stage) -> tuple[dict, Stage]:
    ct = cfg.cotrain
    stage = run.stage(f"iter{t}_embedder", ct.embedder, state.embedder, upstream.fingerprint)
    if not stage.done:
        from llmclust.clustering import ClusteringConfig, kmeans

        k = min(ct.embedder.dec_clusters, len(texts))
        centres = kmeans(greedy_vectors, k, ct.seed, ClusteringConfig(n_clusters=max(k, 2), seeds=[ct.seed])).centers
        table = pa.table({schema.TEXT: pa.array(texts), schema.INTERPRETATION: pa.array(greedy)})
        result = train_embedder(table, state.embedder, centres, replace(ct.embedder, dec_clusters=max(k, 2)), stage.path)
        stage.finish(len(texts), dec_centres=k, **result)
    return stage.manifest, stage


def _seconds(*stages: Stage) -> float:
    return round(sum((s.manifest or {}).get("seconds", 0.0) for s in stages), 1)


def run_cotrain(run: RunDir, cfg, table: pa.Table, corpus: Stage) -> CoTrainResult:
    """Run (or resume) every iteration; returns the last iteration's clustering space."""
    ct = cfg.cotrain
    texts = table.column(schema.TEXT).to_pylist()
    state = _State(resolve_model(cfg.embedding.model), "", corpus)
    summary = []
    for t in range(ct.iterations + 1):
        last = t == ct.iterations
        gen_stages, raw, parsed = _generate(run, cfg, t, texts, state, last)
        candidates, interp_stage = _interpretations(run, t, texts, raw, parsed, gen_stages)
        vectors, embed_stage = pipeline.embed_stage(run, cfg, candidates, interp_stage, f"iter{t}_embed", state.embedder)
        m = len(raw[0])
        greedy_vectors = np.ascontiguousarray(vectors.reshape(len(texts), m, -1)[:, 0])
        greedy = candidates.column(schema.TEXT).to_pylist()[::m]
        runs, cluster_stage = pipeline.cluster_stage(run, cfg, greedy_vectors, embed_stage, f"iter{t}_cluster")
        metrics = pipeline.evaluate_stage(run, cfg, table, runs, cluster_stage, f"iter{t}_evaluate")
        row = {"iteration": t, "acc": metrics and metrics["acc_mean"], "nmi": metrics and metrics["nmi_mean"],
               "unparseable": interp_stage.manifest["unparseable"], "embedder": state.embedder, "adapter": state.adapter}
        stages = [*gen_stages, interp_stage, embed_stage, cluster_stage]
        if not last:
            pairs, prefer_stage = _prefer(run, cfg, t, candidates, vectors, embed_stage)
            dpo, dpo_stage = _dpo(run, cfg, t, texts, pairs, state, prefer_stage)
            emb, emb_stage = _embedder(run, cfg, t, texts, greedy, greedy_vectors, state, embed_stage)
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
        write_json(run.path / "iterations.json", summary)
        log.info("co-training iteration %d: %s", t, json.dumps({k: v for k, v in row.items() if k not in ("embedder", "adapter")}))
    return CoTrainResult(greedy_vectors, embed_stage, state.embedder, state.adapter, summary)
