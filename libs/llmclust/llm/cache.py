"""Response cache: answers keyed by (model id, sampling parameters, chat), in SQLite.

It is what makes a rerun or a resumed LLM stage repeat no call: the stage looks every prompt
up before generating and stores answers as they arrive. SQLite keeps one file that several
jobs may share (``llm.cache_dir``) and survives a kill mid-write.

Keys are built for millions of prompts. :class:`KeyMaker` hashes the model id and the
sampling parameters once per stage and each chat with one keyed BLAKE2b-128 call over a
length-prefixed join of its messages (no JSON), so a key costs about a microsecond. The
128-bit digest is stored as two 64-bit integers: ``h``, the table's integer primary key, and
``check``. A hit needs both to match, i.e. the whole 128-bit digest: two different prompts
share one with probability ~n² / 2^129 (1e-21 for a billion cached answers), so a hit is the
answer to that exact prompt. A stage reads all its keys in one query (:meth:`ResponseCache.get`
joins a temporary table of them) and writes answers in few transactions: :meth:`put` buffers
and commits every ``flush_rows`` answers or ``flush_seconds``, and on :meth:`flush` (a killed
stage loses at most those seconds of answers).

Caches written before this scheme (table ``responses``, SHA-256 of JSON keys) are not read.

Example::

    keys = KeyMaker("transformers:SmolLM2-135M-Instruct", SamplingParams()).keys([chat])   # (1, 2) int64
    cache = ResponseCache("/tmp/llm_cache")
    cache.put(keys, [["Card arrival"]]); cache.flush(); cache.get(keys)   # {0: ['Card arrival']}
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3
import time
from pathlib import Path

import numpy as np

from llmclust.llm.base import Chat, SamplingParams

TABLE = "responses_v2"


def chat_bytes(chat: Chat) -> bytes:
    """An injective byte form of a chat: every role and content prefixed by its length."""
    return "".join(f"{len(m['role'])}:{m['role']}{len(m['content'])}:{m['content']}" for m in chat).encode()


class KeyMaker:
    """128-bit keys of chats for one (model, sampling parameters): rows of two int64."""

    def __init__(self, model_id: str, params: SamplingParams):
        identity = json.dumps([model_id, dataclasses.asdict(params)], sort_keys=True).encode()
        self.salt = hashlib.blake2b(identity, digest_size=32).digest()

    def keys(self, chats: list[Chat]) -> np.ndarray:
        salt, blake = self.salt, hashlib.blake2b
        digests = b"".join([blake(chat_bytes(c), digest_size=16, key=salt).digest() for c in chats])
        return np.frombuffer(digests, dtype=np.int64).reshape(len(chats), 2)


class ResponseCache:
    def __init__(self, folder: str | Path, flush_rows: int = 4096, flush_seconds: float = 5.0):
        Path(folder).mkdir(parents=True, exist_ok=True)
        self.path = Path(folder) / "responses.sqlite"
        self.db = sqlite3.connect(self.path, timeout=60)
        # answers: the answer itself when there is one (no JSON to encode or decode), else a JSON list
        self.db.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (h INTEGER PRIMARY KEY, "
                        "check_h INTEGER NOT NULL, n INTEGER NOT NULL, answers TEXT NOT NULL)")
        self.db.commit()
        self.flush_rows, self.flush_seconds = flush_rows, flush_seconds
        self._pending: list[tuple[int, int, int, str]] = []
        self._last_flush = time.monotonic()

    def get(self, keys: np.ndarray) -> dict[int, list[str]]:
        """{position in ``keys``: answers} for every cached key, in one query."""
        self.flush()
        self.db.execute("CREATE TEMP TABLE IF NOT EXISTS wanted (h INTEGER PRIMARY KEY, check_h INTEGER, pos INTEGER)")
        self.db.execute("DELETE FROM wanted")
        # a key repeated in one stage (the same prompt twice) is looked up once and given to each
        first = {}
        for pos, (h, c) in enumerate(keys.tolist()):
            first.setdefault((h, c), pos)
        self.db.executemany("INSERT OR IGNORE INTO wanted VALUES (?, ?, ?)", ((h, c, p) for (h, c), p in first.items()))
        rows = self.db.execute(f"SELECT w.pos, r.n, r.answers FROM wanted w JOIN {TABLE} r "
                               "ON r.h = w.h AND r.check_h = w.check_h").fetchall()
        found = {pos: [a] if n == 1 else json.loads(a) for pos, n, a in rows}
        self.db.execute("DELETE FROM wanted")
        self.db.commit()  # ends the read transaction: its shared lock would block other jobs' writes
        if len(first) == len(keys):
            return found
        return {pos: found[first[(h, c)]] for pos, (h, c) in enumerate(keys.tolist()) if first[(h, c)] in found}

    def put(self, keys: np.ndarray, answers: list[list[str]]) -> None:
        """Buffer answers; they are committed every ``flush_rows`` rows or ``flush_seconds``."""
        self._pending += [(h, c, len(a), a[0] if len(a) == 1 else json.dumps(a, ensure_ascii=False))
                          for (h, c), a in zip(keys.tolist(), answers)]
        if len(self._pending) >= self.flush_rows or time.monotonic() - self._last_flush >= self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            self._pending.sort()  # B-tree inserts in key order: several times faster than random order
            self.db.executemany(f"INSERT OR REPLACE INTO {TABLE} VALUES (?, ?, ?, ?)", self._pending)
            self.db.commit()
            self._pending = []
        self._last_flush = time.monotonic()

    def __len__(self) -> int:
        self.flush()
        return self.db.execute(f"SELECT COUNT(*) FROM {TABLE}").fetchone()[0]

    def close(self) -> None:
        self.flush()
        self.db.close()
