"""The report's plotly figures: the cluster map, and the figures methods add (:func:`figure_div`).

Each is returned as an HTML ``<div>`` without plotly.js (the page inlines it once). The map
is one WebGL trace (``Scattergl``: tens of thousands of points stay smooth) with a colour per
point and the cluster names as annotations at each cluster's median position.

Example::

    import numpy as np
    xy = np.random.default_rng(0).normal(size=(100, 2))
    html = map_div(xy, np.arange(100) % 3, ["a", "b", "c"], palette(3), ["text"] * 100, "UMAP")
"""

from __future__ import annotations

import colorsys
import html
import textwrap

import numpy as np

MAX_NAMED = 100  # cluster names drawn on the map (the largest clusters); more would hide the points
HOVER_WIDTH = 70  # characters per hover line
CONFIG = {"displaylogo": False, "responsive": True}


def palette(k: int) -> list[str]:
    """``k`` distinguishable colours: hues a golden angle apart, two lightness levels alternating."""
    colours = []
    for c in range(k):
        r, g, b = colorsys.hls_to_rgb((c * 0.381966) % 1.0, 0.42 if c % 2 else 0.55, 0.75)
        colours.append(f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}")
    return colours


def _div(fig, height: int) -> str:
    fig.update_layout(height=height, margin=dict(l=40, r=20, t=30, b=40), template="plotly_white")
    return fig.to_html(full_html=False, include_plotlyjs=False, config=CONFIG)


def _hover(name: str, text: str) -> str:
    lines = textwrap.wrap(text, HOVER_WIDTH) or [""]
    return f"<b>{html.escape(name)}</b><br>" + "<br>".join(html.escape(line) for line in lines)


def map_div(xy: np.ndarray, clusters: np.ndarray, names: list[str], colours: list[str], texts: list[str],
            title: str, named: np.ndarray | None = None) -> str:
    """Points at ``xy`` coloured by cluster, hover: name + text; names at the median of each cluster in
    ``named`` (default: every cluster present, at most MAX_NAMED, largest first)."""
    import plotly.graph_objects as go

    fig = go.Figure(go.Scattergl(
        x=xy[:, 0], y=xy[:, 1], mode="markers", hoverinfo="text",
        hovertext=[_hover(names[c], t) for c, t in zip(clusters, texts)],
        marker=dict(color=np.asarray(colours, dtype=object)[clusters], size=6, opacity=0.8),
    ))
    if named is None:
        present, counts = np.unique(clusters, return_counts=True)
        named = present[np.argsort(-counts, kind="stable")][:MAX_NAMED]
    for c in named:
        x, y = np.median(xy[clusters == c], axis=0)
        # no box: boxes hide the very points they name; a white halo keeps the text readable
        fig.add_annotation(x=x, y=y, text=html.escape(names[c][:40]), showarrow=False,
                           font=dict(size=10, color="#222", shadow="auto"))
    fig.update_layout(title=dict(text=html.escape(title), font=dict(size=13)), showlegend=False, hovermode="closest",
                      dragmode="pan", xaxis=dict(visible=False), yaxis=dict(visible=False))
    return _div(fig, 720)


def figure_div(fig, height: int = 380) -> str:
    """A figure a method hands the report (:class:`llmclust.methods.base.ReportSection`), as a div."""
    return _div(fig, height)
