"""A finished run as one HTML page: a map of the texts, the clusters, and how the run went.

``write_report(run_dir)`` writes ``<run_dir>/report/index.html``, a self-contained file
(plotly.js inlined: no server, no internet) that any browser opens from disk:

* a 2-D map of the texts (UMAP of the final embedder's vectors) coloured by cluster, named,
  with each text on hover; a seeded sample at large corpus sizes (:mod:`.projection`);
* the clusters: name, size, share, representative texts, keywords and the LLM labels behind
  the name (:mod:`.clusters`);
* how K was chosen (ClusterLLM's granularity curve), metrics, co-training's iterations,
  stage timings, LLM calls and cache hits, rejected rows and the settings (:mod:`.run_facts`).

Every job writes it at the end (``--no-report`` skips it); ``llmclust report RUN`` or
``python cluster_jobs/report.py --run-dir RUN`` writes it for any finished run.

Example::

    from llmclust.report import write_report
    write_report("runs/local")                                  # runs/local/report/index.html
    write_report("runs/big", max_points=50_000, page_points=5_000)
"""

from llmclust.report.page import write_report

__all__ = ["write_report"]
