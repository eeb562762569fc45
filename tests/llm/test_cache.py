"""The response cache: 128-bit keys, exact hits, one query per lookup, buffered writes."""

import numpy as np
from llmclust.llm.base import SamplingParams
from llmclust.llm.cache import KeyMaker, ResponseCache, chat_bytes


def chat(text, role="user"):
    return [{"role": role, "content": text}]


def test_keys_depend_on_model_params_and_every_message():
    chats = [chat("a"), chat("b"), chat("a", role="system"), chat("a") + chat("b")]
    keys, sizes = KeyMaker("m", SamplingParams()).keys(chats)
    assert keys.shape == (4, 2) and keys.dtype == np.int64 and len({tuple(k) for k in keys.tolist()}) == 4
    assert sizes.tolist() == [len(chat_bytes(c)) for c in chats]
    again, _ = KeyMaker("m", SamplingParams()).keys(chats)
    assert (again == keys).all()
    assert (KeyMaker("m2", SamplingParams()).keys(chats)[0] != keys).all()
    assert (KeyMaker("m", SamplingParams(seed=1)).keys(chats)[0] != keys).all()
    # the length prefixes keep message boundaries apart: ("ab", "") is not ("a", "b")
    assert chat_bytes([{"role": "u", "content": "ab"}]) != chat_bytes([{"role": "ua", "content": "b"}])


def test_hits_are_exact_and_repeated_prompts_share_one_lookup(tmp_path):
    cache = ResponseCache(tmp_path)
    keys, _ = KeyMaker("m", SamplingParams(n=2, temperature=0.5)).keys([chat("a"), chat("b")])
    cache.put(keys, [["x", "y"], ["only \"quoted\" one, z"]])
    asked = np.stack([keys[1], keys[0], keys[1], [keys[0, 0], keys[0, 1] + 1]])  # the last shares h, not the key
    assert cache.get(asked) == {0: ["only \"quoted\" one, z"], 1: ["x", "y"], 2: ["only \"quoted\" one, z"]}
    assert len(cache) == 2


def test_puts_are_buffered_and_flushed_for_other_readers(tmp_path):
    writer, reader = ResponseCache(tmp_path, flush_rows=3, flush_seconds=3600), ResponseCache(tmp_path)
    keys, _ = KeyMaker("m", SamplingParams()).keys([chat(str(i)) for i in range(4)])
    writer.put(keys[:2], [["0"], ["1"]])
    assert reader.get(keys) == {}  # still in the writer's buffer
    writer.put(keys[2:3], [["2"]])  # the third row reaches flush_rows
    assert reader.get(keys) == {0: ["0"], 1: ["1"], 2: ["2"]}
    writer.put(keys[3:], [["3"]])
    writer.close()  # closing flushes
    assert reader.get(keys)[3] == ["3"]
