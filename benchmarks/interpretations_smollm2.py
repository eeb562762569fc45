"""Co-training's interpretations from SmolLM2 (CPU): how long they run, and what a retry recovers.

    python benchmarks/interpretations_smollm2.py     # -> benchmarks/results/interpretations_smollm2.json (about 8 minutes)

``lengths``: 64 Banking77 test texts answered greedy and at 1.0 with up to 128 new tokens (the
GPU config's ``cotrain.max_tokens``): the answers' token counts, and whether each parses as it
came and cut to its first 64 tokens (``same_parsed``: the parsed text is unchanged by the cut).
Past the two asked-for lines SmolLM2 repeats a keyword until the limit, which the parser drops.

``retry``: co-training samples one interpretation per temperature (0.5, 1.0, 1.5) and the LLM
stage asks an unparseable answer once more. For the hottest sample on 200 texts: the first
pass at 1.5, then the failed ones asked again (seed + 1) at 1.5 (the rule before: a retry was
never cooler than its sample) and at ``llm.retry_temperature`` (0.7, the rule now);
``recovered``: the share of the retried answers that parse.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from common import RESULTS, TEST_CSV, write_result

from llmclust.llm import LLMConfig, SamplingParams, make_backend  # noqa: E402
from llmclust.methods.cotrain.config import CoTrainConfig  # noqa: E402
from llmclust.methods.cotrain.interpretations import interpretation_chats, parse_interpretation  # noqa: E402

LENGTH_TEXTS, LONG, SHORT = 64, 128, 64
RETRY_TEXTS, HOT = 200, 1.5


def lengths(backend, chats: list) -> dict:
    out = {}
    for temperature in (0.0, 1.0):
        answers = [a for [a] in backend.generate(chats, SamplingParams(temperature=temperature, max_tokens=LONG))]
        ids = [backend.tokenizer(a, add_special_tokens=False)["input_ids"] for a in answers]
        cut = [backend.tokenizer.decode(i[:SHORT]) for i in ids]
        tokens = np.array([len(i) for i in ids])
        parsed, parsed_cut = [parse_interpretation(a) for a in answers], [parse_interpretation(a) for a in cut]
        out[str(temperature)] = {"tokens_p50": float(np.median(tokens)), "tokens_p90": float(np.percentile(tokens, 90)),
                                 f"share_over_{SHORT}": round(float((tokens > SHORT).mean()), 3),
                                 f"parsed_at_{LONG}": round(float(np.mean([p is not None for p in parsed])), 3),
                                 f"parsed_cut_to_{SHORT}": round(float(np.mean([p is not None for p in parsed_cut])), 3),
                                 "same_parsed": round(float(np.mean([a == b for a, b in zip(parsed, parsed_cut)])), 3)}
        print("lengths", temperature, out[str(temperature)], flush=True)
    return out


def retry(backend, chats: list, llm: LLMConfig, max_tokens: int) -> dict:
    first = SamplingParams(temperature=HOT, max_tokens=max_tokens)
    failed = [c for c, [a] in zip(chats, backend.generate(chats, first)) if parse_interpretation(a) is None]
    out = {"texts": len(chats), "max_tokens": max_tokens, "sample_temperature": HOT, "failed_first": len(failed)}
    for temperature in (HOT, llm.retry_temperature):
        t0 = time.perf_counter()
        answers = backend.generate(failed, SamplingParams(temperature=temperature, max_tokens=max_tokens, seed=1))
        parsed = sum(parse_interpretation(a) is not None for [a] in answers)
        out[f"retry_at_{temperature}"] = {"recovered": round(parsed / max(len(failed), 1), 3), "parsed": parsed,
                                          "seconds": round(time.perf_counter() - t0, 1)}
        print("retry", temperature, out[f"retry_at_{temperature}"], flush=True)
    return out


def main() -> None:
    ct, llm = CoTrainConfig(), LLMConfig(num_actors=0, batch_size=64)
    backend = make_backend(llm)
    texts = pd.read_csv(TEST_CSV)["text"].tolist()
    result = {"model": backend.model_id,
              "lengths": lengths(backend, interpretation_chats(texts[:: len(texts) // LENGTH_TEXTS][:LENGTH_TEXTS], ct.task)),
              "retry": retry(backend, interpretation_chats(texts[:RETRY_TEXTS], ct.task), llm, ct.max_tokens)}
    write_result(RESULTS / "interpretations_smollm2.json", result)


if __name__ == "__main__":
    main()
