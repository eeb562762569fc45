"""What a job's summary and the report show of co-training: the iterations, and the LLM's interpretations.

Example::

    rows = json.loads(Path("runs/x/iterations.json").read_text())
    print(iteration_table(rows)); iterations_figure(rows)
    interpretation_labels(Path("runs/x"), [np.array([0, 4])])      # the final LLM's reading of rows 0 and 4
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from llmclust import schema
from llmclust.methods.cotrain import columns

ITERATIONS_FILE = "iterations.json"  # in the run directory: ACC / NMI / DPO loss / pairs per iteration
CANDIDATES_FILE = "candidates.parquet"  # in each iter<t>_interpretations stage


def _fmt(value, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def iteration_table(rows: list[dict]) -> str:
    """Co-training, one line per iteration: ACC, NMI, DPO loss start -> end, pairs, seconds."""
    lines = [f"{'iter':>4}  {'ACC':>6}  {'NMI':>6}  {'DPO loss':>15}  {'pairs':>6}  {'seconds':>8}"]
    for r in rows:
        dpo = (f"{_fmt(r.get('dpo_loss_start'), '.4f')} -> {_fmt(r.get('dpo_loss_end'), '.4f')}"
               if "dpo_loss_start" in r else "-")
        lines.append(f"{r['iteration']:>4}  {_fmt(r['acc']):>6}  {_fmt(r['nmi']):>6}  {dpo:>15}  "
                     f"{r.get('pairs', '-'):>6}  {r['seconds']:>8.1f}")
    return "\n".join(lines)


def iterations_figure(iterations: list[dict]):
    """ACC and NMI per co-training iteration (left axis) and the DPO loss at its start and end (right axis)."""
    import plotly.graph_objects as go

    it = [r["iteration"] for r in iterations]
    fig = go.Figure()
    for key, label in (("acc", "ACC"), ("nmi", "NMI")):
        fig.add_trace(go.Scatter(x=it, y=[r.get(key) for r in iterations], mode="lines+markers", name=label))
    for key, label in (("dpo_loss_start", "DPO loss, first steps"), ("dpo_loss_end", "DPO loss, last steps")):
        fig.add_trace(go.Scatter(x=it, y=[r.get(key) for r in iterations], mode="lines+markers", name=label,
                                 yaxis="y2", line=dict(dash="dot")))
    fig.update_layout(xaxis=dict(title="iteration", dtick=1), yaxis=dict(title="ACC / NMI (%)"),
                      yaxis2=dict(title="DPO loss", overlaying="y", side="right"), legend=dict(orientation="h"))
    return fig


def interpretation_labels(run_path: Path, representatives: list[np.ndarray]) -> list[list[str]] | None:
    """The final LLM's greedy interpretation of each cluster's representative texts."""
    finished = [p.parent for p in run_path.glob("iter*_interpretations/manifest.json")]
    if not finished:
        return None
    last = max(finished, key=lambda p: int(re.match(r"iter(\d+)_", p.name).group(1)))
    table = pq.read_table(last / CANDIDATES_FILE, columns=[schema.ID, columns.CANDIDATE, schema.TEXT])
    greedy = table.filter(pc.equal(table.column(columns.CANDIDATE), 0)).sort_by(schema.ID)
    texts = greedy.column(schema.TEXT).to_pylist()  # position i: text row i (ids are row positions)
    return [[texts[r] for r in rows] for rows in representatives]
