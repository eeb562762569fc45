"""Closed questions answered from log-probabilities: the real SmolLM2 through the transformers
backend, the vLLM backend's bookkeeping against the same model, and the OpenAI answer reader."""

import math

import numpy as np
import pytest
from llmclust.llm import LLMConfig, SamplingParams, make_backend
from llmclust.llm.openai_backend import choice_scores
from llmclust.llm.scoring import (
    LOGPROB_FLOOR,
    choice_logprobs,
    continuations,
    normalised,
    single_pass,
)

QUESTION = [{"role": "user", "content": "Which is a fruit? Choice 1: apple. Choice 2: a car. Reply 'Choice 1' or 'Choice 2'."},
            {"role": "assistant", "content": "Choice"}]


def test_sampling_params_check_closed_questions():
    assert SamplingParams(choices=["A", "B"]).choices == ("A", "B")  # YAML gives lists
    for bad in [dict(choices=("A",)), dict(choices=("A", "")), dict(choices=("A", "B"), n=2, temperature=1)]:
        with pytest.raises(ValueError, match="closed question"):
            SamplingParams(**bad)


def test_choice_logprobs_and_normalised():
    lp = choice_logprobs([["-0.1", "-2.3"], [], ["x", "-1"]])
    assert lp.shape == (3, 2) and np.isnan(lp[1]).all() and np.isnan(lp[2, 0]) and lp[2, 1] == -1
    p = normalised(np.log(np.array([[0.2, 0.6]])))
    np.testing.assert_allclose(p, [[0.25, 0.75]])


def test_openai_answer_reader_skips_a_leading_space_token_and_falls_back_to_text():
    top = lambda pairs: {"top_logprobs": [{"token": t, "logprob": l} for t, l in pairs]}  # noqa: E731
    answer = {"logprobs": {"content": [top([(" ", -0.01), ("\n", -5)]), top([("2", -0.2), ("1", -1.8), (" 1", -3)])]}}
    assert choice_scores(answer, ("1", "2")) == [-1.8, -0.2]  # the first position naming a choice
    assert choice_scores(answer, ("1", "3")) == [-1.8, LOGPROB_FLOOR]  # not among the top tokens
    assert choice_scores({"message": {"content": "B, because"}}, ("A", "B")) == [LOGPROB_FLOOR, 0.0]


@pytest.fixture(scope="module")
def smollm2():
    return make_backend(LLMConfig(device="cpu", batch_size=4))


@pytest.mark.slow
def test_the_answer_digit_after_a_separate_space_token_is_scored_in_one_pass(smollm2):
    conts = continuations(smollm2.tokenizer, QUESTION, (" 1", " 2"))
    assert [smollm2.tokenizer.convert_ids_to_tokens(list(c.ids[c.start:])) for c in conts] == [["Ġ", "1"], ["Ġ", "2"]]
    assert single_pass(conts)
    one_pass = smollm2.score([QUESTION], [(" 1", " 2")])[0]
    # the same sums from one sequence per choice (multi-token choices take that path)
    per_choice = [smollm2.score([QUESTION], [(" 1", " 1!")])[0][0], smollm2.score([QUESTION], [(" 2", " 2!")])[0][0]]
    # float32 sums over other padding and batch shapes: equal to a few parts in 1e5 (1.1e-4 absolute at -3.47
    # was seen when earlier tests in the process had changed torch's thread count)
    np.testing.assert_allclose(one_pass, per_choice, rtol=1e-4, atol=1e-4)
    assert one_pass[0] > one_pass[1]  # an apple is a fruit
    answers = smollm2.generate([QUESTION, QUESTION[:1]], SamplingParams(choices=(" 1", " 2")))
    assert len(answers) == 2 and all(len(a) == 2 and all(float(x) < 0 for x in a) for a in answers)


@pytest.mark.slow
def test_vllm_scoring_reads_prompt_logprobs_like_the_transformers_backend(smollm2, monkeypatch):
    """The vLLM path's token bookkeeping, fed prompt log-probabilities computed by the same model."""
    import types

    import torch
    from llmclust.llm import vllm_backend

    class Logprob:
        def __init__(self, value):
            self.logprob = value

    class FakeEngine:  # vllm.LLM's generate with prompt_logprobs, computed by SmolLM2
        def get_tokenizer(self):
            return smollm2.tokenizer

        def generate(self, prompts, sampling, lora_request=None, use_tqdm=False):
            assert sampling["prompt_logprobs"] == 1 and sampling["max_tokens"] == 1
            outs = []
            for p in prompts:
                ids = torch.tensor([p["prompt_token_ids"]])
                with torch.inference_mode():
                    logp = torch.log_softmax(smollm2.model(input_ids=ids).logits[0].float(), -1)
                per_token = [None] + [{t: Logprob(logp[i - 1, t].item())} for i, t in enumerate(ids[0].tolist()) if i]
                outs.append(types.SimpleNamespace(prompt_logprobs=per_token))
            return outs

    monkeypatch.setattr(vllm_backend, "import_vllm", lambda: types.SimpleNamespace(SamplingParams=dict))
    backend = object.__new__(vllm_backend.VLLMBackend)
    backend.llm, backend.lora = FakeEngine(), None
    got = backend.score([QUESTION, QUESTION[:1]], [(" 1", " 2"), ("Choice 1", "Choice 2 is right")])
    want = smollm2.score([QUESTION, QUESTION[:1]], [(" 1", " 2"), ("Choice 1", "Choice 2 is right")])
    np.testing.assert_allclose(got, want, atol=1e-3)
    assert all(math.isfinite(x) for row in got for x in row)
