"""The OpenAI-compatible backend against a tiny local server speaking /v1/chat/completions."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from llmclust.config import ConfigError
from llmclust.llm import LLMConfig, SamplingParams, make_backend

STALL_S = 1.0  # how long a stalled request waits before the server drops it, unanswered
TIMEOUT_S = 0.2  # the client's llm.timeout_s in the stall tests: well below STALL_S


class ChatCompletions(BaseHTTPRequestHandler):
    """Echoes the last user message n times; 'fail' gets HTTP 400; the first 'flaky' request 503;
    the first ``stalls_left`` 'stall' requests get no answer at all (a server busy past the timeout)."""

    requests_seen: list = []
    flaky_left = 1
    stalls_left = 0

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests_seen.append((self.path, body, self.headers.get("Authorization")))
        text = body["messages"][-1]["content"]
        if "fail" in text:
            return self._reply(400, {"error": {"message": "bad prompt"}})
        if "flaky" in text and type(self).flaky_left:
            type(self).flaky_left -= 1
            return self._reply(503, {"error": {"message": "busy"}})
        if "stall" in text and type(self).stalls_left:
            type(self).stalls_left -= 1
            time.sleep(STALL_S)  # the client has timed out by now: close without answering
            return None
        choices = [{"index": i, "message": {"role": "assistant", "content": f" echo {text} {i} "}}
                   for i in range(body.get("n", 1))]
        if body.get("logprobs"):  # a closed question: the top tokens of the first position
            choices[0]["logprobs"] = {"content": [{"token": "B", "logprob": -0.25, "top_logprobs": [
                {"token": "B", "logprob": -0.25}, {"token": " A", "logprob": -1.5}]}]}
        self._reply(200, {"object": "chat.completion", "model": body["model"], "choices": choices})

    def _reply(self, status, payload):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):  # keep test output quiet
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), ChatCompletions)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    ChatCompletions.requests_seen = []
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def chat(text):
    return [{"role": "user", "content": text}]


def test_generate_sends_the_protocol_and_reads_n_answers(server, monkeypatch):
    monkeypatch.setenv("TEST_LLM_KEY", "secret")
    cfg = LLMConfig(backend="openai", base_url=server, model="served", api_key_env="TEST_LLM_KEY", timeout_s=10)
    backend = make_backend(cfg)
    out = backend.generate([chat("a"), chat("b")], SamplingParams(max_tokens=5, n=2, temperature=0.5, seed=3))
    assert out == [["echo a 0", "echo a 1"], ["echo b 0", "echo b 1"]]
    path, body, auth = ChatCompletions.requests_seen[0]
    assert path == "/v1/chat/completions" and auth == "Bearer secret"
    assert body["model"] == "served" and body["max_tokens"] == 5 and body["n"] == 2 and body["seed"] == 3
    assert backend.model_id == f"openai:{server}:served"


def test_busy_server_is_retried_and_bad_request_fails_with_message(server):
    backend = make_backend(LLMConfig(backend="openai", base_url=server, model="m", timeout_s=10))
    ChatCompletions.flaky_left = 1
    assert backend.generate([chat("flaky")], SamplingParams()) == [["echo flaky 0"]]
    with pytest.raises(RuntimeError, match="HTTP 400.*bad prompt"):
        backend.generate([chat("fail")], SamplingParams())


@pytest.fixture
def fast_backoff(monkeypatch):
    from llmclust.llm import openai_backend

    monkeypatch.setattr(openai_backend, "BACKOFF_S", 0.01)


def test_read_timeout_is_retried(server, fast_backoff):
    backend = make_backend(LLMConfig(backend="openai", base_url=server, model="m", timeout_s=TIMEOUT_S))
    ChatCompletions.stalls_left = 1
    t0 = time.monotonic()
    assert backend.generate([chat("stall")], SamplingParams()) == [["echo stall 0"]]
    assert len(ChatCompletions.requests_seen) == 2 and time.monotonic() - t0 < STALL_S


def test_server_that_never_answers_fails_after_the_attempts_with_the_timeout(server, fast_backoff):
    from llmclust.llm.openai_backend import ATTEMPTS

    backend = make_backend(LLMConfig(backend="openai", base_url=server, model="m", timeout_s=TIMEOUT_S))
    ChatCompletions.stalls_left = ATTEMPTS
    with pytest.raises(RuntimeError, match=rf"did not answer within llm.timeout_s={TIMEOUT_S}.*raise llm.timeout_s"):
        backend.generate([chat("stall")], SamplingParams())
    assert len(ChatCompletions.requests_seen) == ATTEMPTS


def test_config_requires_a_url_for_openai():
    with pytest.raises(ConfigError, match="base_url"):
        LLMConfig(backend="openai", base_url="")


def test_closed_questions_ask_for_log_probabilities_and_continue_an_assistant_prefix(server):
    backend = make_backend(LLMConfig(backend="openai", base_url=server, model="m"))
    prefixed = chat("A or B?") + [{"role": "assistant", "content": "Answer:"}]
    out = backend.generate([chat("A or B?"), prefixed], SamplingParams(choices=("A", "B"), max_tokens=1))
    assert out == [["-1.5", "-0.25"], ["-1.5", "-0.25"]]
    bodies = [body for _, body, _ in ChatCompletions.requests_seen]
    assert all(b["logprobs"] is True and b["top_logprobs"] == 20 and b["temperature"] == 0.0 for b in bodies)
    plain, continued = sorted(bodies, key=lambda b: len(b["messages"]))
    assert "continue_final_message" not in plain
    assert continued["continue_final_message"] is True and continued["add_generation_prompt"] is False
