"""Baseline job: embed the corpus with the configured embedder and run KMeans over seeds.

    python cluster_jobs/baseline.py --config ray_configs/local.yaml
    python cluster_jobs/baseline.py --config ray_configs/local.yaml corpus.limit=500 clustering.n_clusters=20
    ray job submit --address http://127.0.0.1:8265 --working-dir . -- python cluster_jobs/baseline.py

Outputs (in run.dir): assignments.parquet, clusters.parquet, result.json, one folder per stage.
"""

from llmclust.cli import job_parser, parse_job_config, print_fit_summary
from llmclust.methods import KMeansClusterer


def main(argv=None):
    args = job_parser(__doc__).parse_args(argv)
    cfg = parse_job_config(args, method="baseline")
    print_fit_summary(KMeansClusterer(cfg).fit())


if __name__ == "__main__":
    main()
