"""What the benchmarks share: where the checkout, the data and the results are, and how a result is written.

Every benchmark is a script (``python benchmarks/<name>.py``), so this folder is on its path:

    from common import RESULTS, TEST_CSV, write_result
    write_result(RESULTS / "x.json", {"acc": 67.7})      # indented JSON, printed too
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "libs"))  # this checkout's llmclust, whether or not it is installed
BANKING77 = REPO.parent / "shared" / "data" / "banking77"
TEST_CSV = BANKING77 / "test.csv"  # 3080 texts, 77 intents
TRAIN_CSV = BANKING77 / "train.csv"  # 10,003 texts, 77 intents
RESULTS = REPO / "benchmarks" / "results"


def write_result(path: str | Path, result: dict, shown: dict | None = None, indent: int = 2) -> None:
    """Write ``result`` to ``path`` as JSON (folders made) and print ``shown`` (default: all of it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=indent, default=str) + "\n")
    print(json.dumps(result if shown is None else shown, indent=2, default=str))
