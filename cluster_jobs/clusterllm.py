"""ClusterLLM job: fine-tune the embedder on the LLM's triplet answers, then KMeans (or choose K).

    python cluster_jobs/clusterllm.py --config ray_configs/clusterllm_local.yaml
    python cluster_jobs/clusterllm.py --config ray_configs/clusterllm_local.yaml corpus.limit=500 clustering.n_clusters=20
    python cluster_jobs/clusterllm.py --config ray_configs/clusterllm_local.yaml clusterllm.choose_k=true clusterllm.iterations=2
    ray job submit --address http://127.0.0.1:8265 --working-dir . -- python cluster_jobs/clusterllm.py

Steps: 1. corpus, 2. embed, 3. per iteration: sample triplets, ask the LLM, fine-tune (Ray Train),
re-embed, 4. optionally choose K from pair answers, 5. KMeans, names, evaluation.
Outputs (in run.dir): assignments.parquet, clusters.parquet, result.json, train_iter*/embedder
(the fine-tuned embedder), granularity/granularity.json, one folder per stage.
"""

from llmclust.cli import job_parser, parse_job_config, print_fit_summary
from llmclust.methods import ClusterLLMClusterer


def main(argv=None):
    args = job_parser(__doc__).parse_args(argv)
    cfg = parse_job_config(args, method="clusterllm")
    model = ClusterLLMClusterer(cfg).fit()
    if getattr(model, "granularity_", None):
        g = model.granularity_
        print(f"chosen K {g['k']} from {g['answered']} answered pairs; classical estimates {g['classical']}")
    print(f"fine-tuned embedder: {model.embedder_path_}")
    print_fit_summary(model)


if __name__ == "__main__":
    main()
