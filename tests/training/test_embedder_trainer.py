import numpy as np
import pytest
from llmclust.models import resolve_model
from llmclust.training.embedder_trainer import (
    TrainerConfig,
    batch_indices,
    train_embedder,
)
from llmclust.training.triplet_infonce import TripletInfoNCELoss


def test_batches_cover_each_epoch_and_are_reproducible():
    first_epoch = np.concatenate([batch_indices(10, 5, s, seed=3) for s in range(2)])
    assert sorted(first_epoch) == list(range(10))
    np.testing.assert_array_equal(batch_indices(10, 5, 7, 3), batch_indices(10, 5, 7, 3))


@pytest.mark.slow
def test_ray_train_run_changes_weights_and_lowers_loss(ray_cluster, small_csv, tmp_path):
    import csv

    import torch
    from sentence_transformers import SentenceTransformer

    rows = list(csv.DictReader(open(small_csv)))
    by_class: dict[str, list[str]] = {}
    for r in rows:
        by_class.setdefault(r["category"], []).append(r["text"])
    classes = sorted(by_class)
    # anchor and positive share a class; the hard negative comes from the next class
    tuples = [(by_class[c][0], by_class[c][1], by_class[classes[(i + 1) % len(classes)]][2])
              for i, c in enumerate(classes[:8])]
    base = resolve_model("all-MiniLM-L6-v2")
    cfg = TrainerConfig(max_steps=3, batch_size=4, learning_rate=1e-4, warmup_fraction=0.0, num_workers=2,
                        cpus_per_worker=1, checkpoint_every=2)
    result = train_embedder(tuples, TripletInfoNCELoss(0.05), base, tmp_path / "model", cfg, tmp_path / "ray")

    assert result.steps == 3 and len(result.losses) == 3
    assert result.losses[-1] < result.losses[0]
    before = SentenceTransformer(base, device="cpu")
    after = SentenceTransformer(str(tmp_path / "model"), device="cpu")
    changed = [not torch.equal(p, q) for p, q in zip(before.parameters(), after.parameters())]
    assert sum(changed) > len(changed) // 2
    assert (tmp_path / "ray" / "train").is_dir()  # Ray Train checkpoints live under the storage folder


def test_rejects_empty_and_ragged_tuples(tmp_path):
    with pytest.raises(ValueError, match="no training tuples"):
        train_embedder([], TripletInfoNCELoss(), "m", tmp_path, TrainerConfig(), tmp_path)
    with pytest.raises(ValueError, match="mixed lengths"):
        train_embedder([("a", "b", "c"), ("a", "b")], TripletInfoNCELoss(), "m", tmp_path, TrainerConfig(), tmp_path)
