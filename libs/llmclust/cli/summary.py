"""A fitted job's closing lines on stdout: the method's own lines, sizes, metrics, where outputs went.

Example::

    print_summary(model)          # after model.fit(), in a job script
    print(metrics_table("lumi", model.metrics_, model.baseline_metrics_))
"""

from __future__ import annotations

import logging

from llmclust.cli.console import ConsoleHandler
from llmclust.pipeline.evaluation import BASELINE_ROW


def metrics_table(method: str, metrics: dict, baseline: dict | None) -> str:
    """ACC / NMI / ARI (mean ± std over KMeans seeds) of the method, and of the baseline beside it."""
    rows = [(method, metrics)] + ([(BASELINE_ROW, baseline)] if baseline else [])
    width = max(len(name) for name, _ in rows)

    def cell(m: dict, key: str) -> str:
        return f"{m[f'{key}_mean']:6.2f} ± {m.get(f'{key}_std', 0.0):<5.2f}"

    lines = [f"{'':<{width}}  {'ACC':^14}  {'NMI':^14}  {'ARI':^14}".rstrip()]
    lines += [f"{name:<{width}}  {cell(m, 'acc')}  {cell(m, 'nmi')}  {cell(m, 'ari')}".rstrip() for name, m in rows]
    return "\n".join(lines)


def print_summary(model) -> None:
    """The closing lines of a fitted clusterer: :meth:`TextClusterer.summary_lines`, sizes, metrics.

    With ground truth the metrics are a table: the method, and (``evaluation.compare_baseline``)
    the untrained embedder + KMeans on the same texts with the same K beside it.
    """
    for handler in logging.getLogger().handlers:  # the last log line may be open for rewriting
        if isinstance(handler, ConsoleHandler):
            handler.end_line()
    for line in model.summary_lines():
        print(line)
    print(f"clustered {len(model.labels_)} texts into {len(model.cluster_names_)} clusters")
    if model.metrics_:
        baseline = getattr(model, "baseline_metrics_", None)
        if baseline:
            print(metrics_table(model.method, model.metrics_, baseline))
        else:
            m = model.metrics_
            print(f"ACC {m['acc_mean']:.2f} ± {m['acc_std']:.2f}  NMI {m['nmi_mean']:.2f} ± {m['nmi_std']:.2f}  "
                  f"ARI {m['ari_mean']:.2f}")
    print(f"outputs: {model.run_dir_}")
