"""The subprocess side of the kill cases: run one job step and SIGKILL this process at a chosen point.

    python tests/reliability/driver.py publish RUN_DIR KILL_AT [section.key=value ...]
    python tests/reliability/driver.py llm RUN_DIR

``publish``: the suite's baseline job over a copy of a finished run (every embedding reused,
Ray not started), killed while publishing: ``KILL_AT`` is ``staged`` (final files written to
the staging folder, none moved in yet) or the name of a published file (killed right after
it was moved in). ``llm``: the LLM stage over 20 texts with a slow fake backend (1 s a batch), until killed.
"""

import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the helpers harness imports
from harness import LabelBackend, job_config, label_stage


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def publish(run_dir: Path, kill_at: str, overrides: list[str]) -> None:
    import llmclust.methods.base
    import llmclust.pipeline.embedding
    from llmclust.methods import KMeansClusterer
    from llmclust.store.runs import RunDir

    def no_embedding(*args, **kwargs):
        raise AssertionError("publish cases must reuse the stored embeddings")

    llmclust.pipeline.embedding.embed_with_ray = no_embedding
    llmclust.methods.base.init_ray = lambda cfg: None
    move, publish_ = os.replace, RunDir.publish

    def replace(src, dst):
        move(src, dst)
        if Path(src).parent.name == ".publishing" and Path(dst).name == kill_at:
            die()

    def staged_then_die(self, staged, **result):
        if kill_at == "staged":
            die()
        return publish_(self, staged, **result)

    os.replace, RunDir.publish = replace, staged_then_die
    KMeansClusterer(job_config(run_dir, *overrides)).fit()


if __name__ == "__main__":
    what, run_dir, *rest = sys.argv[1:]
    if what == "publish":
        publish(Path(run_dir), rest[0], rest[1:])
    else:
        label_stage(Path(run_dir), LabelBackend(delay=1.0))  # the cache commits every few seconds
