"""GPU steps run on a Ray worker holding a GPU, never in the driver (the head pod on KubeRay);
CPU code (faiss-cpu, umap-learn without cuML) never goes to a GPU task."""

import os
import subprocess
import sys
import textwrap

import pytest
from helpers import REPO
from llmclust.pipeline.placement import run_placed


def test_without_gpus_the_step_runs_in_this_process(monkeypatch):
    monkeypatch.setattr("llmclust.pipeline.placement.cluster_gpus", lambda: 0)  # whatever Ray this session has
    assert run_placed(os.getpid, use_gpu="auto", what="step") == os.getpid()
    with pytest.raises(RuntimeError, match="step: use_gpu=always but the Ray cluster has no GPU"):
        run_placed(os.getpid, use_gpu="always", what="step")


@pytest.mark.slow
def test_with_a_gpu_in_the_cluster_gpu_code_runs_on_a_worker_and_cpu_code_here(tmp_path):
    """A local Ray with one (declared) GPU: steps whose library has GPU code land in a task that
    holds it, with the same results as in the driver; CPU-only code (faiss-cpu here, umap-learn
    without cuML) stays in this process, and ``always`` says what to install; an idle actor holding
    the GPU is released for such a step (``ray_session.make_room``) instead of the step waiting."""
    script = textwrap.dedent("""
        import os, numpy as np, ray
        from llmclust.pipeline.placement import run_placed
        from llmclust.pipeline.neighbours import NeighboursConfig, knn
        from llmclust.pipeline.clustering import ClusteringConfig, cluster_over_seeds
        ray.init(num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False)
        assert run_placed(os.getpid, use_gpu="auto", what="t") != os.getpid()
        assert run_placed(os.getpid, use_gpu="never", what="t") == os.getpid()
        assert run_placed(os.getpid, use_gpu="auto", what="t", gpu_code=False) == os.getpid()
        try:
            run_placed(os.getpid, use_gpu="always", what="umap", gpu_code=False)
            raise AssertionError("always without GPU code must fail")
        except RuntimeError as err:
            assert "install faiss-gpu / cuML" in str(err)
        assert ray.get(ray.remote(num_gpus=1)(lambda: ray.get_gpu_ids()).remote()) == [0]
        x = np.random.default_rng(0).normal(size=(500, 16)).astype(np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        cfg = NeighboursConfig(k=5)
        np.testing.assert_array_equal(run_placed(knn, x, cfg, use_gpu="auto", what="knn")[0], knn(x, cfg)[0])
        km = ClusteringConfig(n_clusters=4, seeds=[0], algorithm="faiss")
        remote = run_placed(cluster_over_seeds, x, km, use_gpu="auto", what="kmeans")[0]
        np.testing.assert_array_equal(remote.labels, cluster_over_seeds(x, km)[0].labels)
        # an idle actor holds the GPU (as LLM engines kept between stages do): the step frees it
        from llmclust import ray_session
        holder = ray.remote(num_gpus=1)(type("Idle", (), {"ping": lambda self: 1})).remote()
        ray.get(holder.ping.remote())
        ray_session.on_shortage(lambda: ray.kill(holder))
        assert run_placed(os.getpid, use_gpu="auto", what="t") != os.getpid()
        print("ok")
    """)
    env = {**os.environ, "PYTHONPATH": str(REPO / "libs")}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-3000:]
