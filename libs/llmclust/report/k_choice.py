"""The report's "How K was chosen" for ``clustering.n_clusters: auto``: each reduced sample's
silhouette curve over K, their mean and its smoothing, the band within tolerance of the peak,
the chosen K and the estimator's reason."""

from __future__ import annotations

from llmclust.methods.base import ReportSection
from llmclust.pipeline.choose_k import standard_error


def k_choice_section(choice: dict) -> ReportSection:
    """``choice``: result.json's ``k_choice`` (:class:`llmclust.pipeline.choose_k.KEstimate`)."""
    import plotly.graph_objects as go

    curve, (lo, hi) = choice["curve"], choice["band"]
    samples = [go.Scatter(x=curve["k"], y=values, mode="lines", name=f"sample {i}", showlegend=i == 1,
                          legendgroup="samples", line=dict(color="#c8ced6", width=1))
               for i, values in enumerate(curve.get("by_sample", curve.get("by_seed", [])), start=1)]
    fig = go.Figure([*samples,
                     go.Scatter(x=curve["k"], y=curve["silhouette"], mode="markers", name="mean",
                                marker=dict(color="#6b7785", size=5)),
                     go.Scatter(x=curve["k"], y=curve["smoothed"], mode="lines", name="smoothed",
                                line=dict(color="#1f77b4", width=2))])
    fig.add_vrect(x0=lo, x1=hi, fillcolor="#1f77b4", opacity=0.12, line_width=0)
    fig.add_vline(x=choice["k"], line=dict(color="#d62728", width=2),
                  annotation_text=f"chosen K = {choice['k']}", annotation_position="top right")
    fig.update_layout(xaxis_title="K", yaxis_title="silhouette (sampled rows)",
                      legend=dict(orientation="h"))
    # runs before clustering.k_seed drew their samples from the clustering seeds and stored k_by_seed; the oldest, neither
    seeded_by_k_seed = "k_by_sample" in choice
    singles = choice.get("k_by_sample", choice.get("k_by_seed", []))
    moves = ("with other samples (clustering.k_seed); the clustering seeds do not move it" if seeded_by_k_seed
             else "in a job with other seeds")
    alone = (f" Each sample alone (grey) would have chosen {', '.join(map(str, singles))}. The mean of their curves "
             f"is steadier but not fixed: K's standard error over the samples, "
             f"±{choice.get('k_stderr', standard_error(singles))}, is about how far it would land {moves}."
             if singles else "")  # runs before 2026-12-05 stored no k_stderr
    decided = (f" The clustering used K = {choice['final_k']}, set by {choice['decided_by']}."
               if "decided_by" in choice else "")
    text = (f"K = {choice['k']}, estimated without labels (clustering.n_clusters: auto) by the {choice['estimator']}: "
            f"{choice['reason']}. The shaded band is the K range the estimate could not tell apart.{alone}{decided}")
    return ReportSection("How K was chosen", text, figure=fig)
