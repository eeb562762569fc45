"""Synthetic inputs of benchmarks/scale.py, and its LLM-stage overhead measurement.

Example::

    synthetic(2000, Path("/tmp/scale"))          # vectors_2000.npy, topics_2000.npy
    texts_of(topics(2000, Path("/tmp/scale")))[:2], llm_overhead(1000)["cold"]
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

D = 384  # dimension of the synthetic vectors
TOPIC_SIZE, LATENT = 1000, 48  # texts per synthetic topic; dimension of the within-topic variation
LABEL_VARIANTS, LABEL_SAMPLE = 5, 20_000  # labels per topic; texts labelled by the LLM (lumi.llm_sample)


def normalize(x):
    return (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def synthetic(n: int, data: Path) -> None:
    """vectors_<n>.npy (n, 384) unit rows and topics_<n>.npy, written once per n.

    Topics of ~1000 texts (log-normal sizes): a text is its topic's centre plus variation in a
    shared 48-d subspace (within-topic cosine ~0.6) plus a little isotropic noise.
    """
    files = [data / f"vectors_{n}.npy", data / f"topics_{n}.npy"]
    if all(f.exists() for f in files):
        return
    data.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    topics = max(2, n // TOPIC_SIZE)
    weights = rng.lognormal(0, 0.7, topics)
    topic = rng.choice(topics, n, p=weights / weights.sum()).astype(np.int32)
    centres = normalize(rng.standard_normal((topics, D), dtype=np.float32))
    basis = np.linalg.qr(rng.standard_normal((D, LATENT)))[0].astype(np.float32)
    x = np.empty((n, D), np.float32)
    for start in range(0, n, 100_000):
        t = topic[start:start + 100_000]
        variation = (rng.standard_normal((len(t), LATENT), dtype=np.float32) * 0.12) @ basis.T
        x[start:start + len(t)] = normalize(centres[t] + variation + 0.01 * rng.standard_normal((len(t), D), dtype=np.float32))
    for file, array in zip(files, (x, topic)):
        np.save(file.with_suffix(".tmp.npy"), array)
        os.replace(file.with_suffix(".tmp.npy"), file)


def vectors(n, data):
    return np.load(data / f"vectors_{n}.npy")


def topics(n, data):
    return np.load(data / f"topics_{n}.npy")


def cluster_labels(topic: np.ndarray, seed: int, k: int) -> np.ndarray:
    """A clustering result to name, evaluate and publish: topics folded into k, 10 % moved."""
    rng = np.random.default_rng(seed)
    return np.where(rng.random(len(topic)) < 0.1, rng.integers(0, k, len(topic)), topic % k).astype(np.int64)


def texts_of(topic: np.ndarray) -> list[str]:
    """Six words a text: three of its topic's eight, three of 200 common ones (letters only)."""
    rng = np.random.default_rng(3)
    word = lambda v: "".join(chr(97 + (v // 26 ** i) % 26) for i in range(4)) + "x"  # noqa: E731
    vocab = np.array([word(v) for v in range((int(topic.max()) + 1) * 8 + 200)], dtype=object)
    picks = np.concatenate([topic[:, None] * 8 + rng.integers(0, 8, (len(topic), 3)),
                            (int(topic.max()) + 1) * 8 + rng.integers(0, 200, (len(topic), 3))], axis=1)
    return [" ".join(row) for row in vocab[picks].tolist()]


def run_dir(tmp: Path):
    from llmclust.store.runs import RunDir

    run = RunDir(tmp)
    up = run.stage("input", "synthetic")
    up.finish(0)
    return run, up


def label_sets(topic: np.ndarray) -> tuple[list[list[int]], int]:
    """LUMI label sets as ``lumi.llm_sample`` gives them: LABEL_SAMPLE representatives get a set
    (a variant of their topic's label, 15 % another topic's; 0-2 extra labels), the others copy
    the set of a random representative of their topic."""
    rng = np.random.default_rng(2)
    n, t_count = len(topic), int(topic.max()) + 1
    reps = rng.choice(n, min(n, LABEL_SAMPLE), replace=False)
    own = lambda t: int(t) * LABEL_VARIANTS + int(rng.integers(LABEL_VARIANTS))  # noqa: E731
    sets = []
    for t in topic[reps]:
        first = own(t) if rng.random() < 0.85 else own(rng.integers(t_count))
        extra = [own(t) if rng.random() < 0.6 else own(rng.integers(t_count)) for _ in range(rng.binomial(2, 0.3))]
        sets.append(list(dict.fromkeys([first, *extra])))
    order = np.argsort(topic[reps], kind="stable")
    bounds = np.searchsorted(topic[reps][order], np.arange(t_count + 1))
    lo, size = bounds[topic], bounds[topic + 1] - bounds[topic]
    within = order[np.minimum(lo + (rng.random(n) * size).astype(np.int64), len(reps) - 1)]
    source = np.where(size > 0, within, rng.integers(0, len(reps), n))
    return [sets[s] for s in source.tolist()], t_count * LABEL_VARIANTS


class InstantBackend:
    """Answers at once: what is left of an LLM stage's time is the stage's own overhead."""

    model_id = "instant"

    def generate(self, chats, params):
        return [["card arrival"] * params.n for _ in chats]


def llm_overhead(n: int) -> dict:
    """Per-prompt cost of ``generate_stage`` with an instant backend: cold (nothing cached), cached
    (a new stage whose every prompt is in the response cache) and finished (the stage reused)."""
    from llmclust.llm import LLMConfig, SamplingParams, generate_stage
    from llmclust.methods.lumi.prompts import LUMI_PROMPTS

    texts = texts_of(np.arange(n) % max(2, n // TOPIC_SIZE))
    chats = [LUMI_PROMPTS.render("lumi_label", "intent: banking customer purpose", text=f"{t} {i}") for i, t in enumerate(texts)]
    run, up = run_dir(Path(tempfile.mkdtemp(prefix="scale_llm_")))
    cfg, out = LLMConfig(num_actors=0, batch_size=32), {"prompts": n, "batch_size": 32, "parse": None}
    # a stage of 64 other prompts first: the modules a first stage imports are not a per-prompt cost
    generate_stage(run, "warm_up", [LUMI_PROMPTS.render("lumi_label", "intent", text=f"warm {i}") for i in range(64)],
                   SamplingParams(max_tokens=12), cfg, up, backend=InstantBackend())
    for what, name in [("cold", "first"), ("cached", "second"), ("finished", "second")]:
        t0, c0 = time.perf_counter(), time.process_time()
        generate_stage(run, name, chats, SamplingParams(max_tokens=12), cfg, up, backend=InstantBackend())
        out[what] = round((time.perf_counter() - t0) / n * 1e6, 2)
        out[f"{what}_cpu"] = round((time.process_time() - c0) / n * 1e6, 2)
    return out
