"""Fine-tune a sentence-transformers embedder on tuples of texts as a Ray Train job.

The one training loop for every embedder update (ClusterLLM's triplets, co-training's
contrastive + DEC objective). Generic on purpose: any loss module that takes the list of
per-column embeddings of a batch (``loss([emb_col0, emb_col1, ...]) -> scalar``), with
trainable parameters of its own if it needs them (DEC's centres), and any list of equally
long text tuples. Each worker of a ``TorchTrainer`` (DDP: gloo on CPU, nccl on GPU) takes
its rank's share of the tuples; one forward pass embeds all columns of a batch at once (in
train mode, so a text repeated in two columns gets two dropout views).

Checkpoints (the model, the optimiser, the step and the loss of every step) are written
every ``checkpoint_every`` steps under the storage folder; a killed job started again on
the same storage folder continues from the last one. The final model is copied out as a
plain sentence-transformers folder.

Tuples travel in the train config: ClusterLLM's triplet budgets are thousands of rows,
not millions; a larger dataset would go through ``ray.train.get_dataset_shard`` instead.

Example::

    from llmclust.training.triplet_infonce import TripletInfoNCELoss
    result = train_embedder([("lost card", "card missing", "top up failed")] * 8,
                            TripletInfoNCELoss(0.05), "/path/to/all-MiniLM-L6-v2",
                            "/tmp/out/model", TrainerConfig(max_steps=2, batch_size=4), "/tmp/out/ray")
    result.losses        # one loss per step
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from llmclust.config import expect, expect_choice
from llmclust.devices import worker_device
from llmclust.models import resolve_model
from llmclust.pipeline.embedders import text_features
from llmclust.store.runs import TRANSIENT, Progress, write_json
from llmclust.training.ray_trainer import TrainJob, torch_trainer

log = logging.getLogger(__name__)


@dataclass
class TrainerConfig:
    max_steps: int = 200  # optimiser steps in total (over all epochs)
    batch_size: int = 32  # tuples per step per worker
    learning_rate: float = 2e-5  # peak learning rate (AdamW)
    lr_schedule: str = "linear"  # linear: warm-up then linear decay to zero | constant
    warmup_fraction: float = 0.1  # of the steps (linear schedule)
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0  # 0: no clipping
    max_seq_length: int = 64  # tokens per text while training (short texts: faster steps)
    num_workers: int = 1  # Ray Train workers (DDP processes)
    cpus_per_worker: float = 2  # also the torch threads of a CPU worker
    use_gpu: bool = False  # one GPU per worker
    checkpoint_every: int = 50  # steps between checkpoints
    seed: int = 0

    def __post_init__(self):
        for key in ("max_steps", "batch_size", "num_workers", "checkpoint_every", "max_seq_length"):
            expect(getattr(self, key) > 0, key, getattr(self, key), "a positive integer")
        expect(self.learning_rate > 0, "learning_rate", self.learning_rate, "a positive learning rate, e.g. 2e-5")
        expect_choice("lr_schedule", self.lr_schedule, ["linear", "constant"])
        expect(0 <= self.warmup_fraction < 1, "warmup_fraction", self.warmup_fraction, "a fraction in [0, 1)")
        expect(self.weight_decay >= 0, "weight_decay", self.weight_decay, "0 or more")
        expect(self.max_grad_norm >= 0, "max_grad_norm", self.max_grad_norm, "0 (no clipping) or a positive number")
        expect(self.cpus_per_worker > 0, "cpus_per_worker", self.cpus_per_worker, "a positive number")


@dataclass
class TrainResult:
    model_dir: str
    losses: list[float]  # rank 0's batch loss at every step
    seconds: float
    steps: int
    rows: int  # training tuples
    settings: dict = field(default_factory=dict)

    LOSSES = "losses.json"

    def write(self, stage) -> dict:
        """Save the losses in ``stage``; the manifest fields of a training stage."""
        write_json(stage.file(self.LOSSES), self.losses)
        return {"rows": self.rows, "steps": self.steps, "train_seconds": round(self.seconds, 1),
                "loss_start": self.losses[0], "loss_end": self.losses[-1], "model": self.model_dir}

    @classmethod
    def read(cls, stage) -> "TrainResult":
        """What :meth:`write` stored, back from a finished stage."""
        m = stage.manifest
        return cls(m["model"], stage.read_json(cls.LOSSES), m["train_seconds"], m["steps"], m["rows"])


def batch_indices(n: int, batch: int, step: int, seed: int) -> np.ndarray:
    """Rows of ``step``: a fresh permutation per epoch, so a resumed run sees the same batches."""
    per_epoch = max(n // batch, 1)
    epoch, position = divmod(step, per_epoch)
    order = np.random.default_rng(seed + epoch).permutation(n)
    return order[position * batch:(position + 1) * batch]


def _lr_factor(step: int, total: int, warmup: int, schedule: str) -> float:
    if schedule == "constant":
        return 1.0
    if step < warmup:
        return (step + 1) / warmup
    return max(0.0, (total - step) / max(1, total - warmup))


def train_func(config: dict) -> None:
    """One Ray Train worker: settings only from ``config`` (see :func:`train_embedder`)."""
    import ray.train
    import ray.train.torch
    import torch
    from sentence_transformers import SentenceTransformer

    cfg = TrainerConfig(**config["trainer"])
    logging.basicConfig(level=logging.INFO)  # workers start without a handler: progress lines need one
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    if not cfg.use_gpu:
        torch.set_num_threads(max(1, int(cfg.cpus_per_worker)))
    torch.manual_seed(cfg.seed + rank)

    checkpoint = ray.train.get_checkpoint()
    state = {"step": 0, "losses": []}
    if checkpoint:
        with checkpoint.as_directory() as folder:
            model = SentenceTransformer(os.path.join(folder, "model"), device="cpu")
            optimizer_state = torch.load(os.path.join(folder, "optimizer.pt"))
            loss_state = torch.load(os.path.join(folder, "loss.pt"))
            state = json.loads(Path(folder, "state.json").read_text())
    else:
        model = SentenceTransformer(config["model_path"], device="cpu")
        optimizer_state = loss_state = None
    model.max_seq_length = cfg.max_seq_length
    model.train()
    # find_unused_parameters: a backbone's pooler may not feed the sentence embedding
    device = worker_device()
    ddp = ray.train.torch.prepare_model(model, move_to_device=device,
                                        parallel_strategy_kwargs={"find_unused_parameters": True})
    loss_fn: torch.nn.Module = config["loss"].to(device)
    if loss_state:
        loss_fn.load_state_dict(loss_state)
    loss_params = list(loss_fn.parameters())  # e.g. DEC's centres; not inside DDP, so averaged by hand
    optimizer = torch.optim.AdamW([*model.parameters(), *loss_params], lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    if optimizer_state:
        optimizer.load_state_dict(optimizer_state)
    warmup = int(cfg.warmup_fraction * cfg.max_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: _lr_factor(s, cfg.max_steps, warmup, cfg.lr_schedule), last_epoch=state["step"] - 1)
    tuples = config["tuples"][rank::world]
    columns = len(tuples[0])
    progress = Progress(f"train worker {rank}", cfg.max_steps - state["step"], every=30, unit="steps")

    for step in range(state["step"], cfg.max_steps):
        rows = [tuples[i] for i in batch_indices(len(tuples), cfg.batch_size, step, cfg.seed)]
        # one padded forward pass for all columns: column-major, split back afterwards
        features = text_features(model, [row[c] for c in range(columns) for row in rows])
        features = {k: v.to(device) for k, v in features.items() if torch.is_tensor(v)}
        embeddings = ddp(features)["sentence_embedding"]
        loss = loss_fn(list(embeddings.split(len(rows))))
        optimizer.zero_grad()
        loss.backward()
        if world > 1:
            for param in loss_params:
                torch.distributed.all_reduce(param.grad)
                param.grad /= world
        if cfg.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
        optimizer.step()
        scheduler.step()
        state["losses"].append(float(loss.detach()))
        state["step"] = step + 1
        progress.update(1)
        if state["step"] % cfg.checkpoint_every == 0 or state["step"] == cfg.max_steps:
            _report(model, loss_fn, optimizer, state, rank)


def _report(model, loss_fn, optimizer, state: dict, rank: int) -> None:
    """Every worker reports; rank 0 attaches the checkpoint (the DDP replicas are identical)."""
    import ray.train
    import torch

    metrics = {"step": state["step"], "loss": state["losses"][-1]}
    if rank != 0:
        ray.train.report(metrics, checkpoint=None)
        return
    with tempfile.TemporaryDirectory() as folder:
        model.save(os.path.join(folder, "model"))
        torch.save(optimizer.state_dict(), os.path.join(folder, "optimizer.pt"))
        torch.save(loss_fn.state_dict(), os.path.join(folder, "loss.pt"))
        Path(folder, "state.json").write_text(json.dumps(state))
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(folder))


def train_embedder(tuples: list[tuple[str, ...]], loss, model_path: str, out_dir: str | Path,
                   cfg: TrainerConfig, storage: str | Path, name: str = "train") -> TrainResult:
    """Run the Ray Train job; the fine-tuned sentence-transformers folder lands in ``out_dir``."""
    from ray.train import CheckpointConfig

    if not tuples:
        raise ValueError("train_embedder got no training tuples; expected at least one (anchor, positive, ...) row")
    widths = {len(t) for t in tuples}
    if len(widths) != 1:
        raise ValueError(f"training tuples have mixed lengths {sorted(widths)}; expected one length")
    if len(tuples) < cfg.num_workers:
        raise ValueError(f"{len(tuples)} tuples for num_workers={cfg.num_workers}; expected at least one per worker")
    start = time.time()
    # resolved here: a relative path means nothing in a worker's own working directory
    # the trainer's own fields only: a subclass (co-training's) adds its loss settings
    config = {"trainer": {f.name: getattr(cfg, f.name) for f in fields(TrainerConfig)},
              "model_path": resolve_model(str(model_path)), "tuples": [tuple(t) for t in tuples], "loss": loss}
    job = TrainJob(f"training ({name})", cfg.num_workers, cfg.cpus_per_worker, cfg.use_gpu,
                   "the trainer's num_workers, cpus_per_worker or use_gpu")
    trainer = torch_trainer(train_func, config, job, name, storage, CheckpointConfig(num_to_keep=1))
    log.info("training the embedder: %d tuples, %d steps of %d on %d worker(s)",
             len(tuples), cfg.max_steps, cfg.batch_size, cfg.num_workers, extra=TRANSIENT)
    result = trainer.fit()
    out_dir = Path(out_dir)
    with result.checkpoint.as_directory() as folder:
        state = json.loads(Path(folder, "state.json").read_text())
        if out_dir.exists():
            shutil.rmtree(out_dir)
        shutil.copytree(Path(folder, "model"), out_dir)
    seconds = time.time() - start
    losses = state["losses"]
    log.info("trained %d steps in %.0f s; loss %.4f -> %.4f; model in %s",
             state["step"], seconds, losses[0], losses[-1], out_dir)
    return TrainResult(str(out_dir), losses, seconds, state["step"], len(tuples), asdict(cfg))
