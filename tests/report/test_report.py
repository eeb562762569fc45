"""The run report: its parts on made-up run folders, and the page of a real run in headless Chromium."""

import html
import json
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from llmclust import schema
from llmclust.methods.clusterllm.clusterer import ClusterLLMClusterer
from llmclust.methods.cotrain import columns as cotrain_columns
from llmclust.methods.cotrain.clusterer import CoTrainClusterer
from llmclust.methods.cotrain.report import iterations_figure
from llmclust.methods.lumi import columns as lumi_columns
from llmclust.methods.lumi.clusterer import LumiClusterer
from llmclust.report.clusters import cluster_rows, representatives
from llmclust.report.figures import figure_div, palette
from llmclust.report.projection import UMAP_MIN_ROWS, layout, sample_rows
from llmclust.report.run_facts import stage_facts

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def test_representatives_are_the_members_nearest_the_centre():
    clusters = np.array([1, 0, 0, 1, 0, 0])
    scores = np.array([0.5, 0.1, 0.9, 0.7, 0.8, 0.3])
    reps = representatives(clusters, scores, k=3, top=2)
    assert [r.tolist() for r in reps] == [[2, 4], [3, 0], []]


def test_sample_is_seeded_and_every_prefix_is_a_sample():
    rows = sample_rows(1000, 300, seed=0)
    assert len(set(rows.tolist())) == 300 and rows.max() < 1000
    assert (rows == sample_rows(1000, 300, seed=0)).all()
    assert (sample_rows(1000, 100, seed=0) == rows[:100]).all()  # the page shows a prefix of the layout's sample


def test_palette_colours_are_distinct():
    colours = palette(200)
    assert len(set(colours)) == 200 and all(re.fullmatch(r"#[0-9a-f]{6}", c) for c in colours)


def test_tiny_runs_get_a_pca_layout_that_says_so():
    vectors = np.random.default_rng(0).normal(size=(UMAP_MIN_ROWS - 1, 8)).astype(np.float32)
    xy, method = layout(vectors, seed=0)
    assert xy.shape == (UMAP_MIN_ROWS - 1, 2) and method.startswith("PCA") and np.isfinite(xy).all()
    assert layout(vectors[:1], seed=0)[0].shape == (1, 2)


def _assignments(texts: list[str], clusters: list[int], scores: list[float]) -> pa.Table:
    n = len(texts)
    return pa.table({schema.ROW: pa.array(range(n), pa.int64()), schema.TEXT: texts,
                     schema.CLUSTER: pa.array(clusters, pa.int64()), schema.SCORE: pa.array(scores, pa.float32())})


TEXTS = ["card lost", "lost my card", "card stolen", "top up failed", "top up pending"]
ASSIGNMENTS = _assignments(TEXTS, [0, 0, 0, 1, 1], [0.9, 0.8, 0.7, 0.6, 0.95])


def test_cluster_table_sizes_representatives_and_keywords(tmp_path):
    rows = cluster_rows(ASSIGNMENTS, ["lost card", "top up"], np.arange(5), lambda *args: None)
    assert [(r.cluster, r.size, round(r.share, 2)) for r in rows] == [(0, 3, 0.6), (1, 2, 0.4)]
    assert rows[0].representatives == ["card lost", "lost my card", "card stolen"]
    assert rows[1].representatives == ["top up pending", "top up failed"]
    assert "card" in rows[0].keywords and "pending" in rows[1].keywords and rows[0].llm_labels == []


def test_lumi_labels_are_the_clusters_most_frequent_pseudo_labels(tmp_path):
    (tmp_path / "lumi_pool").mkdir()
    labels = [["lost card"], ["lost card", "stolen card"], ["stolen card", "lost card"], ["top up"], ["top up"]]
    pq.write_table(pa.table({schema.ROW: pa.array(range(5), pa.int64()), lumi_columns.PSEUDO_LABELS: labels}),
                   tmp_path / "lumi_pool" / "pseudo_labels.parquet")
    rows = cluster_rows(ASSIGNMENTS, ["lost card", "top up"], np.arange(5),
                        lambda *args: LumiClusterer.report_labels(tmp_path, *args))
    assert rows[0].llm_labels == ["lost card (3)", "stolen card (2)"] and rows[1].llm_labels == ["top up (2)"]


def test_cotrain_labels_are_the_last_iterations_greedy_interpretations(tmp_path):
    for t, word in ((0, "old"), (1, "final")):
        stage = tmp_path / f"iter{t}_interpretations"
        stage.mkdir()
        (stage / "manifest.json").write_text("{}")
        m = 2  # greedy + one sample per text, row = text * m + candidate
        pq.write_table(pa.table({
            schema.ID: pa.array(np.repeat(np.arange(5), m), pa.int64()),
            cotrain_columns.CANDIDATE: pa.array(np.tile(np.arange(m), 5), pa.int64()),
            schema.TEXT: [f"{word} {kind} {i}" for i in range(5) for kind in ("greedy", "sampled")],
        }), stage / "candidates.parquet")
    rows = cluster_rows(ASSIGNMENTS, ["lost card", "top up"], np.arange(5),
                        lambda *args: CoTrainClusterer.report_labels(tmp_path, *args))
    assert rows[0].llm_labels == ["final greedy 0", "final greedy 1", "final greedy 2"]
    assert rows[1].llm_labels == ["final greedy 4", "final greedy 3"]


