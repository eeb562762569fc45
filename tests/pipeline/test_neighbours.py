import numpy as np
import pytest
from llmclust.pipeline.neighbours import (
    NeighboursConfig,
    build_index,
    from_table,
    index_kind,
    knn,
    knn_report,
    neighbours_stage,
    to_table,
)


def unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def brute(x, k):
    sims = x @ x.T
    np.fill_diagonal(sims, -np.inf)
    return np.argsort(-sims, axis=1)[:, :k]


def test_exact_matches_brute_force_and_excludes_self():
    x = unit(np.random.default_rng(0).normal(size=(300, 16)))
    ids, sims = knn(x, NeighboursConfig(k=5, index="flat"))
    assert (ids != np.arange(300)[:, None]).all()
    assert (ids == brute(x, 5)).mean() > 0.99
    assert (np.diff(sims, axis=1) <= 1e-6).all()


def test_ivf_recall_is_high():
    x = unit(np.random.default_rng(1).normal(size=(2000, 16)))
    ids, _ = knn(x, NeighboursConfig(k=10, index="ivf", nlist=16, nprobe=8))
    truth = brute(x, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, truth)])
    assert recall > 0.9
    assert (ids >= 0).all()
    import faiss

    index = build_index(x, NeighboursConfig(index="ivf", nlist=16, nprobe=8))
    assert faiss.extract_index_ivf(index.faiss_index).nprobe == 8 and index.faiss_index.is_trained
    assert index.faiss_index.ntotal == 2000 and index.setting == {"nprobe": 8}


def test_hnsw_is_tuned_until_it_reaches_the_target_recall():
    """efSearch doubles from a deliberately small start until recall@10 on the sample, against
    exact search, reaches the target; the stage reports what was reached."""
    x = unit(np.random.default_rng(2).normal(size=(3000, 32)))
    cfg = NeighboursConfig(k=10, index="hnsw", hnsw_m=8, ef_construction=16, ef_search=4, target_recall=0.97)
    ids, sims, report = knn_report(x, cfg)
    assert report["index"] == "hnsw" and report["ef_search"] > 4 and report["recall_at_k"] >= 0.97
    truth = brute(x, 10)
    assert np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, truth)]) >= 0.95  # all rows, not just the sample
    assert (ids != np.arange(3000)[:, None]).all() and (ids >= 0).all()
    untuned = knn_report(x, NeighboursConfig(k=10, index="hnsw", hnsw_m=8, ef_construction=16, ef_search=4,
                                             target_recall=0))[2]
    assert untuned == {"index": "hnsw", "ef_search": 4}


def test_ivf_cells_hold_a_fixed_number_of_rows_and_are_found_through_a_graph():
    import faiss

    x = unit(np.random.default_rng(5).normal(size=(5000, 16)))
    index = build_index(x, NeighboursConfig(index="ivf", ivf_list_rows=100))
    ivf = faiss.extract_index_ivf(index.faiss_index)
    assert ivf.nlist == 50 and isinstance(faiss.downcast_index(ivf.quantizer), faiss.IndexHNSWFlat)
    assert faiss.downcast_index(ivf.quantizer).hnsw.efSearch >= 2 * ivf.nprobe


def test_ivf_nprobe_is_tuned_too_and_stops_at_nlist():
    x = unit(np.random.default_rng(3).normal(size=(2000, 16)))
    report = knn_report(x, NeighboursConfig(k=10, index="ivf", nlist=16, nprobe=1, target_recall=1.0))[2]
    assert report["nprobe"] == 16 and report["recall_at_k"] == 1.0  # every cell visited: exact


def test_stage_manifest_records_the_index_and_its_recall(tmp_path):
    from llmclust.store.runs import RunDir

    run = RunDir(tmp_path)
    x = unit(np.random.default_rng(4).normal(size=(1500, 16)))
    ids, _, stage = neighbours_stage(run, NeighboursConfig(k=5, index="hnsw"), x, run.stage("embed", {}))
    assert stage.manifest["index"] == "hnsw" and stage.manifest["recall_at_k"] >= 0.95
    assert (neighbours_stage(run, NeighboursConfig(k=5, index="hnsw"), x, run.stage("embed", {}))[0] == ids).all()


def test_duplicates_still_exclude_self_and_table_round_trips():
    x = unit(np.array([[1, 0], [1, 0], [0, 1], [0.7, 0.7]], np.float32))
    ids, sims = knn(x, NeighboursConfig(k=2))
    assert (ids != np.arange(4)[:, None]).all()
    back_ids, back_sims = from_table(to_table(ids, sims))
    assert (back_ids == ids).all() and np.allclose(back_sims, sims)


def test_too_few_vectors():
    with pytest.raises(ValueError, match="at least 2 vectors"):
        knn(np.ones((1, 4), np.float32), NeighboursConfig(k=3))


def test_auto_goes_approximate_when_exact_search_would_cost_a_50k_self_search():
    cfg = NeighboursConfig()
    assert cfg.approximate_min_rows == 50_000
    assert index_kind(cfg, 49_999) == "flat" and index_kind(cfg, 50_000) == "ivf"
    assert index_kind(cfg, 2_500, queries=1_000_000) == "ivf"  # many queries against few rows
    assert index_kind(NeighboursConfig(index="hnsw"), 10) == "hnsw"
    assert index_kind(cfg, 3_080, queries=770) == "flat"
    assert index_kind(NeighboursConfig(index="flat"), 10**7) == "flat"
