import numpy as np
import pyarrow as pa
import pytest

from llmclust import schema
from llmclust.config import ConfigError
from llmclust.training.cotrain_embedder import EmbedderTrainConfig, train_embedder

TEXTS = ["I lost my card", "my card was stolen", "top up failed", "why did my top-up not work",
         "refund not showing", "where is my refund", "exchange rate is wrong", "bad exchange rate"] * 2


def test_config_rejects_a_batch_without_negatives():
    with pytest.raises(ConfigError, match="batch_size=1"):
        EmbedderTrainConfig(batch_size=1)


@pytest.mark.slow
def test_contrastive_dec_steps_change_minilm(ray_cluster, tmp_path):
    from sentence_transformers import SentenceTransformer

    from llmclust.models import resolve_model

    table = pa.table({schema.TEXT: TEXTS, schema.INTERPRETATION: [f"Keywords: {t.split()[-1]}, {t}" for t in TEXTS]})
    base = SentenceTransformer(resolve_model("all-MiniLM-L6-v2"), device="cpu")
    centres = base.encode(TEXTS[:4], normalize_embeddings=True)
    cfg = EmbedderTrainConfig(learning_rate=1e-4, batch_size=8, max_steps=3, dec_clusters=4, cpus_per_worker=1)
    result = train_embedder(table, "all-MiniLM-L6-v2", centres, cfg, tmp_path)
    assert result["steps"] == 3
    assert result["loss_start"] > 0 and result["dec_start"] >= 0
    tuned = SentenceTransformer(result["model"], device="cpu")
    before, after = base.encode(TEXTS[:4]), tuned.encode(TEXTS[:4])
    assert after.shape == before.shape and not np.allclose(before, after, atol=1e-5)


def test_too_few_rows_for_a_batch_is_explained(tmp_path):
    table = pa.table({schema.TEXT: TEXTS[:4], schema.INTERPRETATION: TEXTS[:4]})
    with pytest.raises(ValueError, match="4 rows over 1 workers"):
        train_embedder(table, "all-MiniLM-L6-v2", np.zeros((2, 384)), EmbedderTrainConfig(batch_size=8), tmp_path)
