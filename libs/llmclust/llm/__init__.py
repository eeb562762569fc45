"""The LLM layer: one backend interface, one checkpointed and cached stage run on long-lived engine actors.

Public API::

    from llmclust.llm import LLMConfig, make_backend, generate_stage, SamplingParams, Chat, LLMBackend

* ``LLMConfig`` - which backend (transformers | vllm | openai), model (local folder, .gguf,
  the embedded ``SmolLM2-135M-Instruct``, or a served model name), optional LoRA ``adapter``,
  device/dtype, batch size, actor pool shape, HTTP settings, cache and prompt saving.
* ``make_backend(cfg)`` -> an ``LLMBackend``: ``generate(chats, params) -> list[list[str]]``
  (``params.n`` answers per chat) and ``model_id`` (adapter included, used in cache keys).
* ``generate_stage(run, name, chats, params, cfg, upstream, parse=None)`` -> ``GenerationResult``
  (``answers``, ``parsed``, ``failures``, ``calls``, ``seconds``, ``manifest``; ``.texts`` and
  ``.values`` for the first answer of each chat). See :mod:`llmclust.llm.stage`.
* ``llmclust.llm.transformers_backend.load_causal_lm(model, device, dtype, adapter="")`` ->
  ``(model, tokenizer)``, de-quantising a GGUF file once into ``~/.cache/llmclust``; reuse it
  for training (DPO).
* ``SamplingParams(choices=("yes", "no"))``: a closed question, answered with the log-probability
  of each choice instead of generated text (:mod:`llmclust.llm.scoring`); asked in two orders
  so that a preference for a position cancels: :mod:`llmclust.llm.two_views`.
* Prompts: :mod:`llmclust.llm.prompts`; answer parsers: :mod:`llmclust.llm.parsers`.

Example::

    cfg = LLMConfig(num_actors=1, batch_size=16)
    result = generate_stage(run, "labels", chats, SamplingParams(max_tokens=12), cfg, upstream=stage)
    result.texts[0]
"""

from llmclust.llm.backends import make_backend
from llmclust.llm.base import Chat, LLMBackend, SamplingParams
from llmclust.llm.config import LLMConfig
from llmclust.llm.stage import GenerationResult, generate_stage

__all__ = ["Chat", "GenerationResult", "LLMBackend", "LLMConfig", "SamplingParams", "generate_stage", "make_backend"]
