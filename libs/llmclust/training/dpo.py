"""LoRA DPO of the LLM on preference pairs, as a Ray Train job (trl ``DPOTrainer`` + peft).

The LLM keeps one LoRA adapter across co-training iterations: the first iteration creates
it, later ones continue training it. The reference policy is the frozen LLM as it was when
the iteration started: the base model in the first iteration (peft disables the adapter for
the reference pass), a frozen copy of the loaded adapter afterwards (trl adds it as "ref").
The adapter is written into the stage folder; the next iteration's generation loads it.

On GPU clusters set ``deepspeed`` to a ZeRO config (``ray_configs/deepspeed_zero2.json``) and
``use_gpu: true``; the same ``train_func`` runs on every worker. The driver reads that JSON
and hands the workers its contents: a worker's working directory is Ray Train's, where a
relative path means nothing. DeepSpeed runs on CPU workers too (its CPU accelerator, gloo; its
first run there JIT-builds a shared-memory collective with the machine's C++ compiler): that is
how the tests run this path without a GPU. The result names the ZeRO stage the engine ran with.
Only the trained adapter is saved (not trl's frozen "ref" copy).

Example::

    pairs = [{"prompt": [{"role": "user", "content": "Text: lost card"}],
              "chosen": [{"role": "assistant", "content": "Keywords: lost card"}],
              "rejected": [{"role": "assistant", "content": "Keywords: weather"}]}]
    model_dir = model_weights("SmolLM2-135M-Instruct")     # llmclust.models
    result = train_dpo(pairs, model_dir, "", DPOTrainConfig(max_steps=1), out_dir)
    result["loss_start"], result["adapter"]
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from llmclust.config import expect
from llmclust.models import resolve_model
from llmclust.optional import optional_import
from llmclust.stalls import stall_report
from llmclust.store.runs import Progress
from llmclust.training.ray_trainer import TrainJob, torch_trainer

log = logging.getLogger(__name__)

STALL_REPORT_S = 60  # a worker silent this long logs where it is


@dataclass
class DPOTrainConfig:
    beta: float = 0.25  # DPO temperature on the log-ratio margin (seed paper: 0.25)
    learning_rate: float = 1e-5
    batch_size: int = 4  # pairs per device step
    grad_accum: int = 1
    max_steps: int = 100  # optimiser steps per co-training iteration (0: one pass over the pairs)
    max_length: int = 384  # tokens of prompt + answer; longer pairs are truncated
    lora_rank: int = 64
    lora_alpha: int = 128
    lora_dropout: float = 0.05
    lora_targets: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    num_workers: int = 1  # Ray Train workers (data parallel)
    cpus_per_worker: float = 2
    use_gpu: bool = False
    deepspeed: str = ""  # path to a DeepSpeed ZeRO JSON config; "" = plain DDP
    seed: int = 0

    def __post_init__(self):
        expect(self.beta > 0, "beta", self.beta, "a positive number (the paper uses 0.25)")
        expect(self.learning_rate > 0, "learning_rate", self.learning_rate, "a positive number")
        expect(self.batch_size > 0, "batch_size", self.batch_size, "a positive integer")
        expect(self.grad_accum > 0, "grad_accum", self.grad_accum, "a positive integer")
        expect(self.max_steps >= 0, "max_steps", self.max_steps, "0 (one pass) or a positive integer")
        expect(self.max_length >= 32, "max_length", self.max_length, "an integer >= 32")
        expect(self.lora_rank > 0, "lora_rank", self.lora_rank, "a positive integer")
        expect(self.lora_alpha > 0, "lora_alpha", self.lora_alpha, "a positive integer")
        expect(0 <= self.lora_dropout < 1, "lora_dropout", self.lora_dropout, "a number in [0, 1)")
        expect(len(self.lora_targets) > 0, "lora_targets", self.lora_targets, "module names such as q_proj")
        expect(self.num_workers > 0, "num_workers", self.num_workers, "a positive integer")
        expect(self.cpus_per_worker > 0, "cpus_per_worker", self.cpus_per_worker, "a positive number")
        expect(not self.deepspeed or os.path.isfile(self.deepspeed), "deepspeed", self.deepspeed,
               "an existing DeepSpeed JSON file, e.g. ray_configs/deepspeed_zero2.json")


def require_deepspeed() -> None:
    """DeepSpeed is an optional extra (``.[gpu]``, ``.[dev]``): fail with the install command when it is missing."""
    optional_import("deepspeed", "dpo.deepspeed is set but DeepSpeed is not installed: "
                                 "pip install deepspeed (in llmclust's gpu and dev extras) on every Ray node, "
                                 "or set cotrain.dpo.deepspeed='' for plain data parallel")


def train_func(config: dict) -> None:
    """One Ray Train worker: DPO on the pairs, rank 0 reports the adapter as a checkpoint. A
    minute without progress (DeepSpeed's set-up, a first step compiling kernels) logs where
    the worker is."""
    logging.basicConfig(level=logging.INFO)  # workers start without a handler: progress lines need one
    with stall_report("DPO worker", after_s=STALL_REPORT_S) as beat:
        _train(config, beat)


def _train(config: dict, beat) -> None:
    import ray.train
    import torch
    from datasets import Dataset
    from peft import LoraConfig, PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    cfg = DPOTrainConfig(**config["dpo"])
    t0 = time.time()
    on_gpu = cfg.use_gpu and torch.cuda.is_available()  # a worker granted a GPU on a CUDA-less torch: CPU
    if not on_gpu:
        torch.set_num_threads(max(1, int(cfg.cpus_per_worker)))
        # Ray Train points accelerate at the GPU it granted (cuda:0) even where torch cannot see one
        os.environ.pop("ACCELERATE_TORCH_DEVICE", None)
    if config["deepspeed"]:
        require_deepspeed()
    tokenizer = AutoTokenizer.from_pretrained(config["model_dir"])
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(config["model_dir"], dtype=torch.bfloat16 if on_gpu else torch.float32)
    peft_config = None
    if config["adapter"]:
        model = PeftModel.from_pretrained(model, config["adapter"], is_trainable=True)  # continue the adapter
    else:
        peft_config = LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                                 target_modules=list(cfg.lora_targets), task_type="CAUSAL_LM")
    with tempfile.TemporaryDirectory() as scratch:
        args = DPOConfig(
            output_dir=scratch, beta=cfg.beta, learning_rate=cfg.learning_rate,
            per_device_train_batch_size=cfg.batch_size, gradient_accumulation_steps=cfg.grad_accum,
            max_steps=cfg.max_steps or -1, num_train_epochs=1, max_length=cfg.max_length,
            logging_steps=1, save_strategy="no", report_to=[], seed=cfg.seed, use_cpu=not on_gpu,
            bf16=on_gpu, deepspeed=config["deepspeed"], disable_tqdm=True, dataloader_num_workers=0,
            log_level="info",  # the Trainer's and DeepSpeed's set-up lines (DeepSpeed's level follows it)
        )
        log.info("DPO worker: model loaded on %s in %.1f s", "GPU" if on_gpu else "CPU", time.time() - t0)
        beat()
        trainer = DPOTrainer(model=model, args=args, train_dataset=Dataset.from_list(config["pairs"]),
                             processing_class=tokenizer, peft_config=peft_config, callbacks=[_step_progress(beat)])
        log.info("DPO worker: %d pairs tokenised, trainer ready in %.1f s", len(config["pairs"]), time.time() - t0)
        beat()
        output = trainer.train()
        losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
        engine = getattr(trainer, "deepspeed", None)  # the DeepSpeed engine the Trainer built, None without one
        metrics = {"loss_start": losses[0] if losses else None, "loss_end": losses[-1] if losses else None,
                   "losses": losses, "steps": trainer.state.global_step,
                   # the Trainer's clock: from after DeepSpeed's set-up (first step's compiles included) to the end
                   "train_seconds": round(output.metrics["train_runtime"], 2),
                   # an int: DeepSpeed's enum would print as its name and need deepspeed to unpickle on the driver
                   "zero_stage": int(engine.zero_optimization_stage()) if engine is not None else None}
        checkpoint = None
        if ray.train.get_context().get_world_rank() == 0:
            adapter_dir = Path(scratch) / "adapter"
            trainer.model.save_pretrained(adapter_dir, selected_adapters=["default"])  # not trl's "ref" copy
            tokenizer.save_pretrained(adapter_dir)
            checkpoint = ray.train.Checkpoint.from_directory(str(adapter_dir))
        ray.train.report(metrics, checkpoint=checkpoint)


def _step_progress(beat):
    """A trainer callback logging steps done, rate and ETA (the Ray Train worker's progress line),
    each step a ``beat`` of the worker's stall report."""
    from transformers import TrainerCallback

    class StepProgress(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            self.progress = Progress("DPO", state.max_steps, every=15, unit="steps")

        def on_step_end(self, args, state, control, **kwargs):
            self.progress.update(1)
            beat()

    return StepProgress()


def pairs_read(pairs: list[dict], cfg: DPOTrainConfig) -> list[dict]:
    """The pairs ``max_steps`` steps read (a seeded sample, in their order), or all of them: trl
    tokenises every pair it is given, and co-training offers thousands for 60-100 steps."""
    needed = cfg.max_steps * cfg.batch_size * cfg.grad_accum * cfg.num_workers
    if not cfg.max_steps or len(pairs) <= needed:
        return pairs
    import random

    keep = sorted(random.Random(cfg.seed).sample(range(len(pairs)), needed))
    return [pairs[i] for i in keep]


def worker_config(pairs: list[dict], model_dir: str, adapter: str, cfg: DPOTrainConfig) -> dict:
    """What every worker gets: plain data only, every path absolute, the DeepSpeed JSON's contents,
    the pairs its steps will read."""
    deepspeed = json.loads(Path(cfg.deepspeed).read_text()) if cfg.deepspeed else None
    return {"dpo": asdict(replace(cfg, deepspeed="")), "deepspeed": deepspeed, "pairs": pairs_read(pairs, cfg),
            "model_dir": resolve_model(model_dir), "adapter": str(Path(adapter).resolve()) if adapter else ""}


def train_dpo(pairs: list[dict], model_dir: str, adapter: str, cfg: DPOTrainConfig, out_dir: str | Path) -> dict:
    """Run DPO as a Ray Train job; the adapter lands in ``out_dir/adapter``. Returns the losses.

    ``model_dir`` is a plain (de-quantised) transformers folder; ``adapter`` the previous
    iteration's adapter folder or "" to start a new one.
    """
    if not pairs:
        raise ValueError("train_dpo got no preference pairs; check the preference stage's report "
                         "(all candidates unparseable or identical?)")
    out_dir = Path(out_dir).resolve()
    job = TrainJob("DPO", cfg.num_workers, cfg.cpus_per_worker, cfg.use_gpu,
                   "cotrain.dpo.num_workers, cpus_per_worker or use_gpu")
    config = worker_config(pairs, model_dir, adapter, cfg)
    trainer = torch_trainer(train_func, config, job, "dpo", out_dir / "ray_train")
    result = trainer.fit()
    result.checkpoint.to_directory(str(out_dir / "adapter"))
    metrics = {k: result.metrics[k] for k in ("loss_start", "loss_end", "losses", "steps", "train_seconds", "zero_stage")}
    used = len(config["pairs"])
    how = "plain data parallel" if metrics["zero_stage"] is None else f"DeepSpeed ZeRO-{metrics['zero_stage']}"
    log.info("DPO (%s): %d steps in %.1f s on %d of %d pairs, loss %.4f -> %.4f", how, metrics["steps"],
             metrics["train_seconds"], used, len(pairs), metrics["loss_start"], metrics["loss_end"])
    return {**metrics, "adapter": str(out_dir / "adapter"), "pairs": len(pairs), "pairs_read": used}
