"""Co-training's embedder objective (contrastive + DEC) and its run through the one embedder trainer."""

import numpy as np
import pytest
import torch
from llmclust.config import ConfigError
from llmclust.methods.cotrain.config import CoTrainEmbedderConfig
from llmclust.training.contrastive_dec import ContrastiveDECLoss

TEXTS = ["I lost my card", "my card was stolen", "top up failed", "why did my top-up not work",
         "refund not showing", "where is my refund", "exchange rate is wrong", "bad exchange rate",
         "how do I change my PIN", "my PIN is blocked", "transfer did not arrive", "money sent is missing",
         "card payment declined", "why was my payment refused", "cash withdrawal fee", "ATM charged me"]


def test_config_rejects_a_batch_without_negatives():
    with pytest.raises(ConfigError, match="batch_size=1"):
        CoTrainEmbedderConfig(batch_size=1)


def test_loss_trains_the_centres_and_falls_under_optimisation():
    torch.manual_seed(0)
    loss = ContrastiveDECLoss(torch.randn(4, 8), temperature=0.1, dec_weight=1.0)
    texts, views = torch.nn.Parameter(torch.randn(16, 8)), torch.nn.Parameter(torch.randn(16, 8))
    optimiser = torch.optim.Adam([texts, views, *loss.parameters()], lr=0.05)
    values = []
    for _ in range(30):
        value = loss([texts, views, views])
        optimiser.zero_grad()
        value.backward()
        assert loss.centres.grad is not None and loss.centres.grad.abs().sum() > 0
        optimiser.step()
        values.append(value.item())
    assert values[-1] < values[0] * 0.8
    with pytest.raises(ValueError, match="expected 3"):
        loss([texts, views])


@pytest.mark.slow
def test_two_ddp_workers_on_gloo_train_minilm_and_the_loss_falls(ray_cluster, tmp_path):
    """Two Ray Train workers (DDP on gloo): the BERT pooler feeds no loss, which crashed DDP
    without find_unused_parameters; the DEC centres are averaged across the workers."""
    from llmclust.models import resolve_model
    from llmclust.training.embedder_trainer import train_embedder
    from sentence_transformers import SentenceTransformer

    base = resolve_model("all-MiniLM-L6-v2")
    model = SentenceTransformer(base, device="cpu")
    centres = model.encode(TEXTS[::4], normalize_embeddings=True)
    interpretations = [f"Keywords: {t.split()[-1]}, {t}" for t in TEXTS]
    # 8 distinct rows per worker: a duplicate in a batch would be its own in-batch negative
    tuples = [(t, i, i) for t, i in zip(TEXTS, interpretations)]
    cfg = CoTrainEmbedderConfig(learning_rate=3e-4, batch_size=8, max_steps=6, num_workers=2, cpus_per_worker=1,
                                dec_clusters=4)
    result = train_embedder(tuples, ContrastiveDECLoss(centres, cfg.temperature, cfg.dec_weight), base,
                            tmp_path / "model", cfg, tmp_path / "ray")
    assert result.steps == 6 and len(result.losses) == 6
    assert np.mean(result.losses[-2:]) < np.mean(result.losses[:2])  # dropout makes single steps noisy
    tuned = SentenceTransformer(str(tmp_path / "model"), device="cpu")
    assert not np.allclose(model.encode(TEXTS[:4]), tuned.encode(TEXTS[:4]), atol=1e-5)
