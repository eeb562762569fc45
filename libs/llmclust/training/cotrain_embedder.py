"""The co-training embedder update, as a Ray Train job.

Loss per batch of (text, greedy interpretation) rows, with E the embedder in train mode:

* contrastive: InfoNCE between E(text) and E(interpretation) with in-batch negatives, and
  InfoNCE between E(interpretation) and a second forward of the same interpretation (another
  dropout mask), averaged;
* DEC: KL(P || Q) of E(interpretation) against trainable centres initialised by KMeans,
  weighted by ``dec_weight``.

Rows come from a Ray Dataset sharded over the workers; rank 0 saves the fine-tuned
sentence-transformers folder as the checkpoint.

Example::

    table = pa.table({"text": ["lost card", "top up failed"], "interpretation": ["Keywords: card", "Keywords: top up"]})
    result = train_embedder(table, "all-MiniLM-L6-v2", centres, EmbedderTrainConfig(max_steps=2), out_dir)
    result["model"]      # out_dir/model, loadable with SentenceTransformer
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from llmclust import schema
from llmclust.config import expect
from llmclust.embedding import text_features
from llmclust.models import resolve_model

log = logging.getLogger(__name__)


@dataclass
class EmbedderTrainConfig:
    learning_rate: float = 3e-7  # seed paper's value for e5-large; small models tolerate more
    batch_size: int = 32
    max_steps: int = 100  # optimiser steps per co-training iteration
    temperature: float = 0.1  # InfoNCE temperature
    dec_weight: float = 1.0  # lambda of the DEC term (the paper uses 10 on topic data sets)
    dec_clusters: int = 256  # trainable DEC centres (capped at the number of texts)
    dec_alpha: float = 1.0  # Student-t degrees of freedom
    max_seq_length: int = 128
    num_workers: int = 1
    cpus_per_worker: float = 2
    use_gpu: bool = False
    seed: int = 0

    def __post_init__(self):
        expect(self.learning_rate > 0, "learning_rate", self.learning_rate, "a positive number")
        expect(self.batch_size >= 2, "batch_size", self.batch_size, "an integer >= 2 (in-batch negatives)")
        expect(self.max_steps > 0, "max_steps", self.max_steps, "a positive integer")
        expect(self.temperature > 0, "temperature", self.temperature, "a positive number")
        expect(self.dec_weight >= 0, "dec_weight", self.dec_weight, "0 (no DEC) or a positive weight")
        expect(self.dec_clusters >= 2, "dec_clusters", self.dec_clusters, "an integer >= 2")
        expect(self.dec_alpha > 0, "dec_alpha", self.dec_alpha, "a positive number")
        expect(self.max_seq_length > 0, "max_seq_length", self.max_seq_length, "a positive integer")
        expect(self.num_workers > 0, "num_workers", self.num_workers, "a positive integer")
        expect(self.cpus_per_worker > 0, "cpus_per_worker", self.cpus_per_worker, "a positive number")


def _batches(shard, batch_size: int, steps: int, seed: int):
    """``steps`` batches of (texts, interpretations), reshuffled each pass over the shard."""
    done, epoch = 0, 0
    while done < steps:
        for batch in shard.iter_batches(batch_size=batch_size, batch_format="numpy", drop_last=True,
                                        local_shuffle_buffer_size=batch_size * 8, local_shuffle_seed=seed + epoch):
            yield list(batch[schema.TEXT]), list(batch[schema.INTERPRETATION])
            done += 1
            if done == steps:
                return
        epoch += 1


def train_func(config: dict) -> None:
    """One Ray Train worker: contrastive + DEC steps, rank 0 reports the saved model."""
    import ray.train
    import ray.train.torch
    import torch
    from sentence_transformers import SentenceTransformer

    from llmclust.training.dec import dec_loss
    from llmclust.training.infonce import info_nce

    cfg = EmbedderTrainConfig(**config["embedder"])
    torch.manual_seed(cfg.seed)
    if not cfg.use_gpu:
        torch.set_num_threads(max(1, int(cfg.cpus_per_worker)))
    device = ray.train.torch.get_device()
    encoder = SentenceTransformer(config["model_path"], device=str(device))
    encoder.max_seq_length = cfg.max_seq_length
    net = ray.train.torch.prepare_model(encoder)  # DDP when there are several workers
    net.train()  # dropout on: two forwards of one text give two views
    centres = torch.nn.Parameter(torch.tensor(np.asarray(config["centres"]), dtype=torch.float32, device=device))
    optimiser = torch.optim.AdamW([*net.parameters(), centres], lr=cfg.learning_rate)

    def embed(texts):
        features = {k: v.to(device) for k, v in text_features(encoder, texts).items() if torch.is_tensor(v)}
        return net(features)["sentence_embedding"]

    history = []
    shard = ray.train.get_dataset_shard("train")
    for texts, interpretations in _batches(shard, cfg.batch_size, cfg.max_steps, cfg.seed):
        e_text, e_int, e_int2 = embed(texts), embed(interpretations), embed(interpretations)
        contrastive = (info_nce(e_text, e_int, cfg.temperature) + info_nce(e_int, e_int2, cfg.temperature)) / 2
        dec = dec_loss(e_int, centres, cfg.dec_alpha)
        loss = contrastive + cfg.dec_weight * dec
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        history.append([loss.item(), contrastive.item(), dec.item()])
    if not history:
        raise ValueError(f"no full batch of {cfg.batch_size} rows on this worker; lower cotrain.embedder.batch_size")
    metrics = {"loss_start": history[0][0], "loss_end": history[-1][0], "contrastive_start": history[0][1],
               "contrastive_end": history[-1][1], "dec_start": history[0][2], "dec_end": history[-1][2],
               "steps": len(history)}
    with tempfile.TemporaryDirectory() as scratch:
        checkpoint = None
        if ray.train.get_context().get_world_rank() == 0:
            encoder.eval()
            encoder.save(scratch)
            checkpoint = ray.train.Checkpoint.from_directory(scratch)
        ray.train.report(metrics, checkpoint=checkpoint)


def train_embedder(table: pa.Table, model: str, centres: np.ndarray, cfg: EmbedderTrainConfig,
                   out_dir: str | Path) -> dict:
    """Fine-tune ``model`` on (TEXT, INTERPRETATION) rows; the model lands in ``out_dir/model``."""
    import ray.data
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    schema.require_columns(table, [schema.TEXT, schema.INTERPRETATION], "embedder training")
    per_worker = table.num_rows // cfg.num_workers
    if per_worker < cfg.batch_size:
        raise ValueError(f"{table.num_rows} rows over {cfg.num_workers} workers give {per_worker} per worker, "
                         f"fewer than embedder batch_size={cfg.batch_size}; lower the batch size")
    out_dir = Path(out_dir).resolve()
    trainer = TorchTrainer(
        train_func,
        train_loop_config={"embedder": asdict(cfg), "model_path": resolve_model(model),
                           "centres": np.asarray(centres, np.float32).tolist()},
        scaling_config=ScalingConfig(num_workers=cfg.num_workers, use_gpu=cfg.use_gpu,
                                     resources_per_worker={"CPU": cfg.cpus_per_worker}),
        run_config=RunConfig(storage_path=str(out_dir / "ray_train"), name="embedder"),
        datasets={"train": ray.data.from_arrow(table.select([schema.TEXT, schema.INTERPRETATION]))},
    )
    result = trainer.fit()
    result.checkpoint.to_directory(str(out_dir / "model"))
    log.info("embedder: %d steps, loss %.4f -> %.4f (contrastive %.4f -> %.4f, DEC %.4f -> %.4f)",
             result.metrics["steps"], result.metrics["loss_start"], result.metrics["loss_end"],
             result.metrics["contrastive_start"], result.metrics["contrastive_end"],
             result.metrics["dec_start"], result.metrics["dec_end"])
    return {**result.metrics, "model": str(out_dir / "model")}
