"""Ray start-up, in one place: which cluster to join (or start), and where its output goes.

:func:`init_ray` joins the cluster named by ``ray.address`` or ``$RAY_ADDRESS`` (``ray job
submit`` sets it), else starts a local Ray; :meth:`TextClusterer.fit` calls it, so the Python
API needs nothing else. :func:`start_ray` is what the job scripts call: the same, and Ray's
worker output and raylet messages routed to the job's log (``job.log``) instead of the terminal.

Example::

    init_ray(RayConfig(num_cpus=2))                     # a local Ray with two CPUs
    start_ray(RayConfig(), verbose=False)               # a job: worker output -> job.log

It also keeps the resource checks every stage makes before it asks Ray for actors:
:func:`require_resources` fails at once on a request the cluster can never meet, and
:func:`make_room` releases actors kept idle between stages when a stage needs their share.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Callable

from llmclust.config import expect

# Ray worker and actor output, re-logged line by line: below ERROR, so job.log only
workers_log = logging.getLogger("ray_workers")
_ray_print_to_stdstream = None  # Ray's own, while start_ray has replaced it


@dataclass
class RayConfig:
    address: str = ""  # empty: $RAY_ADDRESS if set (ray job submit), else start Ray locally
    num_cpus: int = 0  # local Ray only; 0: all cores
    num_gpus: int = -1  # local Ray only; -1: detect

    def __post_init__(self):
        expect(self.num_cpus >= 0, "num_cpus", self.num_cpus, "0 (all cores) or a positive integer")


class ResourcesUnavailable(RuntimeError):
    """A stage asks for more CPUs or GPUs than the whole Ray cluster has: it would wait forever."""


_idle_holders: list[Callable[[], None]] = []


def on_shortage(release: Callable[[], None]) -> None:
    """Register ``release``: it frees resources that idle actors hold (the LLM engines, kept
    loaded between stages), and :func:`make_room` calls it when a stage needs them."""
    _idle_holders.append(release)


def make_room(per_unit: dict[str, float], units: int = 1) -> None:
    """Release idle holders (:func:`on_shortage`) unless ``units`` x ``per_unit`` fit in what the
    nodes have free now, each unit on one node, so that the stage asking gets them instead of
    waiting for actors nobody uses."""
    import ray

    if not ray.is_initialized():
        return
    if not fits_now(per_unit, units):
        for release in _idle_holders:
            release()


def one_cpu_tasks(fn: Callable, calls: list[tuple]) -> list:
    """``fn(*call)`` for every call at once, each a Ray task of one CPU (after :func:`make_room`
    for all of them); the results in the calls' order."""
    import ray

    make_room({"CPU": 1}, len(calls))  # idle LLM engines must not hold the CPUs the tasks wait for
    task = ray.remote(num_cpus=1)(fn)
    return ray.get([task.remote(*call) for call in calls])


def fits_now(per_unit: dict[str, float], units: int) -> bool:
    """:func:`fits` against what the connected cluster's nodes have free now."""
    from ray._private.state import available_resources_per_node

    return fits(per_unit, units, list(available_resources_per_node().values()))


def fits(per_unit: dict[str, float], units: int, free_by_node: list[dict[str, float]]) -> bool:
    """Whether ``units`` x ``per_unit`` can be placed now, each unit whole on one node (first fit)."""
    free = [dict(node) for node in free_by_node]
    wanted = {r: need for r, need in per_unit.items() if need}
    for _ in range(units):
        node = next((n for n in free if all(n.get(r, 0) >= need for r, need in wanted.items())), None)
        if node is None:
            return False
        for r, need in wanted.items():
            node[r] -= need
    return True


def require_resources(what: str, per_unit: dict[str, float], units: int, keys: str) -> None:
    """Fail now, naming the resources and the keys to change, when ``units`` x ``per_unit``
    (e.g. 2 actors x {"CPU": 2, "GPU": 1}) exceeds the Ray cluster's total: Ray would queue the
    request forever ("infeasible") and the job would hang without a word. Otherwise make room
    for them (:func:`make_room`)."""
    import ray

    if not ray.is_initialized():
        return
    total = ray.cluster_resources()
    short = {r: (units * need, total.get(r, 0)) for r, need in per_unit.items()
             if need and units * need > total.get(r, 0)}
    if short:
        wanted = ", ".join(f"{need:g} {r}" for r, (need, _) in short.items())
        have = ", ".join(f"{have:g} {r}" for r, (_, have) in short.items())
        raise ResourcesUnavailable(
            f"{what} needs {wanted} ({units} x {per_unit}) but the Ray cluster has only {have} in all; "
            f"lower {keys}, or add nodes with those resources")
    make_room(per_unit, units)


