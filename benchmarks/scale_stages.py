"""The stages benchmarks/scale.py times: synthetic inputs, the project's call, the plain call.

Each stage has ``load(n, data)`` (its inputs and imports, not timed), ``ours(inputs, tmp)``
(the project's function, as a job calls it) and ``plain(inputs, tmp)`` (the library calls
that do the same work). Both return a dict of figures; ``seconds`` in it replaces the
measured time (the plain text-level pooling, extrapolated from a block of rows).

Example::

    scale_data.synthetic(2000, Path("/tmp/scale")); inputs = Clustering.load(2000, Path("/tmp/scale"))
    Clustering.ours(inputs, Path("/tmp/run")), Clustering.plain(inputs, Path("/tmp/run"))
"""

from __future__ import annotations

import json
import time

import numpy as np
from scale_data import (
    D,
    cluster_labels,
    label_sets,
    normalize,
    run_dir,
    texts_of,
    topics,
    vectors,
)

K, SEEDS = 100, [0, 1, 2, 3, 4]  # clusters and KMeans seeds (the cluster stage's defaults)
DENSITY_RUNS, CANDIDATES = 10, 2  # co-training density: KMeans runs, interpretations per text (see README)
PLAIN_POOL_ROWS = 16_384  # the plain text-level pooling is timed on this many rows and scaled to n
FULL_SEARCH_MAX, SAMPLED_QUERIES = 100_000, 20_000  # neighbours: above this, search a sample (see Neighbours)
INDEX_SETTING = ("index", "ef_search", "nprobe")  # what plain neighbours copies from ours (the tuned setting)
REDUCE_FIT_SAMPLE = 20_000  # reduce: UMAP fitted on this many rows, the rest transformed


