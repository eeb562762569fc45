import json

import pytest
from llmclust.ray_session import ResourcesUnavailable
from llmclust.training.ray_trainer import TrainJob, torch_trainer


@pytest.mark.slow
def test_a_workers_captured_prints_stay_in_their_capture(ray_cluster, tmp_path):
    """Ray Train copies every print of a worker to its logger, inside a library's own capture too:
    some 340 lines of disassembled trl code reached each DPO job's log, every loss line came twice."""

    def print_in_a_capture(config):  # defined here: Ray pickles it by value, a test module is not importable there
        """What a library does to read a function's output (dill disassembling code while datasets
        fingerprints a map): print into a redirected stdout."""
        import builtins
        import contextlib
        import io
        import json
        import logging

        leaked = []

        class Catch(logging.Handler):
            def emit(self, record):
                leaked.append(record.getMessage())

        root = logging.getLogger()
        root.setLevel(logging.INFO)  # the patch logs at INFO: a level that drops it must not hide the leak
        root.addHandler(Catch())
        with contextlib.redirect_stdout(io.StringIO()) as captured:
            print("meant for the capture only")
        facts = {"leaked": leaked, "captured": captured.getvalue(), "patched": builtins.print.__module__ != "builtins"}
        with open(config["out"], "w") as out:  # one machine: the test reads it back
            json.dump(facts, out)

    job = TrainJob("print test", num_workers=1, cpus_per_worker=1, use_gpu=False, keys="-")
    torch_trainer(print_in_a_capture, {"out": str(tmp_path / "facts.json")}, job, "prints", tmp_path).fit()
    metrics = json.loads((tmp_path / "facts.json").read_text())
    assert metrics["captured"] == "meant for the capture only\n"
    assert metrics["leaked"] == [] and not metrics["patched"]


@pytest.mark.slow
def test_a_job_the_cluster_cannot_hold_names_its_settings(ray_cluster, tmp_path):
    job = TrainJob("DPO", num_workers=64, cpus_per_worker=2, use_gpu=False, keys="cotrain.dpo.num_workers")
    with pytest.raises(ResourcesUnavailable, match="lower cotrain.dpo.num_workers"):
        torch_trainer(print, {}, job, "too_big", tmp_path)


PROBE_A_DETACHED_ACTOR = """
import logging, sys
import ray
from llmclust.ray_session import STATE_API_POLLERS, RayConfig, init_ray

if sys.argv[1] == "init_ray":
    init_ray(RayConfig(num_cpus=1, num_gpus=0))
else:  # the same local Ray without the setup hook
    ray.init(num_cpus=1, num_gpus=0, include_dashboard=False)


@ray.remote(num_cpus=0)
class Probe:
    def level(self):
        return logging.getLogger(STATE_API_POLLERS[0]).getEffectiveLevel()


@ray.remote(num_cpus=0)
class Controller:  # as Ray Train's controller launches its cleaner: a detached actor, from an actor
    def cleaner_level(self):
        return ray.get(Probe.options(lifetime="detached").remote().level.remote())


print("LEVEL", ray.get(Controller.remote().cleaner_level.remote()))
"""


@pytest.mark.slow
@pytest.mark.parametrize("start", ["init_ray", "plain"])
def test_a_local_ray_keeps_ray_trains_state_api_polling_quiet(start):
    """A Ray started here has no dashboard, so no State API: Ray Train's placement-group cleaner
    warned once a second of every training run, into job.log or a notebook. Where it logs, in a detached actor an actor starts, keeps only errors.
    (Counting the warnings themselves needs the only Ray on the machine: with a second one the
    State API client fails another way, and the suite keeps one running.)"""
    import logging
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", PROBE_A_DETACHED_ACTOR, start], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    level = int(out.stdout.split("LEVEL")[-1])
    assert level == logging.ERROR if start == "init_ray" else level <= logging.WARNING  # plain: its warnings shown
