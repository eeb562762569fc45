"""Baseline job: embed the corpus with the configured embedder and run KMeans over seeds.

    python cluster_jobs/baseline.py --config ray_configs/local.yaml
    python cluster_jobs/baseline.py --config ray_configs/local.yaml corpus.limit=500 clustering.n_clusters=20
    ray job submit --address http://127.0.0.1:8265 --working-dir . -- python cluster_jobs/baseline.py

Outputs (in run.dir): report/index.html (unless --no-report; its path is the last line printed),
job.log (Ray's output and every log line), assignments.parquet, clusters.parquet, result.json, one folder per stage.
"""

from llmclust.cli import run_job


def main(argv=None):
    # config + preflight (exit 2 on bad input) -> console -> Ray -> fit -> summary -> report
    return run_job(__doc__, argv, method="baseline")


if __name__ == "__main__":
    main()