class Neighbours:
    """Above FULL_SEARCH_MAX rows both sides build the whole index but search SAMPLED_QUERIES
    rows, and that search time is scaled to all n (an approximate search costs the same per
    query): the full 1M self-search takes long on 2 shared cores. Ours tunes the index to
    its target recall first (timed); plain builds the same faiss index with the setting ours
    ended at (handed to it as ``inp["ours"]``, ours' figures in the same run)."""

    @staticmethod
    def load(n, data):
        import faiss  # noqa: F401  imported before the clock starts, by both

        return {"x": vectors(n, data)}

    @staticmethod
    def _sampled(n):
        return np.sort(np.random.default_rng(6).choice(n, SAMPLED_QUERIES, replace=False)) if n > FULL_SEARCH_MAX else None

    @staticmethod
    def ours(inp, tmp):
        from llmclust.pipeline.neighbours import (
            NeighboursConfig,
            _drop_self,
            _limit,
            build_index,
            neighbours_stage,
            search,
            tune_recall,
        )

        x, cfg = inp["x"], NeighboursConfig(k=10)
        rows = Neighbours._sampled(len(x))
        if rows is None:
            run, up = run_dir(tmp)
            ids, _, stage = neighbours_stage(run, cfg, x, up)
            inp["ids"], inp["rows"] = ids, np.arange(len(x))
            return {k: stage.manifest[k] for k in INDEX_SETTING if k in stage.manifest} | {
                "tuned_recall_at_10": stage.manifest.get("recall_at_k")}
        t0 = time.perf_counter()
        index = tune_recall(build_index(x, cfg), x, None, cfg)
        built, t0 = time.perf_counter() - t0, time.perf_counter()
        ids = []
        for start in range(0, len(rows), cfg.query_batch):
            batch = rows[start:start + cfg.query_batch]
            sims, found = search(index, x[batch], cfg.k + 1, batch, _limit(index, cfg, len(x)))  # as knn() searches
            ids.append(_drop_self(found, sims, batch, cfg.k)[0])
        inp["ids"], inp["rows"] = np.concatenate(ids), rows
        return {"index": index.kind, **index.setting, "tuned_recall_at_10": index.recall,
                "seconds": built + (time.perf_counter() - t0) * len(x) / len(rows),
                "build_seconds": round(built, 3), "search_extrapolated_from_queries": len(rows)}

    @staticmethod
    def plain(inp, tmp):
        """faiss as a user calls it: the same index kind and parameters, no tuning (the setting
        ours reached is read from its figures in the same run, else ours' defaults)."""
        import faiss
        from llmclust.pipeline.neighbours import NeighboursConfig, index_kind

        x, cfg = inp["x"], NeighboursConfig(k=10)
        n, rows = len(x), Neighbours._sampled(len(x))
        setting = {"index": index_kind(cfg, n), "ef_search": cfg.ef_search, "nprobe": cfg.nprobe, **inp.get("ours", {})}
        t0 = time.perf_counter()
        if setting["index"] == "hnsw":
            index = faiss.IndexHNSWFlat(D, cfg.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = cfg.ef_construction
            index.add(x)
            index.hnsw.efSearch = setting["ef_search"]
        elif setting["index"] == "ivf":  # the same IVF: cells of ivf_list_rows, an HNSW graph over their centres
            nlist = max(1, n // cfg.ivf_list_rows)
            index = faiss.index_factory(D, f"IVF{nlist}_HNSW32,Flat", faiss.METRIC_INNER_PRODUCT)
            index.train(x[np.random.default_rng(0).choice(n, min(n, nlist * cfg.ivf_train_per_cell), replace=False)])
            index.add(x)
            faiss.ParameterSpace().set_index_parameters(index, f"nprobe={setting['nprobe']},"
                                                               f"quantizer_efSearch={max(64, 2 * setting['nprobe'])}")
        else:
            index = faiss.IndexFlatIP(D)
            index.add(x)
        built, t0 = time.perf_counter() - t0, time.perf_counter()
        queries = x if rows is None else x[rows]
        for start in range(0, len(queries), cfg.query_batch):
            index.search(queries[start:start + cfg.query_batch], cfg.k + 1)
        return {"index": setting["index"], "seconds": built + (time.perf_counter() - t0) * n / len(queries)}

    @staticmethod
    def report(inp):
        """Recall@10 of the stage's neighbours against exact search, on 500 of the searched rows."""
        import faiss

        x = inp["x"]
        pick = np.random.default_rng(1).choice(len(inp["rows"]), min(500, len(inp["rows"])), replace=False)
        _, truth = faiss.knn(x[inp["rows"][pick]], x, 11, metric=faiss.METRIC_INNER_PRODUCT)
        hits = [len(set(inp["ids"][p]) & (set(t) - {inp["rows"][p]})) / 10 for p, t in zip(pick, truth)]
        return {"recall_at_10": round(float(np.mean(hits)), 4)}

class Clustering:
    @staticmethod
    def load(n, data):
        import faiss  # noqa: F401
        import sklearn.cluster  # noqa: F401

        return {"x": vectors(n, data)}

    @staticmethod
    def ours(inp, tmp):
        from llmclust.pipeline.clustering import ClusteringConfig, cluster_stage

        run, up = run_dir(tmp)
        cfg = ClusteringConfig(n_clusters=K, seeds=SEEDS)
        cluster_stage(run, cfg, inp["x"], up)
        return {"algorithm": cfg.resolved_algorithm(len(inp["x"]))}

    @staticmethod
    def plain(inp, tmp):
        import faiss
        from llmclust.pipeline.clustering import ClusteringConfig
        from sklearn.cluster import KMeans

        x, algorithm = inp["x"], ClusteringConfig().resolved_algorithm(len(inp["x"]))
        for seed in SEEDS:
            if algorithm == "faiss":
                km = faiss.Kmeans(D, K, niter=50, seed=seed, max_points_per_centroid=1024)
                km.train(x)
                km.index.search(x, 1)
            else:  # scikit-learn as a user calls it
                KMeans(K, random_state=seed, n_init=1).fit(x)
        return {"algorithm": algorithm}


class Pooling:
    @staticmethod
    def load(n, data):
        sets, n_labels = label_sets(topics(n, data))
        label_vectors = normalize(np.random.default_rng(4).standard_normal((n_labels, D), dtype=np.float32))
        return {"x": vectors(n, data), "sets": sets, "n_labels": n_labels, "label_vectors": label_vectors}

    @staticmethod
    def ours(inp, tmp):
        from llmclust.methods.lumi.config import LumiConfig
        from llmclust.methods.lumi.pooling import (
            incidence,
            label_level_pool,
            text_level_pool,
        )

        cfg = LumiConfig()
        S = incidence(inp["sets"], inp["n_labels"])
        h = label_level_pool(inp["x"], inp["label_vectors"], S)
        _, report = text_level_pool(h, S, cfg.text_pool_top_m, cfg.label_posting_cap, cfg.seed)
        return {"distinct_label_sets": report["distinct_label_sets"], "partners_mean": report["partners_mean"]}

    @staticmethod
    def plain(inp, tmp):
        """The same formula written directly with scipy.sparse (every text's partners, a sort
        per block: the project's code before issue #13), timed on PLAIN_POOL_ROWS rows; the
        posting cap is the project's own (``_cap_postings``)."""
        import scipy.sparse as sp
        from llmclust.methods.lumi.config import LumiConfig
        from llmclust.methods.lumi.pooling import (
            _cap_postings,
            incidence,
            label_level_pool,
        )

        cfg, t0 = LumiConfig(), time.perf_counter()
        top = cfg.text_pool_top_m
        S = incidence(inp["sets"], inp["n_labels"])
        h = label_level_pool(inp["x"], inp["label_vectors"], S)
        capped = _cap_postings(S, cfg.label_posting_cap, cfg.seed)
        prep, t0 = time.perf_counter() - t0, time.perf_counter()
        n, rows = S.shape[0], min(S.shape[0], PLAIN_POOL_ROWS)
        sizes = np.asarray(S.sum(axis=1)).ravel()
        inter = (S[:rows] @ capped.T).tocoo()
        keep = inter.row != inter.col
        i, j, shared = inter.row[keep], inter.col[keep], inter.data[keep]
        J = shared / (sizes[i] + sizes[j] - shared)
        order = np.lexsort((j, -J, i))
        i, j, J = i[order], j[order], J[order]
        kept = np.arange(len(i)) - np.searchsorted(i, i) < top  # rank within the row
        W = sp.csr_matrix((J[kept], (i[kept], j[kept])), shape=(rows, n)) + sp.eye(rows, n, format="csr")
        (W @ h) / np.asarray(W.sum(axis=1))
        return {"seconds": prep + (time.perf_counter() - t0) * n / rows, "timed_rows": rows}


class Triplets:
    load = Clustering.load

    @staticmethod
    def ours(inp, tmp):
        from llmclust.methods.clusterllm.config import TripletConfig
        from llmclust.methods.clusterllm.triplets import sample_triplets

        return {"triplets": len(sample_triplets(inp["x"], TripletConfig()).rows)}

    @staticmethod
    def plain(inp, tmp):
        """Coarse KMeans, the K_c closest centres of every text, Student-t entropy, the top band."""
        import faiss
        from llmclust.methods.clusterllm.config import TripletConfig

        x, cfg = inp["x"], TripletConfig()
        k, n = min(cfg.coarse_k, len(x) // 2), len(x)
        km = faiss.Kmeans(D, k, niter=50, seed=cfg.seed, max_points_per_centroid=1024)
        km.train(x)
        _, labels = km.index.search(x, 1)
        dist, closest = km.index.search(x, cfg.closest_count(k))
        q = (1 + dist / cfg.alpha) ** (-(cfg.alpha + 1) / 2)
        q /= q.sum(1, keepdims=True)
        anchors = np.argsort((q * np.log(q)).sum(1))[: int(cfg.band_low * n)]  # highest entropy first
        order = np.argsort(labels[:, 0])
        bounds = np.searchsorted(labels[order, 0], np.arange(k + 1))
        rng = np.random.default_rng(cfg.seed)
        a = anchors[rng.integers(0, len(anchors), cfg.budget)]
        c = closest[a][:, :2]
        size = np.maximum(bounds[c + 1] - bounds[c], 1)
        return {"triplets": len(order[bounds[c] + (rng.random(c.shape) * size).astype(np.int64)])}


class Density:
    @staticmethod
    def load(n, data):
        import faiss  # noqa: F401
        import torch  # noqa: F401

        x = vectors(n, data)
        noise = np.random.default_rng(5).standard_normal((n, D), dtype=np.float32) * 0.05
        return {"greedy": x, "candidates": np.stack([x, normalize(x + noise)], axis=1)}

    @staticmethod
    def ours(inp, tmp):
        from llmclust.methods.cotrain.preference import density_scores

        density_scores(inp["greedy"], inp["candidates"], K, DENSITY_RUNS, 0)
        return {"runs": DENSITY_RUNS, "candidates_per_text": CANDIDATES}

    @staticmethod
    def plain(inp, tmp):
        import faiss
        from llmclust.methods.cotrain.preference import MAX_POINTS_PER_CENTRE

        flat = inp["candidates"].reshape(-1, D)
        total = np.zeros(len(flat))
        for run in range(DENSITY_RUNS):
            km = faiss.Kmeans(D, K, niter=25, seed=run, max_points_per_centroid=MAX_POINTS_PER_CENTRE)
            km.train(inp["greedy"])
            dist, _ = km.index.search(flat, 1)
            total += np.sqrt(np.maximum(dist[:, 0], 0))
        return {"runs": DENSITY_RUNS}


class Naming:
    @staticmethod
    def load(n, data):
        import sklearn.feature_extraction.text  # noqa: F401

        topic = topics(n, data)
        return {"texts": texts_of(topic), "labels": cluster_labels(topic, 0, K)}

    @staticmethod
    def ours(inp, tmp):
        from llmclust.pipeline.naming import keyword_names

        keyword_names(inp["texts"], inp["labels"], K)
        return {}

    @staticmethod
    def plain(inp, tmp):
        """Class TF-IDF as BERTopic computes it: one document per cluster, CountVectorizer."""
        from sklearn.feature_extraction.text import CountVectorizer

        order = np.argsort(inp["labels"], kind="stable")
        bounds = np.searchsorted(inp["labels"][order], np.arange(K + 1))
        texts = inp["texts"]
        docs = [" ".join(texts[i] for i in order[bounds[c]:bounds[c + 1]].tolist()) for c in range(K)]
        counts = CountVectorizer(stop_words="english").fit_transform(docs).toarray().astype(float)
        tf = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        np.argsort(-(tf * np.log(1 + counts.sum(axis=1).mean() / np.maximum(counts.sum(axis=0), 1))), axis=1)[:, :3]
        return {}


class Evaluation:
    @staticmethod
    def load(n, data):
        import pyarrow as pa
        import pyarrow.parquet as pq

        topic, path = topics(n, data), data / f"truth_{n}.parquet"
        if not path.exists():
            pq.write_table(pa.table({"category": pa.array([f"intent {t}" for t in topic.tolist()])}), path)
        return {"path": path, "labels": [cluster_labels(topic, s, K) for s in SEEDS],
                "ids": pa.array([str(i) for i in range(n)])}

    @staticmethod
    def ours(inp, tmp):
        from llmclust.pipeline.clustering import KMeansRun
        from llmclust.pipeline.corpus import CorpusConfig
        from llmclust.pipeline.evaluation import (
            EvaluationConfig,
            GroundTruth,
            evaluate_stage,
        )

        run, up = run_dir(tmp)
        truth = GroundTruth(EvaluationConfig(label_column="category", labels_path=str(inp["path"])), CorpusConfig(), inp["ids"])
        runs = [KMeansRun(s, labels, np.zeros((K, 1), np.float32), 0.0) for s, labels in zip(SEEDS, inp["labels"])]
        return {"acc_mean": evaluate_stage(run, truth, runs, up)["acc_mean"]}

    @staticmethod
    def plain(inp, tmp):
        import pyarrow.parquet as pq
        from scipy.optimize import linear_sum_assignment
        from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

        _, truth = np.unique(pq.read_table(inp["path"]).column("category").to_numpy(zero_copy_only=False), return_inverse=True)
        accs = []
        for labels in inp["labels"]:
            counts = np.zeros((labels.max() + 1, truth.max() + 1), np.int64)
            np.add.at(counts, (labels, truth), 1)
            rows, cols = linear_sum_assignment(-counts)
            accs.append(counts[rows, cols].sum() / len(truth))
            normalized_mutual_info_score(truth, labels), adjusted_rand_score(truth, labels)
        return {"acc_mean": round(100 * float(np.mean(accs)), 2)}


class Reduce:
    """UMAP to 5 dimensions fitted on REDUCE_FIT_SAMPLE rows, the rest transformed in batches
    (``reduce.fit_sample``, as a job at millions of texts runs it), one seed. Plain: umap-learn
    fitted on the same sample and ``transform`` over the rest."""

    @staticmethod
    def load(n, data):
        import umap  # noqa: F401  (numba compiles on first use: inside both timings alike)

        return {"x": vectors(n, data)}

    @staticmethod
    def _cfg():
        from llmclust.pipeline.reduction import ReductionConfig

        return ReductionConfig(method="umap", fit_sample=REDUCE_FIT_SAMPLE, n_epochs=0)  # as gpu.yaml at scale

    @staticmethod
    def ours(inp, tmp):
        from llmclust.pipeline.reduction import reduce_stage

        run, up = run_dir(tmp)
        reduce_stage(run, Reduce._cfg(), inp["x"], up, [0])
        return {"fit_sample": REDUCE_FIT_SAMPLE}

    @staticmethod
    def plain(inp, tmp):
        import umap

        x, cfg = inp["x"], Reduce._cfg()
        fit = np.sort(np.random.default_rng(0).choice(len(x), min(len(x), REDUCE_FIT_SAMPLE), replace=False))
        model = umap.UMAP(n_neighbors=cfg.n_neighbors, n_components=cfg.n_components, min_dist=cfg.min_dist,
                          metric=cfg.metric, n_epochs=cfg.n_epochs or None, random_state=0, n_jobs=1,
                          force_approximation_algorithm=True).fit(x[fit])
        rest = np.setdiff1d(np.arange(len(x)), fit)
        for start in range(0, len(rest), cfg.transform_batch_rows):
            model.transform(x[rest[start:start + cfg.transform_batch_rows]])
        return {"fit_sample": REDUCE_FIT_SAMPLE}


class Publish:
    @staticmethod
    def load(n, data):
        import pyarrow as pa
        from llmclust import schema
        from llmclust.methods.job import JobConfig
        from llmclust.pipeline.clustering import KMeansRun

        topic = topics(n, data)
        table = pa.table({schema.ROW: pa.array(np.arange(n)), schema.ID: pa.array([str(i) for i in range(n)]),
                          schema.TEXT: texts_of(topic)})
        best = KMeansRun(0, cluster_labels(topic, 0, K), np.zeros((K, D), np.float32), 0.0)
        return {"x": vectors(n, data), "table": table, "best": best, "names": [f"cluster {c}" for c in range(K)],
                "cfg": JobConfig()}

    @staticmethod
    def ours(inp, tmp):
        from llmclust.pipeline.publish import publish

        run, _ = run_dir(tmp)
        publish(run, inp["cfg"], inp["table"], inp["best"], inp["names"], inp["x"], "synthetic", None)
        return {}

    @staticmethod
    def plain(inp, tmp):
        import pyarrow as pa
        import pyarrow.parquet as pq
        import scipy.sparse as sp

        x, labels, n = inp["x"], inp["best"].labels, len(inp["x"])
        sums = sp.csr_matrix((np.ones(n, np.float32), (labels, np.arange(n))), shape=(K, n)) @ x
        centroids = normalize(sums)
        table = inp["table"].append_column("cluster", pa.array(labels)).append_column(
            "cluster_name", pa.array(np.asarray(inp["names"], dtype=object)[labels].tolist())).append_column(
            "score", pa.array(np.einsum("nd,nd->n", x, centroids[labels])))
        pq.write_table(table, tmp / "assignments.parquet")
        pq.write_table(pa.table({"cluster": np.arange(K), "centroid": list(centroids)}), tmp / "clusters.parquet")
        (tmp / "result.json").write_text(json.dumps({"n": n, "k": K}))
        return {}


STAGES = {"neighbours": Neighbours, "clustering": Clustering, "lumi_pooling": Pooling, "triplets": Triplets,
          "density": Density, "naming": Naming, "evaluation": Evaluation, "publish": Publish, "reduce": Reduce}
