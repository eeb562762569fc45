"""Audit an LLM's signal before a method lets it change the representation (no labels used).

A method that trusts a wrong LLM makes the clusters worse than the embedder alone. So before
it uses the LLM's answers, it measures two things on the answers it already has:

* **self-consistency**: every closed question is asked in two views (the choices, or the two
  texts, swapped; :mod:`llmclust.llm.two_views`). An LLM that answers from
  the texts gives the same answer in both; one that answers from the position ("always 2")
  or at random does not. From the share ``c`` of consistent answers, a view's accuracy ``q``
  follows if the two views err independently: ``c = q^2 + (1-q)^2``, so the *reliability*
  ``2q - 1 = sqrt(2c - 1)`` (0 for a coin or a position-only answerer, 1 for an LLM that is
  always consistent).
* **agreement with the embedder beyond chance**: a consistent LLM may still answer from
  something unrelated to the task (the shorter text, say). On the questions where the
  embedder has a clear preference (the more decisive half), the consistent answers must agree
  with it more often than a coin would, by ``audit.min_z`` standard errors. Agreement is
  not asked to be high: an LLM that is better than the embedder disagrees with it where the
  embedder is wrong.

The weight the LLM's signal gets is the reliability when the agreement test passes, else 0;
under ``audit.min_weight`` it is 0 too, and the method says so and falls back to the
embedder. The figures go to the stage's manifest, result.json (``llm_audit``) and the log.

Which answers are audited:

* ClusterLLM: the judge's own triplet and pair answers (no extra LLM calls);
* LUMI and co-training: the LLM's descriptions of texts (pseudo-labels, interpretations) are
  put back to it as closed questions, :func:`description_audit`: for ``audit.sample`` texts,
  "does this description fit the text? yes / no" for the text's own description and for the
  one of its nearest neighbour that got a different one (a hard alternative); the own one is
  preferred when its log-odds of "yes" are higher (a leaning to "yes" cancels), and the two
  views put the text and the description in either order. The embedder's preference is the
  cosine of the text to each description.

Example::

    votes = Votes.from_views([p_view_a, p_view_b])            # P(first choice) per triplet, per view
    result = audit_votes("triplets", votes, embedder_first, margin, AuditConfig())
    result.weight, result.decision
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from llmclust.config import expect
from llmclust.llm.prompts import AUDIT_PROMPTS
from llmclust.llm.two_views import View, Votes, ask_views, log_odds_preference


@dataclass
class AuditConfig:
    enabled: bool = True  # false: trust the LLM fully (weight 1), as the papers do
    min_z: float = 2.0  # agreement with the embedder must beat a coin by this many standard errors (p < 0.023)
    min_weight: float = 0.2  # a reliability below this switches the LLM's signal off
    min_confidence: float = 0.1  # answers less confident than this (|2p - 1|) are not used for training
    sample: int = 256  # texts whose descriptions are put back to the LLM (LUMI, co-training)
    seed: int = 0

    def __post_init__(self):
        expect(self.min_z >= 0, "min_z", self.min_z, "0 or more standard errors")
        expect(0 <= self.min_weight <= 1, "min_weight", self.min_weight, "a weight in [0, 1]")
        expect(0 <= self.min_confidence < 1, "min_confidence", self.min_confidence, "a confidence in [0, 1)")
        expect(self.sample >= 10, "sample", self.sample, "at least 10 texts")


@dataclass
class AuditResult:
    question: str  # what was audited: "triplets", "pairs", "labels", ...
    n: int  # questions audited
    consistent: float  # share answered the same way in both views
    reliability: float  # sqrt(2 * consistent - 1), see the module docstring
    agreement: float | None  # share of consistent, decisive answers agreeing with the embedder
    compared: int  # how many answers that share is over
    z: float  # (agreement - 1/2) in standard errors of a coin
    weight: float  # what the method gives the LLM's signal: 0 .. 1
    decision: str  # one sentence for the log and the report

    def to_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def trusted(question: str, n: int = 0) -> AuditResult:
    """What ``audit.enabled: false`` gives: full weight, nothing measured."""
    return AuditResult(question, n, float("nan"), 1.0, None, 0, float("nan"), 1.0,
                       f"{question}: audit disabled (audit.enabled=false); the LLM's answers get full weight")


def reliability(consistent: float) -> float:
    return math.sqrt(max(0.0, 2 * consistent - 1))


def audit_votes(question: str, votes, embedder_first: np.ndarray, embedder_margin: np.ndarray,
                cfg: AuditConfig) -> AuditResult:
    """Audit two-view answers against the embedder's own preference.

    ``votes``: :class:`llmclust.llm.two_views.Votes` (``p``: probability of the
    first answer, ``consistent``); ``embedder_first``: the embedder prefers the first answer;
    ``embedder_margin``: how clearly (any monotone score; the larger half is compared).
    """
    answered = ~np.isnan(votes.p)
    n = int(answered.sum())
    if not cfg.enabled:
        return trusted(question, n)
    consistent = float(votes.consistent[answered].mean()) if n else 0.0
    rel = reliability(consistent)
    decisive = embedder_margin >= np.median(embedder_margin[answered]) if n else answered
    compared = answered & votes.consistent & decisive
    m = int(compared.sum())
    agreement = float(((votes.p[compared] > 0.5) == embedder_first[compared]).mean()) if m else None
    z = (agreement - 0.5) / math.sqrt(0.25 / m) if m else 0.0
    if rel < cfg.min_weight:
        weight = 0.0
        why = (f"it gives the same answer in both orders only {100 * consistent:.0f}% of the time "
               f"(reliability {rel:.2f} < audit.min_weight={cfg.min_weight})")
    elif m == 0 or z < cfg.min_z:
        weight = 0.0
        why = (f"its {m} consistent answers agree with the embedder {100 * (agreement or 0):.0f}% of the time "
               f"(z={z:.1f} < audit.min_z={cfg.min_z}): no signal beyond chance")
    else:
        weight = rel
        why = (f"consistent on {100 * consistent:.0f}% of {n} questions, agreeing with the embedder beyond "
               f"chance (z={z:.1f})")
    verdict = f"weight {weight:.2f}" if weight else "weight 0: the method keeps the embedder's clustering here"
    return AuditResult(question, n, consistent, rel, agreement, m, float(z), weight,
                       f"{question}: {verdict}; {why}")


def description_questions(text_vectors: np.ndarray, description_of: np.ndarray, sample: int,
                          seed: int) -> np.ndarray:
    """(m, 2) rows (text, other text): the other is the text's nearest neighbour (cosine) among
    those whose description differs; texts whose neighbours all share it are skipped."""
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(text_vectors), min(sample, len(text_vectors)), replace=False))
    out = []
    for start in range(0, len(rows), 1024):  # bounded memory: 1024 x n cosines at a time
        block = rows[start : start + 1024]
        sims = text_vectors[block] @ text_vectors.T
        sims[description_of[block][:, None] == description_of[None, :]] = -np.inf  # itself included
        other = sims.argmax(axis=1)
        keep = np.isfinite(sims[np.arange(len(block)), other])
        out.append(np.stack([block[keep], other[keep]], axis=1))
    return np.concatenate(out) if out else np.zeros((0, 2), np.int64)


def description_audit(run, question: str, cfg: AuditConfig, task: str, texts: list[str], descriptions: list[str],
                      text_vectors: np.ndarray, description_vectors: np.ndarray, llm_cfg, upstream,
                      backend=None) -> AuditResult:
    """Audit the LLM's descriptions of texts (see the module docstring); ``descriptions[i]`` and
    ``description_vectors[i]`` belong to text i, the vectors in the embedder's space. The LLM
    stage is ``llm_<question>_audit``."""
    if not cfg.enabled:
        return trusted(question)
    _, description_of = np.unique(np.asarray(descriptions, dtype=object).astype(str), return_inverse=True)
    pairs = description_questions(text_vectors, description_of, cfg.sample, cfg.seed)
    if len(pairs) == 0:  # one description for everything carries nothing to audit
        return AuditResult(question, 0, 0.0, 0.0, None, 0, 0.0, 0.0,
                           f"{question}: weight 0: the LLM gave every audited text the same description")

    def view(template, i, j):  # "does it fit?" for the text's own description, then the neighbour's
        return View([AUDIT_PROMPTS.render(template, task, text=texts[i], candidate=descriptions[k]) for k in (i, j)],
                    ("yes", "no"))

    questions = [[view("description_fit", i, j), view("description_fit_swapped", i, j)] for i, j in pairs]
    per_view = ask_views(run, f"llm_{question}_audit", questions, llm_cfg, upstream, backend)
    votes = Votes.from_views([log_odds_preference(*slots) for slots in per_view])  # p: its own fits better
    return audit_votes(question, votes, *description_preference(text_vectors, description_vectors, pairs), cfg)


def description_preference(text_vectors: np.ndarray, description_vectors: np.ndarray,
                           pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per (text, other text) pair: does the embedder put the text closer to its own description
    than to the other's, and by how much (cosine)."""
    own = np.einsum("nd,nd->n", text_vectors[pairs[:, 0]], description_vectors[pairs[:, 0]])
    other = np.einsum("nd,nd->n", text_vectors[pairs[:, 0]], description_vectors[pairs[:, 1]])
    return own > other, np.abs(own - other)
