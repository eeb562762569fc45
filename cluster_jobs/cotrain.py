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

Outputs (in run.dir): iterations.json (the table below), iter<t>_*/ stage folders (answers,
pairs, the LoRA adapter, the fine-tuned embedder), assignments.parquet, clusters.parquet,
result.json.
"""

from llmclust.cli import job_parser, parse_job_config, print_fit_summary
from llmclust.methods import CoTrainClusterer


def _fmt(value, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def iteration_table(rows: list[dict]) -> str:
    """One line per iteration: ACC, NMI, DPO loss start -> end, pairs, seconds."""
    lines = [f"{'iter':>4}  {'ACC':>6}  {'NMI':>6}  {'DPO loss':>15}  {'pairs':>6}  {'seconds':>8}"]
    for r in rows:
        dpo = f"{_fmt(r.get('dpo_loss_start'), '.4f')} -> {_fmt(r.get('dpo_loss_end'), '.4f')}" if "dpo_loss_start" in r else "-"
        lines.append(f"{r['iteration']:>4}  {_fmt(r['acc']):>6}  {_fmt(r['nmi']):>6}  {dpo:>15}  "
                     f"{r.get('pairs', '-'):>6}  {r['seconds']:>8.1f}")
    return "\n".join(lines)


def main(argv=None):
    # 1. config: YAML + overrides, checked before any work; the method is forced
    args = job_parser(__doc__).parse_args(argv)
    cfg = parse_job_config(args, method="cotrain")
    # 2. run (or resume) corpus -> iterations -> final clustering -> evaluation -> publish
    model = CoTrainClusterer(cfg).fit()
    # 3. report
    print(iteration_table(model.iterations_))
    print(f"embedder {model.embedder_path_}, adapter {model.adapter_path_ or 'none'}")
    print_fit_summary(model)
    return model


if __name__ == "__main__":
    main()
