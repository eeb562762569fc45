"""The report's "How K was chosen" for ``clustering.n_clusters: auto``: the silhouette curve
over K, the band within tolerance of its peak, the chosen K and the estimator's reason."""

from __future__ import annotations

from llmclust.methods.base import ReportSection


def k_choice_section(choice: dict) -> ReportSection:
    """``choice``: result.json's ``k_choice`` (:class:`llmclust.pipeline.choose_k.KEstimate`)."""
    import plotly.graph_objects as go

    curve, (lo, hi) = choice["curve"], choice["band"]
    fig = go.Figure([go.Scatter(x=curve["k"], y=curve["silhouette"], mode="markers", name="silhouette",
                                marker=dict(color="#9aa5b1", size=5)),
                     go.Scatter(x=curve["k"], y=curve["smoothed"], mode="lines", name="smoothed",
                                line=dict(color="#1f77b4", width=2))])
    fig.add_vrect(x0=lo, x1=hi, fillcolor="#1f77b4", opacity=0.12, line_width=0)
    fig.add_vline(x=choice["k"], line=dict(color="#d62728", width=2),
                  annotation_text=f"chosen K = {choice['k']}", annotation_position="top right")
    fig.update_layout(xaxis_title="K", yaxis_title="silhouette (sampled rows)",
                      legend=dict(orientation="h"))
    text = (f"K = {choice['k']}, chosen without labels (clustering.n_clusters: auto) by the {choice['estimator']}: "
            f"{choice['reason']}. The shaded band is the K range the estimate could not tell apart.")
    return ReportSection("How K was chosen", text, figure=fig)
