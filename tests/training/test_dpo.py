import json
import math
from pathlib import Path

import pytest
from helpers import REPO
from llmclust.config import ConfigError
from llmclust.models import model_weights
from llmclust.training.dpo import DPOTrainConfig, pairs_read, train_dpo, worker_config


def _pair(text, good, bad):
    prompt = [{"role": "user", "content": f"Give the intent of this banking text in keywords.\nText: {text}"}]
    return {"prompt": prompt, "chosen": [{"role": "assistant", "content": good}],
            "rejected": [{"role": "assistant", "content": bad}]}


PAIRS = [
    _pair("I lost my card", "Reasoning: the card is lost.\nKeywords: lost card", "Keywords: sunny weather, holiday"),
    _pair("my top up failed", "Reasoning: a top-up did not work.\nKeywords: top up failed", "Keywords: football"),
]


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="beta=0"):
        DPOTrainConfig(beta=0)
    with pytest.raises(ConfigError, match="deepspeed='x.json'"):
        DPOTrainConfig(deepspeed="x.json")


def test_workers_get_the_deepspeed_json_not_its_relative_path(tmp_path, monkeypatch):
    """Ray Train moves each worker into its own working directory: a relative DeepSpeed path
    checked again there failed. The driver reads the JSON and hands over its contents."""
    (tmp_path / "zero2.json").write_text(json.dumps({"zero_optimization": {"stage": 2}}))
    monkeypatch.chdir(tmp_path)
    cfg = DPOTrainConfig(deepspeed="zero2.json")
    config = worker_config(PAIRS, str(tmp_path), "", cfg)
    monkeypatch.chdir(tmp_path.parent)  # where the worker runs, zero2.json is not reachable
    assert DPOTrainConfig(**config["dpo"]).deepspeed == ""
    assert config["deepspeed"] == {"zero_optimization": {"stage": 2}}
    assert Path(config["model_dir"]).is_absolute()


def test_only_the_pairs_its_steps_read_are_handed_over():
    pairs = [{"prompt": str(i)} for i in range(100)]
    cfg = DPOTrainConfig(max_steps=3, batch_size=4, grad_accum=2, num_workers=2)  # 48 pairs a pass of 3 steps
    read = pairs_read(pairs, cfg)
    assert len(read) == 48 and read == pairs_read(pairs, cfg)  # seeded: the same ones every time
    assert [int(p["prompt"]) for p in read] == sorted(int(p["prompt"]) for p in read)  # in their order
    assert pairs_read(pairs, DPOTrainConfig(max_steps=0)) == pairs  # one pass reads them all
    assert pairs_read(pairs[:10], cfg) == pairs[:10]
    assert len(worker_config(pairs, "/tmp", "", cfg)["pairs"]) == 48


@pytest.mark.slow
def test_two_lora_dpo_steps_on_smollm2_change_the_adapter(ray_cluster, tmp_path):
    from safetensors.torch import load_file

    model_dir = model_weights("SmolLM2-135M-Instruct")
    cfg = DPOTrainConfig(max_steps=2, batch_size=2, lora_rank=4, lora_alpha=8, lora_targets=["q_proj", "v_proj"],
                         learning_rate=5e-3, max_length=96)
    result = train_dpo(PAIRS, model_dir, "", cfg, tmp_path / "it1")
    assert result["steps"] == 2 and len(result["losses"]) == 2
    assert result["zero_stage"] is None and result["train_seconds"] > 0  # plain data parallel
    assert math.isclose(result["loss_start"], math.log(2), abs_tol=1e-3)  # policy == reference at step 1
    weights = load_file(f"{result['adapter']}/adapter_model.safetensors")
    assert not (Path(result["adapter"]) / "ref").exists()  # only the trained adapter, not trl's reference copy
    lora_b = [w for name, w in weights.items() if "lora_B" in name]
    assert lora_b and any(w.abs().sum() > 0 for w in lora_b)  # B starts at zero: training moved it
    assert result["loss_end"] < result["loss_start"]

    # the next iteration continues the same adapter; trl copies it as the reference, so the
    # loss starts again at log 2 and the weights move on from where they were
    again = train_dpo(PAIRS, model_dir, result["adapter"], DPOTrainConfig(
        max_steps=1, batch_size=2, lora_rank=4, lora_alpha=8, lora_targets=["q_proj", "v_proj"], max_length=96),
        tmp_path / "it2")
    assert math.isclose(again["loss_start"], math.log(2), abs_tol=1e-3)
    moved = load_file(f"{again['adapter']}/adapter_model.safetensors")
    assert moved.keys() == weights.keys()
    assert any((moved[k] - weights[k]).abs().sum() > 0 for k in weights)
    # one small step from the first adapter stays far closer to it than to a fresh (zero) B
    assert all((moved[k] - weights[k]).abs().sum() < weights[k].abs().sum() for k in weights if "lora_B" in k)


@pytest.mark.slow
def test_deepspeed_zero2_dpo_runs_on_cpu_workers_and_trains_as_plain_ddp_does(ray_cluster, tmp_path):
    """The GPU configs' DPO path, ray_configs/deepspeed_zero2.json (its "auto" sizes filled in by
    the Trainer), in a Ray Train worker on DeepSpeed's CPU accelerator: the engine runs ZeRO-2 and
    takes the same steps, to the same losses, as plain data parallel."""
    model_dir = model_weights("SmolLM2-135M-Instruct")
    # no dropout: the comparison must not hang on whether DeepSpeed's set-up draws random numbers
    small = dict(max_steps=3, batch_size=1, lora_rank=4, lora_alpha=8, lora_targets=["q_proj", "v_proj"],
                 learning_rate=5e-3, max_length=96, lora_dropout=0.0)
    plain = train_dpo(PAIRS, model_dir, "", DPOTrainConfig(**small), tmp_path / "plain")
    zero2 = train_dpo(PAIRS, model_dir, "", DPOTrainConfig(**small, deepspeed=str(REPO / "ray_configs/deepspeed_zero2.json")),
                      tmp_path / "zero2")
    assert type(zero2["zero_stage"]) is int and zero2["zero_stage"] == 2 and zero2["steps"] == 3
    assert zero2["losses"] == pytest.approx(plain["losses"], abs=1e-4)  # the first is log 2 for both; two more after updates
    assert zero2["loss_end"] < zero2["loss_start"]
    assert (Path(zero2["adapter"]) / "adapter_model.safetensors").exists()
    assert not (Path(zero2["adapter"]) / "ref").exists()
