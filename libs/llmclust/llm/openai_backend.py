"""OpenAI-compatible HTTP backend: ``POST {base_url}/chat/completions``.

Points the system at a vLLM server (``vllm serve MODEL``) or a hosted API. Requests of a
batch run concurrently (``batch_size`` at a time); connection errors, answers not received
within ``timeout_s`` and 429/5xx answers are retried with back-off, other errors fail with the
server's message.

Closed questions (``SamplingParams(choices=...)``) ask for ``logprobs`` with ``top_logprobs``
over a few tokens and read each choice's log-probability at the first position whose top
tokens name a choice; a choice not listed there gets :data:`llmclust.llm.scoring.LOGPROB_FLOOR`.
Choices should therefore be single tokens that differ from the start ("A"/"B", "1"/"2",
"yes"/"no"). A chat ending with an assistant message is continued (vLLM's
``continue_final_message``). A server that returns no log-probabilities is answered from its
generated text: the choice the text starts with gets log-probability 0.

Example::

    cfg = LLMConfig(backend="openai", base_url="http://127.0.0.1:8000/v1", model="Qwen2.5-7B-Instruct")
    OpenAIBackend(cfg).generate([[{"role": "user", "content": "hi"}]], SamplingParams(max_tokens=4))
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

from llmclust.llm.base import Chat, SamplingParams
from llmclust.llm.config import model_id
from llmclust.llm.scoring import LOGPROB_FLOOR, format_logprobs

ATTEMPTS = 3
TOP_LOGPROBS = 20  # the most the OpenAI API lists per position
SCORE_TOKENS = 3  # positions searched for a choice (a leading space may come first)
BACKOFF_S = 0.5  # before the 2nd attempt; doubles after each
RETRY_STATUS = {429, 500, 502, 503, 504}


class OpenAIBackend:
    def __init__(self, cfg):
        import requests

        self.cfg = cfg
        self.url = cfg.base_url.rstrip("/") + "/chat/completions"
        self.model_id = model_id(cfg)
        self.session = requests.Session()
        if cfg.api_key_env:
            key = os.environ.get(cfg.api_key_env)
            if not key:
                raise RuntimeError(f"llm.api_key_env={cfg.api_key_env!r} but that environment variable is empty; "
                                   "export it, or set llm.api_key_env='' for a server without keys")
            self.session.headers["Authorization"] = f"Bearer {key}"

    def generate(self, chats: list[Chat], params: SamplingParams) -> list[list[str]]:
        with ThreadPoolExecutor(max_workers=min(self.cfg.batch_size, max(len(chats), 1))) as pool:
            return list(pool.map(lambda chat: self._complete(chat, params), chats))

    def _complete(self, chat: Chat, params: SamplingParams) -> list[str]:
        body = {"model": self.cfg.model, "messages": chat, "temperature": params.temperature,
                "max_tokens": params.max_tokens, "n": params.n, "seed": params.seed, "top_p": params.top_p}
        if params.choices:
            body |= {"temperature": 0.0, "max_tokens": SCORE_TOKENS, "n": 1, "logprobs": True,
                     "top_logprobs": TOP_LOGPROBS}
            if chat and chat[-1]["role"] == "assistant":
                body |= {"add_generation_prompt": False, "continue_final_message": True}
            return format_logprobs(choice_scores(self._post(body)[0], params.choices))
        return [(c["message"]["content"] or "").strip() for c in self._post(body)]

    def _post(self, body: dict) -> list[dict]:
        """The answer's choices, in order; retried on connection errors, timeouts and 429/5xx."""
        import requests

        for attempt in range(ATTEMPTS):
            if attempt:
                time.sleep(BACKOFF_S * 2 ** (attempt - 1))
            try:
                reply = self.session.post(self.url, json=body, timeout=self.cfg.timeout_s)
            except requests.ConnectionError as err:  # ConnectTimeout included
                error = f"cannot reach {self.url}: {err}"
            except requests.Timeout as err:  # ReadTimeout: connected, but no answer in time (a busy server)
                error = f"{self.url} did not answer within llm.timeout_s={self.cfg.timeout_s}: {err}"
            else:
                if reply.status_code == 200:
                    return sorted(reply.json()["choices"], key=lambda c: c.get("index", 0))
                error = f"{self.url} answered HTTP {reply.status_code}: {reply.text[:300]}"
                if reply.status_code not in RETRY_STATUS:
                    break
        raise RuntimeError(f"{error}. Check llm.base_url, llm.model and that the server is running "
                           "(raise llm.timeout_s for long generations).")


def choice_scores(answer: dict, choices: tuple[str, ...]) -> list[float]:
    """Each choice's log-probability from one chat-completion choice (see the module docstring)."""
    wanted = [c.strip() for c in choices]
    positions = ((answer.get("logprobs") or {}).get("content")) or []
    for position in positions:
        found = [[t["logprob"] for t in position.get("top_logprobs", []) if t["token"].strip() == w] for w in wanted]
        if any(found):
            return [max(f) if f else LOGPROB_FLOOR for f in found]
    text = (answer.get("message", {}).get("content") or "").strip()
    if not positions:  # no log-probabilities from this server: the generated text decides
        return [0.0 if w and text.startswith(w) else LOGPROB_FLOOR for w in wanted]
    return [LOGPROB_FLOOR] * len(wanted)
