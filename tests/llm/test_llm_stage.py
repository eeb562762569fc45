"""The LLM stage's logic around a backend: cache, retry of unparseable answers, bad rows.

A fake backend stands in for the LLM here (logic only); the real SmolLM2 runs in
test_transformers_backend.py.
"""

import pyarrow.parquet as pq
import pytest
from llmclust.llm import LLMConfig, SamplingParams, generate_stage
from llmclust.llm.parsers import parse_label
from llmclust.store.runs import RunDir


class FakeBackend:
    """Answers 'label <text>'; texts containing 'wordless' get '...' unless sampled; 'boom' raises."""

    model_id = "fake"

    def __init__(self):
        self.seen = []

    def generate(self, chats, params):
        texts = [c[-1]["content"] for c in chats]
        if any("boom" in t for t in texts):
            raise RuntimeError("backend exploded")
        self.seen.extend(texts)
        out = []
        for t in texts:
            good = "wordless" not in t or (params.temperature > 0 and "always" not in t)
            out.append([f"label {t}" if good else "..."] * params.n)
        return out


class HealedBackend(FakeBackend):
    """The same backend once fixed: nothing raises, answers say 'fixed <text>'."""

    def generate(self, chats, params):
        self.seen.extend(c[-1]["content"] for c in chats)
        return [[f"fixed {c[-1]['content']}"] * params.n for c in chats]


def chat(text):
    return [{"role": "user", "content": text}]


@pytest.fixture
def upstream(tmp_path):
    run = RunDir(tmp_path / "run")
    return run, run.stage("up", "x")


def test_rerun_and_other_stage_make_no_call(upstream, tmp_path):
    run, up = upstream
    cfg = LLMConfig(num_actors=0, batch_size=2)
    chats = [chat(t) for t in ["a", "b", "c"]]
    backend = FakeBackend()
    first = generate_stage(run, "s", chats, SamplingParams(), cfg, up, backend=backend)
    assert first.calls == 3 and first.texts == ["label a", "label b", "label c"]
    again = generate_stage(run, "s", chats, SamplingParams(), cfg, up, backend=backend)  # finished stage
    other = generate_stage(run, "s2", chats[:2], SamplingParams(), cfg, up, backend=backend)  # cache hit
    assert again.calls == 0 and again.texts == first.texts
    assert other.calls == 0 and other.manifest["cache_hits"] == 2
    assert len(backend.seen) == 3
    changed = generate_stage(run, "s2", chats[:2], SamplingParams(seed=5), cfg, up, backend=backend)
    assert changed.calls == 2  # other sampling parameters: another cache key


def test_unparseable_answers_are_retried_once_then_counted(upstream):
    run, up = upstream
    cfg = LLMConfig(num_actors=0, save_prompts=True)
    chats = [chat("good"), chat("wordless"), chat("wordless always")]
    result = generate_stage(run, "labels", chats, SamplingParams(), cfg, up, parse=parse_label, backend=FakeBackend())
    assert result.values == ["label good", "label wordless", None]
    assert result.failures == 1 and result.calls == 3 + 2
    assert result.manifest["retried"] == 2 and result.manifest["parse_failure_rate"] == pytest.approx(1 / 3, abs=1e-3)
    saved = pq.read_table(run.path / "labels" / "answers.parquet").to_pydict()
    assert saved["retried"] == [False, True, True]
    assert saved["first_response"][1] == ["..."] and saved["response"][1] == ["label wordless"]
    assert saved["prompt"][0] == [{"role": "user", "content": "good"}]


class HotBackend(FakeBackend):
    """Rambles (no label) above temperature 1; remembers the temperature of each call."""

    def __init__(self):
        super().__init__()
        self.temperatures = []

    def generate(self, chats, params):
        self.temperatures.append(params.temperature)
        return [["..." if params.temperature > 1 else f"label {c[-1]['content']}"] * params.n for c in chats]


def test_the_retry_is_sampled_at_retry_temperature_even_below_a_hot_sample(upstream):
    run, up = upstream
    backend = HotBackend()
    result = generate_stage(run, "hot", [chat("a"), chat("b")], SamplingParams(temperature=1.5),
                            LLMConfig(num_actors=0, retry_temperature=0.7), up, parse=parse_label, backend=backend)
    assert backend.temperatures == [1.5, 0.7]
    assert result.values == ["label a", "label b"] and result.failures == 0


def test_a_bad_row_does_not_fail_its_batch(upstream):
    run, up = upstream
    cfg = LLMConfig(num_actors=0, batch_size=4)
    result = generate_stage(run, "s", [chat("a"), chat("boom"), chat("b")], SamplingParams(), cfg, up,
                            backend=FakeBackend())
    assert result.texts == ["label a", "", "label b"]
    assert result.manifest["errors"] == 1 and "backend exploded" in result.manifest["first_errors"][0]
    errors = pq.read_table(result.stage.file("answers.parquet")).column("error").to_pylist()
    assert errors[0] == errors[2] == "" and "backend exploded" in errors[1]

    # the stage is finished but not reused: a rerun asks the backend for the failed row only
    healed = HealedBackend()
    again = generate_stage(run, "s", [chat("a"), chat("boom"), chat("b")], SamplingParams(), cfg, up, backend=healed)
    assert healed.seen == ["boom"] and again.texts == ["label a", "fixed boom", "label b"]
    assert again.manifest["errors"] == 0


def test_a_dead_engine_fails_the_stage_instead_of_finishing_it(upstream):
    run, up = upstream
    cfg = LLMConfig(num_actors=0, batch_size=2, max_failed_fraction=0.5)
    with pytest.raises(RuntimeError, match=r"2 of 3 prompts failed in the backend.*max_failed_fraction=0.5"):
        generate_stage(run, "dead", [chat("boom 1"), chat("boom 2"), chat("a")], SamplingParams(), cfg, up,
                       backend=FakeBackend())
    assert not (run.path / "dead" / "manifest.json").exists()


def test_several_greedy_answers_per_prompt_are_refused_for_every_backend():
    from llmclust.llm import SamplingParams

    with pytest.raises(ValueError, match="n=2, temperature=0.0"):
        SamplingParams(n=2, temperature=0.0)
    assert SamplingParams(n=2, temperature=0.7).n == 2
