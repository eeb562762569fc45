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
stage loses at most those seconds of answers). Few large transactions matter: keys are
random, so each commit touches pages all over the table (35 us per answer in commits of 4096
at 300k rows, 8 us in commits of 65536). A 64-bit ``h`` shared by two prompts costs a cache
miss (one replaces the other), never a wrong answer.

Caches written before this scheme (table ``responses``, SHA-256 of JSON keys) are not read.

Example::

    keys, _ = KeyMaker("transformers:SmolLM2-135M-Instruct", SamplingParams()).keys([chat])   # (1, 2) int64
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

    def keys(self, chats: list[Chat]) -> tuple[np.ndarray, np.ndarray]:
        """(n, 2) int64 keys, and each chat's size in bytes (the stage batches misses by length)."""
        salt, blake = self.salt, hashlib.blake2b
        forms = [chat_bytes(c) for c in chats]
        digests = b"".join([blake(f, digest_size=16, key=salt).digest() for f in forms])
        return np.frombuffer(digests, dtype=np.int64).reshape(len(chats), 2), np.fromiter(map(len, forms), np.int64, len(forms))


class ResponseCache:
    def __init__(self, folder: str | Path, flush_rows: int = 65_536, flush_seconds: float = 5.0):
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
        # a prompt repeated in one stage is looked up once (at its first position) and given to each
        _, first, inverse = np.unique(keys[:, 0], return_index=True, return_inverse=True)
        self.db.execute("CREATE TEMP TABLE IF NOT EXISTS wanted (h INTEGER PRIMARY KEY, check_h INTEGER, pos INTEGER)")
        self.db.executemany("INSERT INTO wanted VALUES (?, ?, ?)",
                            zip(keys[first, 0].tolist(), keys[first, 1].tolist(), first.tolist()))
        rows = self.db.execute(f"SELECT w.pos, r.n, r.answers FROM wanted w JOIN {TABLE} r "
                               "ON r.h = w.h AND r.check_h = w.check_h").fetchall()
        self.db.execute("DELETE FROM wanted")
        self.db.commit()  # ends the read transaction: its shared lock would block other jobs' writes
        found = {pos: [a] if n == 1 else json.loads(a) for pos, n, a in rows}
        if len(first) == len(keys):
            return found
        source = first[inverse.ravel()]
        same = (keys[source] == keys).all(axis=1)  # the whole key, not only h, must repeat
        return {p: found[s] for p, s in enumerate(source.tolist()) if s in found and same[p]}

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
