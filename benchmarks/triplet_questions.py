"""Which way of asking gives SmolLM2 a triplet signal? Generated text vs log-probabilities.

    python benchmarks/triplet_questions.py                   # 200 triplets, SmolLM2 on CPU
    python benchmarks/triplet_questions.py --triplets 400 --llm-model /models/Qwen2.5-7B-Instruct --device cuda

Triplets are the ones ClusterLLM would ask about first: entropy-sampled on the untrained
all-MiniLM-L6-v2 vectors of the Banking77 test set, kept where the ground truth has an
answer (exactly one choice shares the anchor's intent). Each question is asked in both
views (:mod:`llmclust.methods.clusterllm.questions`); reported per question:

* ``accuracy``: the mean of the two views' probabilities picks the right choice;
* ``consistent``: share of triplets where both views prefer the same choice on their own,
  and ``accuracy_consistent`` on those;
* ``accuracy_confident``: on the half of the triplets the question is most confident about;
* ``view_first_rate``: how often each view alone picks its first-listed choice (1.0 or 0.0:
  total position bias).

Beside them: ``generated`` (the generated answer to the worked-examples prompt, parsed, as
the judge asked before), ``likelihood`` (the choice text's log-likelihood as a reply to
"write a message with the same intent as: <anchor>", minus its likelihood unprompted) and
``embedder`` (the closer choice by cosine). Writes ``benchmarks/results/triplet_questions.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
from llmclust.llm import LLMConfig, SamplingParams, make_backend
from llmclust.llm.scoring import normalised
from llmclust.llm.two_views import Votes
from llmclust.methods.clusterllm.config import TRIPLET_QUESTIONS, TripletConfig
from llmclust.methods.clusterllm.judges import OracleJudge
from llmclust.methods.clusterllm.prompts import parse_choice, triplet_chat
from llmclust.methods.clusterllm.questions import (
    triplet_view_probability,
    triplet_views,
)
from llmclust.methods.clusterllm.triplets import sample_triplets
from llmclust.pipeline.embedders import SentenceEmbedder
from llmclust.pipeline.embedding import EmbeddingConfig

TASK = "intent: what the banking customer wants"


def answerable_triplets(vectors: np.ndarray, labels, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Entropy-sampled triplets with a ground-truth answer, and that answer (1 or 2)."""
    sample = sample_triplets(vectors, TripletConfig(budget=4 * count, seed=seed))
    truth = OracleJudge(labels).triplets(sample.rows).choices()
    keep = np.flatnonzero(truth > 0)[:count]
    return sample.rows[keep], truth[keep]


def score_all(backend, chats, choices) -> np.ndarray:
    return np.asarray(backend.score(chats, [choices] * len(chats) if isinstance(choices, tuple) else choices))


def summarise(p_first: np.ndarray, truth: np.ndarray, consistent: np.ndarray | None = None,
              views: list[np.ndarray] | None = None) -> dict:
    right = (p_first > 0.5) == (truth == 1)
    confident = np.argsort(-np.abs(p_first - 0.5), kind="stable")[: len(truth) // 2]
    out = {"accuracy": round(100 * right.mean(), 1), "accuracy_confident": round(100 * right[confident].mean(), 1)}
    if consistent is not None:
        out |= {"consistent": round(100 * consistent.mean(), 1),
                "accuracy_consistent": round(100 * right[consistent].mean(), 1) if consistent.any() else None,
                "view_first_rate": [round(float((v > 0.5).mean() if i == 0 else (v < 0.5).mean()), 3)
                                    for i, v in enumerate(views)]}
    return out


def ask(backend, question: str, rows: np.ndarray, texts: list[str]) -> tuple[Votes, list[np.ndarray]]:
    per_triplet = [triplet_views(question, TASK, texts[a], texts[b], texts[c]) for a, b, c in rows]
    views = []
    for v in range(2):
        n_chats = len(per_triplet[0][v].chats)
        logprobs = [score_all(backend, [t[v].chats[j] for t in per_triplet], per_triplet[0][v].choices)
                    for j in range(n_chats)]
        views.append(triplet_view_probability(question, logprobs, v))
    return Votes.from_views(views), views


def likelihood(backend, rows: np.ndarray, texts: list[str]) -> np.ndarray:
    """P(first) from the choices' pointwise mutual information with the anchor."""
    def prompt(anchor):
        content = (f"Write a customer message with the same intent as: {anchor}" if anchor
                   else "Write a customer message to a bank.")
        return [{"role": "user", "content": content}]

    choices = [(texts[b], texts[c]) for _, b, c in rows]
    given = score_all(backend, [prompt(texts[a]) for a, _, _ in rows], choices)
    alone = score_all(backend, [prompt("") for _ in rows], choices)
    pmi = given - alone
    return normalised(pmi)[:, 0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="../shared/data/banking77/test.csv")
    ap.add_argument("--triplets", type=int, default=200)
    ap.add_argument("--llm-model", default="SmolLM2-135M-Instruct")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="benchmarks/results/triplet_questions.json")
    args = ap.parse_args()

    frame = pd.read_csv(args.data)
    texts, labels = frame["text"].astype(str).tolist(), frame["category"].tolist()
    vectors = SentenceEmbedder(EmbeddingConfig(device=args.device)).encode(texts)
    rows, truth = answerable_triplets(vectors, labels, args.triplets, args.seed)
    backend = make_backend(LLMConfig(model=args.llm_model, device=args.device, batch_size=16))
    result = {"n_triplets": len(rows), "llm": args.llm_model, "device": args.device,
              "load_average_at_start": round(os.getloadavg()[0], 2), "questions": {}}

    sims = np.einsum("nd,nd->n", vectors[rows[:, 0]], vectors[rows[:, 1]]) - \
        np.einsum("nd,nd->n", vectors[rows[:, 0]], vectors[rows[:, 2]])
    result["embedder"] = summarise(1 / (1 + np.exp(-20 * sims)), truth)

    t0 = time.time()
    chats = [triplet_chat(TASK, texts[a], texts[b], texts[c]) for a, b, c in rows]
    parsed = np.array([parse_choice(a[0]) or 0 for a in backend.generate(chats, SamplingParams(max_tokens=6))])
    result["generated"] = {"accuracy": round(100 * (parsed == truth).mean(), 1),
                           "answered": round(100 * (parsed > 0).mean(), 1),
                           "said_2": round(100 * (parsed == 2).mean(), 1),
                           "prompts_per_s": round(len(rows) / (time.time() - t0), 2)}
    print("generated", result["generated"], flush=True)
    for question in TRIPLET_QUESTIONS:
        t0 = time.time()
        votes, views = ask(backend, question, rows, texts)
        result["questions"][question] = summarise(votes.p, truth, votes.consistent, views) | {
            "triplets_per_s": round(len(rows) / (time.time() - t0), 2)}
        print(question, result["questions"][question], flush=True)
    t0 = time.time()
    result["likelihood"] = summarise(likelihood(backend, rows, texts), truth) | {
        "triplets_per_s": round(len(rows) / (time.time() - t0), 2)}
    print("likelihood", result["likelihood"], "embedder", result["embedder"], flush=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print("wrote", args.out)


if __name__ == "__main__":
    main()
