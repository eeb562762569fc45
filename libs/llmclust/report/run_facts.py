"""What a finished run directory says about how it went, read for the report.

Every stage folder's manifest.json gives rows and seconds (LLM stages add calls, cache hits,
parse failures and backend errors); corpus/rejected.parquet lists rejected rows with their
reason. What a method adds of its own (ClusterLLM's choice of K, co-training's iterations) it
reads itself (:meth:`llmclust.methods.base.TextClusterer.report_sections`).

Example::

    facts = read_run_facts(Path("runs/local"))
    facts.result["k"], [s.name for s in facts.stages], facts.rejected_by_reason
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from llmclust import schema
from llmclust.store.finished import read_run
from llmclust.store.runs import MANIFEST

REJECTED_SHOWN = 20  # example rows per report; the counts cover all of them
LLM_COUNTS = ("calls", "cache_hits", "parse_failures", "errors")  # what an LLM stage's manifest counts


@dataclass
class StageFacts:
    name: str
    rows: int
    seconds: float
    finished_at: str
    llm: dict | None  # calls, cache_hits, parse_failures, errors of an LLM stage


@dataclass
class RunFacts:
    result: dict  # result.json
    config_text: str  # config.yaml as written
    config: dict
    stages: list[StageFacts]  # in the order they finished
    rejected_by_reason: dict[str, int]
    rejected_examples: list[dict]  # id, reason, text


def stage_facts(run_path: Path) -> list[StageFacts]:
    manifests = [json.loads(p.read_text()) for p in run_path.glob(f"*/{MANIFEST}")]
    out = []
    for m in sorted(manifests, key=lambda m: m.get("finished_at", "")):
        llm = {k: m[k] for k in LLM_COUNTS if k in m} or None
        out.append(StageFacts(m["stage"], m["rows"], m["seconds"], m.get("finished_at", ""), llm))
    return out


def read_run_facts(run_path: Path) -> RunFacts:
    """The facts of the finished run in ``run_path``; a clear error when it is not one."""
    result = read_run(str(run_path))
    config_text = (run_path / "config.yaml").read_text()
    rejected_file = run_path / result.get("rejected", "corpus/rejected.parquet")
    rejected = (pq.read_table(rejected_file) if rejected_file.exists()
                else pa.table({schema.REASON: pa.array([], pa.string())}))
    reasons = rejected.column(schema.REASON).value_counts().to_pylist()
    return RunFacts(
        result=result, config_text=config_text, config=yaml.safe_load(config_text) or {},
        stages=stage_facts(run_path),
        rejected_by_reason={r["values"]: r["counts"] for r in reasons},
        rejected_examples=rejected.slice(0, REJECTED_SHOWN).to_pylist(),
    )
