"""LUMI job: LLM pseudo-labels (several per text) pooled into the embeddings, then KMeans.

    python cluster_jobs/lumi.py --config ray_configs/lumi_local.yaml
    python cluster_jobs/lumi.py --config ray_configs/lumi_local.yaml corpus.limit=200 clustering.n_clusters=10
    python cluster_jobs/lumi.py --config ray_configs/lumi_local.yaml llm.backend=openai \\
        llm.base_url=http://127.0.0.1:8000/v1 llm.model=Qwen2.5-7B-Instruct lumi.label_context_k=10
    ray job submit --address http://127.0.0.1:8265 --working-dir . -- python cluster_jobs/lumi.py

Steps: 1. corpus, 2. embed, 3. neighbours, 4. LLM labels, 5. label embeddings, 6. candidate
labels, 7. LLM multi-label choice, 8. pooling, 9. KMeans over seeds, 10. names, evaluation.
Rerunning with the same run directory resumes; the LLM response cache makes no repeated call.

Outputs (in run.dir): report/index.html (unless --no-report; its path is the last line printed),
job.log (Ray's output and every log line), assignments.parquet (with cluster names), clusters.parquet, result.json,
lumi_pool/pseudo_labels.parquet, lumi_labels/answers.parquet (prompts and raw answers).
"""

from llmclust.cli import run_job


def main(argv=None):
    # config + preflight (exit 2 on bad input) -> console -> Ray -> fit -> summary -> report
    return run_job(__doc__, argv, method="lumi")


if __name__ == "__main__":
    main()