def test_stage_facts_in_finishing_order_with_llm_counts(tmp_path):
    for name, finished, extra in (("embed", "2026-01-01T00:00:02", {}),
                                  ("llm_judge", "2026-01-01T00:00:01", {"calls": 8, "cache_hits": 2, "errors": 0})):
        (tmp_path / name).mkdir()
        (tmp_path / name / "manifest.json").write_text(json.dumps(
            {"stage": name, "rows": 10, "seconds": 1.5, "finished_at": finished, **extra}))
    facts = stage_facts(tmp_path)
    assert [s.name for s in facts] == ["llm_judge", "embed"]
    assert facts[0].llm == {"calls": 8, "cache_hits": 2, "errors": 0} and facts[1].llm is None


GRANULARITY = {"k": 12, "k_from_pairs": 12, "judge": "llm:SmolLM2", "answered": 40, "unanswered": 2,
               "audit": {"weight": 1.0, "decision": "kept"},
               "classical": {"bic": 10, "elbow": 10, "silhouette": 14}, "fbeta": {"8": 0.4, "12": 0.7, "16": 0.5}}


def test_k_choice_names_the_method_that_chose_it(tmp_path):
    config = {"clustering": {"n_clusters": 77}}
    assert ClusterLLMClusterer.k_choice(tmp_path, config) is None  # K was not chosen: n_clusters
    (tmp_path / "granularity").mkdir()
    (tmp_path / "granularity" / "granularity.json").write_text(json.dumps(GRANULARITY))
    section = ClusterLLMClusterer.k_choice(tmp_path, config)
    assert section.text.startswith("K = 12, chosen by ClusterLLM") and "40 answered pair judgements" in section.text
    assert "clustering.n_clusters = 77 was not used" in section.text
    untrusted = {**GRANULARITY, "k": 9, "audit": {"weight": 0.0, "decision": "weight 0: no better than chance"}}
    (tmp_path / "granularity" / "granularity.json").write_text(json.dumps(untrusted))
    text = ClusterLLMClusterer.k_choice(tmp_path, {"clustering": {"n_clusters": "auto"}}).text
    assert text.startswith("K = 9, from the unsupervised estimate: the audit gave the pair answers no weight "
                           "(weight 0: no better than chance); ClusterLLM would have taken 12")
    assert "The merge levels were the estimate's band." in text
    curve = figure_div(section.figure)
    assert "chosen K = 12" in curve and "bic, elbow: 10" in curve and "silhouette: 14" in curve


def test_iteration_figure():
    rows = [{"iteration": 0, "acc": 60.0, "nmi": 70.0, "dpo_loss_start": 0.69, "dpo_loss_end": 0.52},
            {"iteration": 1, "acc": 58.0, "nmi": 64.4}]
    figure = figure_div(iterations_figure(rows))
    assert '"name":"NMI"' in figure and '"name":"DPO loss, last steps"' in figure and '"yaxis":"y2"' in figure


def test_metrics_put_the_method_beside_the_baseline_and_the_audit_is_a_table():
    from llmclust.report.page import _audit_section, _metrics_section

    def metrics(acc, nmi):
        return {"acc_mean": acc, "acc_std": 1.0, "nmi_mean": nmi, "nmi_std": 0.5, "ari_mean": 40.0, "ari_std": 2.0,
                "per_seed": {"0": {"acc": acc, "nmi": nmi, "ari": 40.0}}}

    config = {"evaluation": {"label_column": "category"}}
    page = _metrics_section(metrics(64.67, 80.1), config, "cotrain", {**metrics(79.33, 84.0), "k": 10, "embedder": "m"})
    rows = re.search(r'<table id="baseline-comparison">.*?<tbody>(.*?)</tbody>', page, re.S).group(1)
    assert rows.count("<tr>") == 2 and "cotrain" in rows and "baseline (same texts, same K)" in rows
    assert "64.67 ± 1.00" in rows and "79.33 ± 1.00" in rows
    assert "cotrain is 14.66 ACC points below the baseline" in page and "K = 10" in page
    assert "baseline-comparison" not in _metrics_section(metrics(60.0, 70.0), config, "baseline")

    audit = _audit_section({"pseudo-labels parsed": 58, "agreement": 0.8125, "by reason": {"empty": 2}})
    cells = re.findall(r"<td>(.*?)</td>", audit)
    assert cells == ["pseudo-labels parsed", "58", "agreement", "0.8125", "by reason", html.escape('{"empty": 2}')]


