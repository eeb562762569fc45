"""ClusterLLM job: fine-tune the embedder on the LLM's triplet answers, then KMeans (or choose K).

    python cluster_jobs/clusterllm.py --config ray_configs/clusterllm_local.yaml
    python cluster_jobs/clusterllm.py --config ray_configs/clusterllm_local.yaml corpus.limit=500 clustering.n_clusters=20
    python cluster_jobs/clusterllm.py --config ray_configs/clusterllm_local.yaml clusterllm.choose_k=true clusterllm.iterations=2
    ray job submit --address http://127.0.0.1:8265 --working-dir . -- python cluster_jobs/clusterllm.py

Steps: 1. corpus, 2. embed, 3. per iteration: sample triplets, ask the LLM, fine-tune (Ray Train),
re-embed, 4. optionally choose K from pair answers, 5. KMeans, names, evaluation.
Outputs (in run.dir): report/index.html (unless --no-report; its path is the last line printed),
job.log (Ray's output and every log line), assignments.parquet, clusters.parquet, result.json, train_iter*/embedder
(the fine-tuned embedder), granularity/granularity.json, one folder per stage.
"""

from llmclust.cli import run_job


def main(argv=None):
    # config + preflight (exit 2 on bad input) -> console -> Ray -> fit -> summary -> report
    return run_job(__doc__, argv, method="clusterllm")


if __name__ == "__main__":
    main()