# Ray internals that poll Ray's State API once a second, which a Ray started here cannot answer (it
# has no dashboard): Ray Train's placement-group cleaner warns at every poll of a training run
STATE_API_POLLERS = ("ray.train.v2._internal.execution.controller.placement_group_cleaner",)


def quiet_state_api_pollers() -> None:
    """Every worker of a Ray started by :func:`init_ray` runs this first (runtime_env's
    ``worker_process_setup_hook``): :data:`STATE_API_POLLERS` keep their errors, not their warnings."""
    for name in STATE_API_POLLERS:
        logging.getLogger(name).setLevel(logging.ERROR)


def init_ray(cfg: RayConfig) -> None:
    """Connect to the cluster named by the config or $RAY_ADDRESS, else start Ray locally."""
    import ray

    if ray.is_initialized():
        return
    address = cfg.address or os.environ.get("RAY_ADDRESS") or None
    kwargs = {"log_to_driver": True}
    if address is None:
        kwargs.update(num_cpus=cfg.num_cpus or None, include_dashboard=False,
                      runtime_env={"worker_process_setup_hook": f"{__name__}.quiet_state_api_pollers"})
        if cfg.num_gpus >= 0:
            kwargs["num_gpus"] = cfg.num_gpus
    ray.init(address=address, **kwargs)


def _log_worker_lines(data: dict) -> None:
    who = data.get("actor_name") or data.get("task_name") or "worker"
    lines = data.get("lines", [])
    if data.get("pid") == "autoscaler":  # its whole cluster status every 5 s: keep its events, as Ray does
        from ray._private.worker import filter_autoscaler_events

        lines = filter_autoscaler_events(lines)
    for line in lines:
        workers_log.info("(%s pid=%s) %s", who, data.get("pid"), line)


def _log_cluster_messages(data: dict, ignore_prefix: bool = False) -> None:
    """Messages Ray's raylet and GCS push to the driver, into job.log (see :func:`start_ray`)."""
    for line in data.get("lines", []):
        workers_log.warning("(%s) %s", data.get("pid") or "raylet", line)


def start_ray(ray_cfg, verbose: bool = False) -> None:
    """Start or join Ray (:func:`init_ray`); worker output goes to job.log unless ``verbose``.

    Two streams reach a Ray driver's terminal besides Python logging, and both go to job.log:
    the output of workers and actors (the log monitor), and the messages the raylet pushes to the
    driver: "A worker died or was killed while executing a task by an unexpected system error"
    when a worker crashes (Ray then retries the task, and the job usually goes on), "N worker
    processes have been started" on a loaded machine. A job that really fails says so with its
    own exception and the path of job.log.
    """
    init_ray(ray_cfg)
    import ray._private.worker as ray_worker

    global _ray_print_to_stdstream
    if _ray_print_to_stdstream is None:
        _ray_print_to_stdstream = getattr(ray_worker, "print_to_stdstream", None)
    if verbose and _ray_print_to_stdstream is not None:  # Ray's own printing back, after a quiet job
        ray_worker.print_to_stdstream = _ray_print_to_stdstream
    if not verbose:
        # ray 2.60 (pinned) prints worker output through this dispatcher's "ray_print_logs"
        # handler; swapping it keeps the lines, in job.log, instead of dropping them with
        # ray.init(log_to_driver=False)
        from ray._private.ray_logging import (
            global_worker_stdstream_dispatcher as dispatcher,
        )

        dispatcher.remove_handler("ray_print_logs")
        dispatcher.remove_handler("llmclust_job_log")  # a second job in the same process
        dispatcher.add_handler("llmclust_job_log", _log_worker_lines)
        # the raylet's pushed messages bypass the dispatcher: ray_listen_error_messages (a driver
        # thread) hands each to ray._private.worker.print_to_stdstream, which prints to stdout
        if _ray_print_to_stdstream is not None:
            ray_worker.print_to_stdstream = _log_cluster_messages
