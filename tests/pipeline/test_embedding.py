import numpy as np
import pyarrow as pa
import pytest
from llmclust import schema
from llmclust.config import ConfigError
from llmclust.models import ModelNotFound, resolve_model
from llmclust.pipeline.embedders import SentenceEmbedder
from llmclust.pipeline.embedding import EmbeddingConfig, embed_corpus, embed_here, embed_with_ray
from llmclust.store.parts import PartStore
from llmclust.store.runs import RunDir

TEXTS = ["How do I locate my card?", "top up failed", "why was I charged a fee for a transfer",
         "I still have not received my new card, I ordered over a week ago.", "exchange rate?"]


@pytest.fixture(scope="module")
def embedder():
    return SentenceEmbedder(EmbeddingConfig(device="cpu", batch_size=2))


def test_config_rejects_bad_values():
    with pytest.raises(ConfigError, match="batch_size=0"):
        EmbeddingConfig(batch_size=0)
    with pytest.raises(ConfigError, match="device='tpu'"):
        EmbeddingConfig(device="tpu")


def test_unknown_model_says_how_to_fix():
    with pytest.raises(ModelNotFound, match="neither a local path nor an embedded default"):
        resolve_model("some-org/unknown-model")


@pytest.mark.slow
def test_encode_matches_sentence_transformers_in_input_order(embedder):
    from sentence_transformers import SentenceTransformer

    ref = SentenceTransformer(resolve_model("all-MiniLM-L6-v2"), device="cpu").encode(TEXTS, normalize_embeddings=True)
    out = embedder.encode(TEXTS)
    assert out.shape == (5, 384) and out.dtype == np.float32
    np.testing.assert_allclose(out, ref, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("tokenize_workers", [0, 1])
def test_ray_stage_matches_plain_encode(ray_cluster, embedder, tokenize_workers):
    table = pa.table({schema.ROW: pa.array(np.arange(10, 15), pa.int64()), schema.TEXT: TEXTS})
    cfg = EmbeddingConfig(device="cpu", batch_size=2, cpus_per_actor=1, tokenize_workers=tokenize_workers)
    out = embed_with_ray(table, cfg)
    np.testing.assert_allclose(out, embedder.encode(TEXTS), atol=1e-5)


@pytest.mark.slow
def test_in_this_process_the_same_vectors_and_the_model_loaded_once(ray_cluster, tmp_path, monkeypatch):
    from llmclust.pipeline import embedding

    loads = []
    real = embedding.make_embedder
    monkeypatch.setattr(embedding, "make_embedder", lambda *a: loads.append(a) or real(*a))
    monkeypatch.setattr(embedding, "_kept", {})
    table = pa.table({schema.ROW: pa.array(np.arange(len(TEXTS)), pa.int64()), schema.TEXT: TEXTS})
    pool, here = (EmbeddingConfig(device="cpu", batch_size=2, cpus_per_actor=1, num_actors=n) for n in (1, 0))
    run = RunDir(tmp_path / "run")
    first, second = (embed_corpus(table, here, PartStore(run.stage(name, 1))) for name in ("first", "second"))
    assert len(loads) == 1 and first is not None and second is not None  # two stages, one model load
    np.testing.assert_allclose(embed_here(table, here), embed_with_ray(table, pool), atol=1e-6)
    embed_here(table, EmbeddingConfig(device="cpu", batch_size=2, num_actors=0, max_seq_length=16))
    assert len(loads) == 2 and len(embedding._kept) == 1  # another model replaces the kept one
    with embedding.keep_embedder():  # around a fit
        embed_here(table, here)
    assert not embedding._kept  # the fit's end drops it: a later fit may retrain into the same folder


def test_a_preloaded_embedder_is_the_one_embed_here_uses_and_its_error_surfaces_there(monkeypatch):
    import threading

    from llmclust.pipeline import embedding

    release = threading.Event()
    loaded = []

    class Fake:  # stands in for a model whose load takes a while (15-30 s on a GPU node)
        def __init__(self, *args):
            release.wait(5)
            loaded.append(args)

        def tokenize(self, texts):
            return texts

        def forward_tokens(self, texts):
            return np.ones((len(texts), 3), np.float32)

    monkeypatch.setattr(embedding, "make_embedder", Fake)
    table = pa.table({schema.ROW: pa.array(np.arange(3), pa.int64()), schema.TEXT: ["a", "b", "c"]})
    here = EmbeddingConfig(device="cpu", num_actors=0)
    with embedding.keep_embedder():
        embedding.preload_embedder(EmbeddingConfig(device="cpu", num_actors=2))
        assert not embedding._preload  # actors embed: nothing to load here
        embedding.preload_embedder(here)
        assert not loaded  # loading in the background
        release.set()
        assert embed_here(table, here).shape == (3, 3) and len(loaded) == 1  # waited for it, loaded once
    assert not embedding._kept and not embedding._preload

    def broken(*args):
        raise OSError("no model at /nowhere")

    monkeypatch.setattr(embedding, "make_embedder", broken)
    with embedding.keep_embedder():
        embedding.preload_embedder(here)
        with pytest.raises(OSError, match="/nowhere"):
            embed_here(table, here)


def test_in_this_process_is_a_setting_actors_must_not_be_negative():
    assert EmbeddingConfig(num_actors=0).num_actors == 0
    with pytest.raises(ConfigError, match="num_actors=-1.*0 \\(embed in this process\\)"):
        EmbeddingConfig(num_actors=-1)


@pytest.mark.slow
def test_tokenizer_actors_apply_the_models_own_preprocessing(ray_cluster, tmp_path):
    """A model whose sentence-transformers config lower-cases while its bare tokenizer does not:
    tokenizer actors that skipped that step gave other vectors than tokenize_workers=0."""
    import json
    import shutil

    model = tmp_path / "cased-minilm"
    shutil.copytree(resolve_model("all-MiniLM-L6-v2"), model)
    for name, key in (("sentence_bert_config.json", True), ("tokenizer_config.json", False)):
        config = json.loads((model / name).read_text())
        config["do_lower_case"] = key
        (model / name).write_text(json.dumps(config))
    texts = [t.upper() for t in TEXTS]
    table = pa.table({schema.ROW: pa.array(np.arange(5), pa.int64()), schema.TEXT: texts})
    cfg = EmbeddingConfig(model=str(model), device="cpu", batch_size=2, cpus_per_actor=1)
    plain = SentenceEmbedder(cfg).encode(texts)
    np.testing.assert_allclose(embed_with_ray(table, cfg), plain, atol=1e-5)
    np.testing.assert_allclose(embed_with_ray(table, EmbeddingConfig(**{**cfg.__dict__, "tokenize_workers": 1})),
                               plain, atol=1e-5)


def test_stage_checks_its_input_columns():
    with pytest.raises(schema.SchemaError, match=r"required columns \['row'\] not found"):
        embed_with_ray(pa.table({schema.TEXT: ["a"]}), EmbeddingConfig())


def test_hashing_embedder_is_deterministic_unit_length_and_lexical():
    from llmclust.pipeline.embedding import make_embedder
    from llmclust.pipeline.hashing_embedder import HashingEmbedder

    emb = make_embedder(EmbeddingConfig(model="hashing-64"))
    assert isinstance(emb, HashingEmbedder) and emb.dim == 64 and resolve_model("hashing-64") == "hashing-64"
    out = emb.encode(TEXTS + ["top up failed again"])
    assert out.shape == (6, 64) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1, rtol=1e-5)
    np.testing.assert_array_equal(out, HashingEmbedder(64).encode(TEXTS + ["top up failed again"]))  # no state
    sims = out @ out[-1]
    assert np.argmax(sims[:5]) == 1  # "top up failed" is the nearest of the five to "top up failed again"
    assert emb.encode([]).shape == (0, 64)
    with pytest.raises(ConfigError, match="tokenize_workers=2"):
        EmbeddingConfig(model="hashing-384", tokenize_workers=2)


@pytest.mark.slow
def test_ray_stage_runs_the_hashing_embedder(ray_cluster):
    from llmclust.pipeline.hashing_embedder import HashingEmbedder

    table = pa.table({schema.ROW: pa.array(np.arange(5), pa.int64()), schema.TEXT: TEXTS})
    out = embed_with_ray(table, EmbeddingConfig(model="hashing-32", batch_size=2, cpus_per_actor=1))
    np.testing.assert_array_equal(out, HashingEmbedder(32).encode(TEXTS))
