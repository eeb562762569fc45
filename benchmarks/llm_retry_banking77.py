"""What the retry of an unparseable interpretation recovers, by retry temperature (SmolLM2, CPU).

    python benchmarks/llm_retry_banking77.py      # -> benchmarks/results/llm_retry_banking77.json (about 5 minutes)

Co-training samples one interpretation per temperature (0.5, 1.0, 1.5); the LLM stage asks an
unparseable answer once more. For the hottest sample on 200 Banking77 test texts: the first
pass at 1.5, then the answers that failed asked again (seed + 1) at 1.5 (the rule before: a retry
was never cooler than its sample) and at ``llm.retry_temperature`` (0.7, the rule now):
``recovered`` is the share of the retried answers that parse.
"""

from __future__ import annotations

import time

import pandas as pd
from common import RESULTS, TEST_CSV, write_result

from llmclust.llm import LLMConfig, SamplingParams, make_backend  # noqa: E402
from llmclust.methods.cotrain.config import CoTrainConfig  # noqa: E402
from llmclust.methods.cotrain.interpretations import interpretation_chats, parse_interpretation  # noqa: E402

TEXTS = 200
HOT = 1.5


def main() -> None:
    ct, llm = CoTrainConfig(), LLMConfig(num_actors=0, batch_size=64)
    backend = make_backend(llm)
    chats = interpretation_chats(pd.read_csv(TEST_CSV)["text"].tolist()[:TEXTS], ct.task)
    first = SamplingParams(temperature=HOT, max_tokens=ct.max_tokens, seed=ct.seed)
    failed = [c for c, [a] in zip(chats, backend.generate(chats, first)) if parse_interpretation(a) is None]
    result = {"model": backend.model_id, "texts": TEXTS, "max_tokens": ct.max_tokens, "sample_temperature": HOT,
              "failed_first": len(failed), "retries": {}}
    for temperature in (HOT, llm.retry_temperature):
        t0 = time.perf_counter()
        answers = backend.generate(failed, SamplingParams(temperature=temperature, max_tokens=ct.max_tokens, seed=ct.seed + 1))
        parsed = sum(parse_interpretation(a) is not None for [a] in answers)
        result["retries"][str(temperature)] = {"recovered": round(parsed / max(len(failed), 1), 3), "parsed": parsed,
                                               "seconds": round(time.perf_counter() - t0, 1)}
        print(temperature, result["retries"][str(temperature)], flush=True)
    write_result(RESULTS / "llm_retry_banking77.json", result)


if __name__ == "__main__":
    main()
