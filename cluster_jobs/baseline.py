"""Baseline job: embed the corpus with the configured embedder and run KMeans over seeds.

    python cluster_jobs/baseline.py --config ray_configs/local.yaml
    python cluster_jobs/baseline.py --config ray_configs/local.yaml corpus.limit=500 clustering.n_clusters=20
    ray job submit --address http://127.0.0.1:8265 --working-dir . -- python cluster_jobs/baseline.py

Outputs (in run.dir): assignments.parquet, clusters.parquet, result.json, one folder per stage.
"""

from llmclust.cli import job_parser, parse_job_config
from llmclust.methods import KMeansClusterer


def main(argv=None):
    args = job_parser(__doc__).parse_args(argv)
    cfg = parse_job_config(args, method="baseline")
    model = KMeansClusterer(cfg).fit()
    print(f"clustered {len(model.labels_)} texts into {len(model.cluster_names_)} clusters")
    if model.metrics_:
        m = model.metrics_
        print(f"ACC {m['acc_mean']:.2f} ± {m['acc_std']:.2f}  NMI {m['nmi_mean']:.2f} ± {m['nmi_std']:.2f}  ARI {m['ari_mean']:.2f}")
    print(f"outputs: {model.run_dir_}")


if __name__ == "__main__":
    main()
