"""Report job: <run dir>/report/index.html for a finished run, one file that opens from disk.

    python cluster_jobs/report.py --run-dir runs/local
    python cluster_jobs/report.py --run-dir runs/big --max-points 50000 --page-points 5000
    ray job submit --address http://127.0.0.1:8265 --working-dir . -- python cluster_jobs/report.py --run-dir /shared/runs/big

The page: a 2-D map of the texts (UMAP of the final embedder's vectors, a seeded sample of at
most --max-points; --page-points of them shown) coloured and named by cluster, the clusters
with representative texts, keywords and LLM labels, how K was chosen, metrics, stage timings,
LLM calls, rejected rows and the settings. Every clustering job writes it at its end already
(unless --no-report). The last line printed is the page's path.
"""

from llmclust.cli import report_main


def main(argv=None):
    report_main(argv, __doc__)


if __name__ == "__main__":
    main()
