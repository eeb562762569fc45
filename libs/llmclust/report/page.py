"""Assemble ``<run>/report/index.html``: one file, plotly.js and every figure inlined.

The page opens from disk with no server and no internet. Its size stays bounded at any corpus
size: at most ``page_points`` texts travel with the map, each cut at ``snippet_chars``.

Example::

    path = write_report("runs/local")    # runs/local/report/index.html
"""

from __future__ import annotations

import html
import json
import os
import time
from dataclasses import replace
from pathlib import Path

import pyarrow.parquet as pq

from llmclust import schema
from llmclust.methods import clusterer_class
from llmclust.methods.base import ReportSection
from llmclust.pipeline.evaluation import BASELINE_ROW
from llmclust.report.clusters import ClusterRow, cluster_rows
from llmclust.report.figures import MAX_NAMED, figure_div, map_div, palette
from llmclust.report.k_choice import k_choice_section
from llmclust.report.projection import project
from llmclust.report.run_facts import LLM_COUNTS, RunFacts, read_run_facts

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1400px;padding:0 24px 48px;color:#222}
h1{font-size:22px;margin:20px 0 4px} h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd}
h3{font-size:14px;margin:14px 0 6px}
.muted{color:#666} .cards{display:flex;flex-wrap:wrap;gap:10px;margin:12px 0}
.card{border:1px solid #ddd;border-radius:6px;padding:6px 12px} .card b{display:block;font-size:17px}
table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid #eee;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#fafafa;position:sticky;top:0} td.num{text-align:right;white-space:nowrap}
ol{margin:0;padding-left:18px} .swatch{display:inline-block;width:12px;height:12px;border-radius:3px;margin-right:6px}
pre{background:#f7f7f7;padding:10px;overflow:auto;max-height:420px} input{padding:4px 8px;width:320px;margin-bottom:6px}
"""
# the clusters table's search box: hide rows whose text lacks the query
FILTER_JS = """
document.getElementById('cluster-filter').addEventListener('input', function (e) {
  var q = e.target.value.toLowerCase();
  document.querySelectorAll('#clusters tbody tr').forEach(function (tr) {
    tr.style.display = tr.textContent.toLowerCase().indexOf(q) >= 0 ? '' : 'none';
  });
});
"""


def _e(value) -> str:
    return html.escape(str(value))


def _cut(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: chars - 1] + "…"


def _table(headers: list[str], rows: list[list[str]], attrs: str = "") -> str:
    """An HTML table; cells are HTML already (escape before)."""
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = "".join("<tr>" + "".join(row) + "</tr>" for row in rows)
    return f"<table {attrs}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _clusters_section(rows: list[ClusterRow], colours: list[str], chars: int) -> str:
    with_llm = any(r.llm_labels for r in rows)
    headers = ["Cluster", "Size", "Share", "Representative texts (nearest the centre)", "Keywords"]
    body = []
    for r in rows:
        reps = "".join(f"<li>{_e(_cut(t, chars))}</li>" for t in r.representatives)
        cells = [f'<td><span class="swatch" style="background:{colours[r.cluster]}"></span>{_e(r.name)}'
                 f' <span class="muted">#{r.cluster}</span></td>',
                 f'<td class="num">{r.size:,}</td>', f'<td class="num">{100 * r.share:.1f} %</td>',
                 f"<td><ol>{reps}</ol></td>", f"<td>{_e(r.keywords)}</td>"]
        if with_llm:
            cells.append("<td><ol>" + "".join(f"<li>{_e(_cut(l, chars))}</li>" for l in r.llm_labels) + "</ol></td>")
        body.append(cells)
    headers += ["LLM labels behind the name"] if with_llm else []
    return ('<input id="cluster-filter" placeholder="filter clusters: a word from a name, text or keyword">'
            + _table(headers, body, 'id="clusters"') + f"<script>{FILTER_JS}</script>")


def _mean_std(metrics: dict, key: str) -> str:
    return f"{metrics[f'{key}_mean']:.2f} ± {metrics.get(f'{key}_std', 0.0):.2f}"


def _comparison(method: str, metrics: dict, baseline: dict) -> str:
    """The method beside the baseline: the untrained embedder + KMeans on the same texts, same K."""
    rows = [[f"<td>{_e(name)}</td>"] + [f'<td class="num">{_mean_std(m, key)}</td>' for key in ("acc", "nmi", "ari")]
            for name, m in ((method, metrics), (BASELINE_ROW, baseline))]
    gain = metrics["acc_mean"] - baseline["acc_mean"]
    verdict = (f"{method} is {abs(gain):.2f} ACC points {'above' if gain >= 0 else 'below'} the baseline "
               f"on these texts.")
    return (_table(["", "ACC", "NMI", "ARI"], rows, 'id="baseline-comparison"')
            + f'<p class="muted">{_e(verdict)} The baseline clusters the untrained embedder\'s vectors '
            f"({_e(baseline.get('embedder', 'the configured embedder'))}) with the same KMeans seeds and "
            f"K = {_e(baseline.get('k', '?'))}; evaluation.compare_baseline: false leaves it out.</p>")


def _metrics_section(metrics: dict | None, config: dict, method: str = "", baseline: dict | None = None) -> str:
    if not metrics:
        return '<p class="muted">No ground truth configured (evaluation.label_column is empty).</p>'
    label = config.get("evaluation", {}).get("label_column", "")
    seeds = [[f"<td>{_e(s)}</td>"] + [f'<td class="num">{v[m]:.2f}</td>' for m in ("acc", "nmi", "ari")]
             for s, v in metrics.get("per_seed", {}).items()]
    return (f"<p>ACC {metrics['acc_mean']:.2f} ± {metrics['acc_std']:.2f} · NMI {metrics['nmi_mean']:.2f} ± "
            f"{metrics['nmi_std']:.2f} · ARI {metrics['ari_mean']:.2f} ± {metrics['ari_std']:.2f} "
            f'<span class="muted">(mean ± std over KMeans seeds, against the column {_e(label)})</span></p>'
            + (_comparison(method, metrics, baseline) if baseline else "")
            + "<h3>Per seed</h3>" + _table(["seed", "ACC", "NMI", "ARI"], seeds))


def _audit_value(value) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


AUDIT_COLUMNS = ("weight", "consistent", "agreement", "z", "n", "decision")  # llmclust.llm.audit.AuditResult


def _audit_section(audit: dict) -> str:
    """What the LLM contributed (result.json ``llm_audit``): a row per audited question
    (:class:`llmclust.llm.audit.AuditResult` fields), or a row per fact for a flat dict."""
    if not audit:
        return '<p class="muted">The method reported no LLM facts.</p>'
    if all(isinstance(value, dict) for value in audit.values()):
        rows = [[f"<td>{_e(question)}</td>", *(f"<td>{_e(_audit_value(found.get(c)))}</td>" for c in AUDIT_COLUMNS)]
                for question, found in audit.items()]
        return _table(["question", *AUDIT_COLUMNS], rows, 'id="llm-audit"')
    rows = [[f"<td>{_e(key)}</td>", f"<td>{_e(_audit_value(value))}</td>"] for key, value in audit.items()]
    return _table(["", ""], rows, 'id="llm-audit"')


def _stages_section(facts: RunFacts) -> str:
    llm = any(s.llm for s in facts.stages)
    headers = ["Stage", "Rows", "Seconds", "Finished"]
    headers += ["LLM calls", "Cache hits", "Parse failures", "Errors"] if llm else []
    rows = []
    for s in facts.stages:
        cells = [f"<td>{_e(s.name)}</td>", f'<td class="num">{s.rows:,}</td>', f'<td class="num">{s.seconds:,.1f}</td>',
                 f'<td class="muted">{_e(s.finished_at)}</td>']
        if llm:
            cells += [f'<td class="num">{(s.llm or {}).get(k, "")}</td>' for k in LLM_COUNTS]
        rows.append(cells)
    return _table(headers, rows) + ('<p class="muted">Seconds are each stage\'s own, from its last run; an LLM '
                                     'stage runs inside the stage that asks it, so times overlap.</p>')


def _rejected_section(facts: RunFacts, chars: int) -> str:
    if not facts.rejected_by_reason:
        return "<p>No rows rejected.</p>"
    counts = ", ".join(f"{_e(reason)}: {n:,}" for reason, n in facts.rejected_by_reason.items())
    rows = [[f"<td>{_e(r[schema.ID])}</td>", f"<td>{_e(r[schema.REASON])}</td>",
             f"<td>{_e(_cut(r[schema.TEXT] or '', chars))}</td>"] for r in facts.rejected_examples]
    return (f"<p>{sum(facts.rejected_by_reason.values()):,} rows rejected ({counts}); the first "
            f"{len(rows)} below, all of them in corpus/rejected.parquet.</p>" + _table(["id", "reason", "text"], rows))


def _method_section(section: ReportSection) -> str:
    """A section a method adds: its paragraph, escaped here, and its figure."""
    parts = [f"<p>{_e(section.text)}</p>"] if section.text else []
    if section.figure is not None:
        parts.append(figure_div(section.figure, section.figure_height))
    return "".join(parts)


def write_report(run_dir: str | os.PathLike, max_points: int = 200_000, page_points: int = 20_000,
                 snippet_chars: int = 200, seed: int = 0) -> Path:
    """Write ``<run_dir>/report/index.html`` for a finished run and return its path.

    The map is laid out from a seeded sample of at most ``max_points`` texts and shows at most
    ``page_points`` of them, each cut at ``snippet_chars`` characters.
    """
    run_path = Path(run_dir).resolve()
    facts = read_run_facts(run_path)
    result = facts.result
    assignments = pq.read_table(run_path / result["assignments"],
                                columns=[schema.ROW, schema.TEXT, schema.CLUSTER, schema.SCORE]).sort_by(schema.ROW)
    names = pq.read_table(run_path / result["clusters"]).sort_by(schema.CLUSTER).column(schema.CLUSTER_NAME).to_pylist()
    texts, clusters = assignments.column(schema.TEXT), assignments.column(schema.CLUSTER).to_numpy()
    n, k = len(clusters), len(names)
    colours = palette(k)

    proj = project(run_path, result, texts, max_points, seed)
    shown = proj.rows[:page_points]
    snippets = [_cut(t, snippet_chars) for t in texts.take(shown).to_pylist()]
    caption = (f"{len(shown):,} of {n:,} texts shown" + (" (a seeded random sample)" if len(shown) < n else "")
               + f"; layout: {proj.method}, fitted on {len(proj.rows):,} texts in the final embedder's space; "
               f"hover texts cut at {snippet_chars} characters"
               + (f"; names drawn for the {MAX_NAMED} largest clusters" if k > MAX_NAMED else "") + ".")
    map_html = map_div(proj.xy[: len(shown)], clusters[shown], names, colours, snippets,
                       f"{n:,} texts in {k} clusters")

    method = clusterer_class(result["method"])

    def labels(clusters, representatives, k):
        return method.report_labels(run_path, clusters, representatives, k)

    # the estimate (n_clusters: auto) and the method's own choice (ClusterLLM's pair answers), either or both
    k_choices = [section for section in (k_choice_section(result["k_choice"]) if result.get("k_choice") else None,
                                         method.k_choice(run_path, facts.config)) if section is not None]
    if len(k_choices) == 2:
        k_choices[1] = replace(k_choices[1], title="The LLM's pair answers over K")
    sections = [
        ("Map of the texts", map_html + f'<p class="muted">{_e(caption)}</p>'),
        ("Clusters", _clusters_section(cluster_rows(assignments, names, proj.rows, labels), colours, snippet_chars)),
        *[(section.title, _method_section(section))
          for section in k_choices or [ReportSection("How K was chosen", f"K = {result['k']}, set by clustering.n_clusters.")]],
        ("Metrics", _metrics_section(result.get("metrics"), facts.config, result["method"],
                                     result.get("baseline_metrics"))),
    ]
    if result.get("llm_audit") is not None:
        sections.append(("LLM signal audit", _audit_section(result["llm_audit"])))
    sections += [(s.title, _method_section(s)) for s in method.report_sections(run_path)]
    sections += [("Stages", _stages_section(facts)), ("Rejected rows", _rejected_section(facts, snippet_chars)),
                 ("Settings (config.yaml)", f"<pre>{_e(facts.config_text)}</pre>")]
    return _write_page(run_path, result, n, k, sections)


def _write_page(run_path: Path, result: dict, n: int, k: int, sections: list[tuple[str, str]]) -> Path:
    from plotly.offline import get_plotlyjs

    metrics = result.get("metrics") or {}
    cards = [("method", result["method"]), ("texts", f"{n:,}"), ("clusters", k), ("best seed", result.get("seed"))]
    cards += [("ACC / NMI", f"{metrics['acc_mean']:.1f} / {metrics['nmi_mean']:.1f}")] if metrics else []
    base = result.get("baseline_metrics") or {}
    cards += [("baseline ACC / NMI", f"{base['acc_mean']:.1f} / {base['nmi_mean']:.1f}")] if base and metrics else []
    body = "".join(f"<h2>{_e(title)}</h2>{content}" for title, content in sections)
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>llmclust report: {_e(run_path.name)}</title>"
            f"<style>{STYLE}</style><script>{get_plotlyjs()}</script></head><body>"
            f"<h1>llmclust report: {_e(run_path.name)}</h1>"
            f"<div class='muted'>{_e(run_path)} · embedder {_e(result['embedder'])} · written "
            f"{time.strftime('%Y-%m-%d %H:%M')}</div><div class='cards'>"
            + "".join(f"<div class='card'><span class='muted'>{_e(a)}</span><b>{_e(b)}</b></div>" for a, b in cards)
            + f"</div>{body}</body></html>")
    out = run_path / "report" / "index.html"
    out.parent.mkdir(exist_ok=True)
    tmp = out.with_name("index.html.tmp")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, out)  # a reader never sees half a page
    return out
