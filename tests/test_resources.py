"""A stage asking for more than the Ray cluster has stops with a message instead of waiting forever;
idle holders are released when what a stage asks does not fit in what the nodes have free.

That every job finishes on a one-GPU node with every GPU setting on is the clusterer contract
(tests/methods/test_contract.py): it fits all four methods with ``helpers.GPU_ON`` on the tests'
Ray, which declares one GPU that torch cannot see, so the embed actors, the LLM engines and the
Ray Train workers each wait for it as on a real node while every device stays the CPU.
"""

import subprocess
import sys

import pytest
from helpers import REPO, SMALL_CSV, job_env
from llmclust.ray_session import fits

pytestmark = pytest.mark.slow


def test_a_stage_asking_for_more_gpus_than_the_cluster_has_stops_with_a_message(tmp_path):
    job = [sys.executable, str(REPO / "cluster_jobs" / "baseline.py"), "--no-report", f"corpus.path={SMALL_CSV}",
           "corpus.limit=16", f"run.dir={tmp_path / 'run'}", "clustering.n_clusters=4", "ray.num_gpus=1",
           "embedding.gpus_per_actor=2"]
    out = subprocess.run(job, cwd=REPO, env=job_env(), capture_output=True, text=True, timeout=300)
    assert out.returncode == 2, out.stderr[-3000:]
    assert ("the embed stage needs 2 GPU" in out.stderr and "has only 1 GPU" in out.stderr
            and "embedding.gpus_per_actor" in out.stderr), out.stderr[-3000:]


def test_room_is_counted_per_node_each_unit_whole():
    # 4 CPUs free in all but 2 on each node: an actor of 4 CPUs fits nowhere, so idle holders must go
    two_nodes = [{"CPU": 2.0, "GPU": 1.0}, {"CPU": 2.0}]
    assert not fits({"CPU": 4}, 1, two_nodes)
    assert fits({"CPU": 2}, 2, two_nodes)
    assert not fits({"CPU": 1, "GPU": 1}, 2, two_nodes)  # one GPU in all
    assert fits({"CPU": 1, "GPU": 0}, 4, two_nodes)  # a zero ask is no ask
    assert two_nodes == [{"CPU": 2.0, "GPU": 1.0}, {"CPU": 2.0}]  # what the nodes have is left alone
