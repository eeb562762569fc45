"""A finished run, as its readers (serve, report, the CLI) see it: result.json and the embedder it names.

Example::

    result = read_run("runs/local")              # FileNotFoundError with what to pass when it is not a run
    find_embedder(result["embedder"], Path("runs/local"))
"""

from __future__ import annotations

from pathlib import Path

from llmclust.models import ModelNotFound, resolve_model
from llmclust.store.runs import RunDir


def read_run(run_dir: str) -> dict:
    """The run's result.json; a clear error (and no folder created) when it is not a finished run."""
    if not Path(run_dir).is_dir():
        raise FileNotFoundError(f"run_dir={run_dir!r} does not exist; pass the run.dir of a finished job "
                                "(e.g. python cluster_jobs/baseline.py ... run.dir=/tmp/serve-run)")
    return RunDir(run_dir).read_result()


def find_embedder(name: str, run_path: Path) -> str:
    """A path relative to the run (a fine-tuned embedder saved inside it), else a local path or an embedded default."""
    inside = run_path / name
    if not Path(name).is_absolute() and inside.exists():
        return str(inside)
    try:
        return resolve_model(name)
    except ModelNotFound as err:
        raise FileNotFoundError(f"embedder {name!r} of run {run_path} is not on this node ({err}); "
                                "set serve option embedder=<local path of the same model>") from None