def test_audits_of_several_questions_are_one_row_each():
    from llmclust.report.page import _audit_section

    audit = _audit_section({"triplets_iter1": {"weight": 0.0, "consistent": 0.7139, "agreement": 0.4973, "z": -0.1,
                                               "n": 1024, "decision": "triplets: weight 0: no signal"},
                            "pairs": {"weight": 1.0, "consistent": 1.0, "agreement": 0.9, "z": 6.5, "n": 198,
                                      "decision": "pairs: weight 1.00"}})
    rows = re.findall(r"<tr>(.*?)</tr>", audit, re.S)
    cells = [re.findall(r"<td>(.*?)</td>", r) for r in rows if "<td>" in r]
    assert cells[0] == ["triplets_iter1", "0", "0.7139", "0.4973", "-0.1", "1024", "triplets: weight 0: no signal"]
    assert cells[1][0] == "pairs" and cells[1][1] == "1"


# -- the page of a real run, in a real browser -------------------------------------------------

def png_pixels(path: Path) -> np.ndarray:
    """(h, w, channels) uint8 of an 8-bit, non-interlaced RGB(A) PNG, as Chromium writes them."""
    data, pos, idat = path.read_bytes(), 8, b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunk)
        idat += chunk if kind == b"IDAT" else b""
        pos += 12 + length
    assert depth == 8 and colour in (2, 6) and not interlace
    bpp = 3 if colour == 2 else 4
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(height, 1 + width * bpp).astype(np.int32)
    out, prev = np.zeros((height, width * bpp), np.int32), np.zeros(width * bpp, np.int32)
    for y in range(height):  # undo each row's PNG filter: none, sub, up, average, paeth
        kind, cur = raw[y, 0], raw[y, 1:].copy()
        if kind == 1:
            cur = np.cumsum(cur.reshape(width, bpp), axis=0).ravel() % 256
        elif kind == 2:
            cur = (cur + prev) % 256
        elif kind in (3, 4):
            zero = np.zeros(bpp, np.int32)
            for x in range(0, width * bpp, bpp):
                a, b = (cur[x - bpp:x] if x else zero), prev[x:x + bpp]
                c = prev[x - bpp:x] if x else zero
                if kind == 3:
                    pred = (a + b) // 2
                else:
                    pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                    pred = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
                cur[x:x + bpp] = (cur[x:x + bpp] + pred) % 256
        out[y] = prev = cur
    return out.reshape(height, width, bpp)[:, :, :3].astype(np.uint8)


def chromium(*args: str) -> subprocess.CompletedProcess:
    # swiftshader: WebGL (the map's Scattergl) without a GPU; --no-sandbox: CI runs as root
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-dev-shm-usage", "--enable-unsafe-swiftshader",
                           "--use-angle=swiftshader", "--hide-scrollbars", "--virtual-time-budget=15000", *args],
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed (apt-get install -y chromium): "
                                              "the report page was not opened in a browser")
def test_report_page_renders_map_and_table_in_chromium(ray_cluster, small_csv, tmp_path):
    from llmclust.methods import KMeansClusterer
    from llmclust.methods.job import load_job_config
    from llmclust.report import write_report

    run = tmp_path / "run"
    model = KMeansClusterer(load_job_config(None, [
        f"corpus.path={small_csv}", f"run.dir={run}", "clustering.n_clusters=10", "clustering.seeds=[0]",
        "evaluation.label_column=category"])).fit()
    page = write_report(run, page_points=150)
    assert page == run / "report" / "index.html"
    text = page.read_text()
    assert "150 of 200 texts shown" in text and "UMAP" in text and "<script src=" not in text  # nothing fetched

    dom = chromium("--dump-dom", page.as_uri()).stdout
    table = re.search(r'<table id="clusters">.*?<tbody>(.*?)</tbody>', dom, re.S).group(1)
    assert table.count("<tr>") == 10 and table.count("<li>") == 50  # 10 clusters, 5 representative texts each
    assert 'class="main-svg"' in dom and "<canvas" in dom  # plotly ran: axes in SVG, the points in WebGL
    drawn = [html.unescape(t) for t in re.findall(r'class="annotation-text"[^>]*>([^<]*)</text>', dom)]
    assert sorted(drawn) == sorted(model.cluster_names_)  # every cluster named on the map
    assert 'class="gtitle"' in dom and "ACC" in dom

    shot = tmp_path / "map.png"
    chromium(f"--screenshot={shot}", "--window-size=1000,760", page.as_uri())
    pixels = png_pixels(shot).reshape(-1, 3).astype(int)
    coloured = pixels[pixels.max(axis=1) - pixels.min(axis=1) > 80]  # saturated: points, swatches, not text
    hues = {tuple(p // 64) for p in coloured}
    assert len(coloured) > 500 and len(hues) >= 6, (len(coloured), hues)  # many points, many cluster colours
