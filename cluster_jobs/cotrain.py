"""Density-guided DPO co-training job: the LLM and the embedder train each other, then KMeans.

    python cluster_jobs/cotrain.py --config ray_configs/cotrain_local.yaml
    python cluster_jobs/cotrain.py --config ray_configs/cotrain_local.yaml corpus.limit=300 cotrain.iterations=1
    ray job submit --address http://127.0.0.1:8265 --working-dir . \\
        --runtime-env-json '{"env_vars": {"PYTHONPATH": "libs"}}' -- \\
        python cluster_jobs/cotrain.py --config ray_configs/cotrain_local.yaml corpus.limit=300

The method is always ``cotrain``, whatever the YAML says. Rerunning the same command in the
same run directory resumes after the last finished stage (a killed job loses at most one
stage). Steps per iteration: generate interpretations -> cluster/evaluate -> density
preference -> LoRA DPO -> embedder training; see llmclust/cotrain.py.

Outputs (in run.dir): report/index.html (unless --no-report; its path is the last line printed),
job.log (Ray's output and every log line), iterations.json (the table below), iter<t>_*/ stage folders (answers,
pairs, the LoRA adapter, the fine-tuned embedder), assignments.parquet, clusters.parquet,
result.json.
"""

from llmclust.cli import run_job


def main(argv=None):
    # config + preflight (exit 2 on bad input) -> console -> Ray -> fit -> summary -> report
    return run_job(__doc__, argv, method="cotrain")


if __name__ == "__main__":
    main()
