"""LUMI job: LLM pseudo-labels (several per text) pooled into the embeddings, then KMeans.

    python cluster_jobs/lumi.py --config ray_configs/lumi_local.yaml
    python cluster_jobs/lumi.py --config ray_configs/lumi_local.yaml corpus.limit=200 clustering.n_clusters=10
    python cluster_jobs/lumi.py --config ray_configs/lumi_local.yaml llm.backend=openai \\
        llm.base_url=http://127.0.0.1:8000/v1 llm.model=Qwen2.5-7B-Instruct lumi.label_context_k=10
    ray job submit --address http://127.0.0.1:8265 --working-dir . -- python cluster_jobs/lumi.py

Steps: 1. corpus, 2. embed, 3. neighbours, 4. LLM labels, 5. label embeddings, 6. candidate
labels, 7. LLM multi-label choice, 8. pooling, 9. KMeans over seeds, 10. names, evaluation.
Rerunning with the same run directory resumes; the LLM response cache makes no repeated call.

Outputs (in run.dir): assignments.parquet (with cluster names), clusters.parquet, result.json,
lumi_pool/pseudo_labels.parquet, lumi_labels/answers.parquet (prompts and raw answers).
"""

from llmclust.cli import job_parser, parse_job_config, print_fit_summary
from llmclust.methods import LumiClusterer


def main(argv=None):
    args = job_parser(__doc__).parse_args(argv)
    cfg = parse_job_config(args, method="lumi")
    model = LumiClusterer(cfg).fit()
    report = model.lumi_report_
    print(f"{report['distinct_labels']} distinct pseudo-labels, {report['labels_per_text_mean']} per text")
    print_fit_summary(model)


if __name__ == "__main__":
    main()
