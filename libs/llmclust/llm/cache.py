"""Response cache: answers keyed by (model id, chat, sampling parameters), in SQLite.

It is what makes a rerun or a resumed LLM stage repeat no call: the stage looks every prompt
up before generating and stores each batch's answers as soon as they arrive. SQLite keeps
one file that several jobs may share (``llm.cache_dir``) and survives a kill mid-write.

Example::

    cache = ResponseCache("/tmp/llm_cache")
    key = cache_key("transformers:SmolLM2-135M-Instruct", chat, SamplingParams())
    cache.put({key: ["Card arrival"]}); cache.get([key])   # {key: ['Card arrival']}
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3
from pathlib import Path

from llmclust.llm.base import Chat, SamplingParams

LOOKUP_BATCH = 500  # keys per SELECT (SQLite limits the number of bound parameters)


def cache_key(model_id: str, chat: Chat, params: SamplingParams) -> str:
    blob = json.dumps([model_id, chat, dataclasses.asdict(params)], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


class ResponseCache:
    def __init__(self, folder: str | Path):
        Path(folder).mkdir(parents=True, exist_ok=True)
        self.path = Path(folder) / "responses.sqlite"
        self.db = sqlite3.connect(self.path, timeout=60)
        self.db.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, answers TEXT NOT NULL)")
        self.db.commit()

    def get(self, keys: list[str]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for start in range(0, len(keys), LOOKUP_BATCH):
            chunk = keys[start : start + LOOKUP_BATCH]
            rows = self.db.execute(
                f"SELECT key, answers FROM responses WHERE key IN ({','.join('?' * len(chunk))})", chunk)
            found.update((k, json.loads(a)) for k, a in rows)
        return found

    def put(self, answers: dict[str, list[str]]) -> None:
        self.db.executemany("INSERT OR REPLACE INTO responses VALUES (?, ?)",
                            [(k, json.dumps(a, ensure_ascii=False)) for k, a in answers.items()])
        self.db.commit()

    def __len__(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        self.db.close()
