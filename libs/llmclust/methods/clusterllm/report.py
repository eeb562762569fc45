"""What the report shows of ClusterLLM's choice of K: one sentence and the F-beta curve over K.

Example::

    granularity = json.loads(Path("runs/x/granularity/granularity.json").read_text())
    granularity_sentence(granularity, config), granularity_figure(granularity)
"""

from __future__ import annotations


def granularity_sentence(g: dict, config: dict) -> str:
    """How K was chosen, in one sentence."""
    configured = config.get("clustering", {}).get("n_clusters")
    beta = config.get("clusterllm", {}).get("granularity", {}).get("beta", "?")
    classical = ", ".join(f"{name} {k}" for name, k in sorted(g["classical"].items()))
    pairs = (f"the merge level whose clusters best agree with {g['answered']} answered pair judgements by "
             f"{g['judge']} (F-beta, beta = {beta}; {g['unanswered']} pairs unanswered)")
    fallback = "the unsupervised estimate" if configured == "auto" else f"clustering.n_clusters = {configured}"
    if g["audit"]["weight"] == 0:
        chosen = (f"K = {g['k']}, from {fallback}: the audit gave the pair answers no weight "
                  f"({g['audit']['decision']}); ClusterLLM would have taken {g['k_from_pairs']}, {pairs}. ")
    else:
        unused = "the estimate's own K" if configured == "auto" else fallback
        chosen = f"K = {g['k']}, chosen by ClusterLLM: {pairs}; {unused} was not used. "
    band = " The merge levels were the estimate's band." if configured == "auto" else ""
    return chosen + f"Classical estimates on the same hierarchy: {classical}.{band}"


def granularity_figure(g: dict):
    """F-beta of the judge's pair answers against K, the chosen K and the classical estimates marked."""
    import plotly.graph_objects as go

    curve = {int(k): v for k, v in g["fbeta"].items()}
    ks = sorted(curve)
    fig = go.Figure(go.Scatter(x=ks, y=[curve[k] for k in ks], mode="lines+markers", name="F-beta"))
    fig.add_vline(x=g["k"], line=dict(color="#d62728", width=2),
                  annotation_text=f"chosen K = {g['k']}", annotation_position="top right")
    by_k: dict[int, list[str]] = {}
    for name, k in sorted(g["classical"].items()):
        by_k.setdefault(k, []).append(name)  # estimates often agree: one line and label per K
    for k, estimates in by_k.items():
        fig.add_vline(x=k, line=dict(color="#888", dash="dot"), annotation_text=f"{', '.join(estimates)}: {k}",
                      annotation_position="bottom right")
    fig.update_layout(xaxis_title="K (level of the merge hierarchy)", yaxis_title="F-beta of the pair answers",
                      showlegend=False)
    return fig
