"""The ``lumi`` section of the job config: LUMI's hyper-parameters (METHODS.md §1).

Example::

    LumiConfig(task="intent: banking customer purpose", label_context_k=0).candidate_labels   # 10
"""

from __future__ import annotations

from dataclasses import dataclass

from llmclust.config import expect


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
    # texts the LLM labels; above it, that many representatives (nearest to fine KMeans centres) are
    # asked and every other text takes its centre's representative's labels: the LLM budget stops
    # growing with the corpus (0: ask about every text, as the paper)
    llm_sample: int = 20_000
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
        expect(self.llm_sample == 0 or self.llm_sample >= 2, "llm_sample", self.llm_sample,
               "0 (every text) or at least 2 texts")
        expect(self.label_posting_cap >= 0, "label_posting_cap", self.label_posting_cap, "0 (all) or a positive integer")
