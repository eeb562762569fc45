"""Baseline: the embedder alone, then KMeans. The reference every method is measured against.

Example::

    from llmclust.methods.job import JobConfig
    cfg = JobConfig(); cfg.clustering.n_clusters = 2; cfg.run.dir = "/tmp/llmclust-demo"
    model = KMeansClusterer(cfg).fit(["lost my card", "card missing", "top up failed", "top-up declined"])
    model.labels_, model.cluster_names_, model.predict(["where is my card"])
"""

from llmclust.methods.base import TextClusterer


class KMeansClusterer(TextClusterer):
    method = "baseline"
    compares_to_baseline = False  # it is the baseline
