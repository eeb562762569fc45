"""The Ray Train job both trainers run (the embedder's and the LLM's DPO): its resources, checked
before it starts, its collective backend and its workers' environment, in one place.

Example::

    trainer = torch_trainer(train_func, {"steps": 10}, TrainJob("DPO", num_workers=1, cpus_per_worker=2,
                            use_gpu=False, keys="cotrain.dpo.num_workers, cpus_per_worker or use_gpu"),
                            name="dpo", storage="/tmp/run/ray_train")
    result = trainer.fit()
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from llmclust.devices import collective_backend
from llmclust.ray_session import require_resources

if TYPE_CHECKING:
    from ray.train import CheckpointConfig

# Ray Train hands every print() in a worker to its logger too. That copies what a library prints
# into a capture of its own (dill disassembling trl's functions while datasets fingerprints a
# map: some 340 lines a DPO run) into the job's log, and prints every Trainer loss line twice.
WORKER_ENV = {"RAY_TRAIN_ENABLE_PRINT_PATCH": "0"}


@dataclass(frozen=True)
class TrainJob:
    what: str  # named in the error when the cluster cannot hold the workers
    num_workers: int
    cpus_per_worker: float
    use_gpu: bool
    keys: str  # the settings that size the job, named in that error


def torch_trainer(train_func: Callable[[dict], None], config: dict, job: TrainJob, name: str,
                  storage: str | Path, checkpoint_config: CheckpointConfig | None = None):
    """A ``TorchTrainer`` for ``job``, once the cluster is known to hold its workers (else a clear
    error naming ``job.keys``): NCCL between GPU workers, gloo otherwise; checkpoints and Ray
    Train's own files under ``storage/name``."""
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    require_resources(job.what, {"CPU": job.cpus_per_worker, "GPU": 1 if job.use_gpu else 0}, job.num_workers,
                      job.keys)
    return TorchTrainer(
        train_func,
        train_loop_config=config,
        scaling_config=ScalingConfig(num_workers=job.num_workers, use_gpu=job.use_gpu,
                                     resources_per_worker={"CPU": job.cpus_per_worker}),
        torch_config=TorchConfig(backend=collective_backend(job.use_gpu)),
        run_config=RunConfig(name=name, storage_path=str(Path(storage).resolve()), checkpoint_config=checkpoint_config,
                             worker_runtime_env={"env_vars": WORKER_ENV}),
    )
