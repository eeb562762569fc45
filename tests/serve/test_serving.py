"""The Serve endpoint over real HTTP: a published run of the Banking77 subset, served locally."""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import requests
from helpers import REPO, SMALL_CSV, free_port
from llmclust import schema
from llmclust.config import ConfigError
from llmclust.serve.app import ServeConfig, app_builder, check_limits

LIMITS = {"max_texts": 16, "max_chars": 300, "max_batch_size": 64, "max_body_bytes": 20_000}
JSON = {"content-type": "application/json"}




def make_run(run_dir: Path) -> None:
    """A finished run written by the real job path: the baseline clusterer's ``fit``, clustering
    through a UMAP reducer as the local config does, so serving must map texts through it."""
    from llmclust.methods import KMeansClusterer
    from llmclust.methods.job import load_job_config

    cfg = load_job_config(None, [f"corpus.path={SMALL_CSV}", f"run.dir={run_dir}", "reduce.method=umap",
                                 "clustering.n_clusters=10", "clustering.seeds=[0]"])
    KMeansClusterer(cfg).fit()


@pytest.fixture(scope="module")
def served(ray_cluster, tmp_path_factory):
    """(base URL, run dir) of the app serving a fresh run; Serve is shut down afterwards."""
    from ray import serve

    run_dir = tmp_path_factory.mktemp("serve") / "run"
    make_run(run_dir)
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(app_builder({"run_dir": str(run_dir), **LIMITS}), name="assign-test", route_prefix="/")
    yield f"http://127.0.0.1:{port}", run_dir
    serve.shutdown()


def post(url: str, **kwargs) -> requests.Response:
    return requests.post(url + "/assign", timeout=60, **kwargs)


@pytest.mark.slow
def test_texts_of_the_run_come_back_in_their_clusters(served):
    url, run_dir = served
    table = pq.read_table(run_dir / "assignments.parquet").slice(0, 48)
    texts = table.column(schema.TEXT).to_pylist()
    names = pq.read_table(run_dir / "clusters.parquet").column(schema.CLUSTER_NAME).to_pylist()
    got = []
    for start in range(0, len(texts), LIMITS["max_texts"]):
        reply = post(url, json={"texts": texts[start:start + LIMITS["max_texts"]]})
        assert reply.status_code == 200, reply.text
        got += reply.json()["assignments"]
    assert len(got) == len(texts)
    expected = table.column(schema.CLUSTER).to_pylist()
    agree = sum(a["cluster"] == c for a, c in zip(got, expected)) / len(texts)
    assert agree >= 0.9, f"only {agree:.0%} of the run's own texts came back in their cluster"
    for a, cluster, score in zip(got, expected, table.column(schema.SCORE).to_pylist()):
        assert a["cluster_name"] == names[a["cluster"]]
        # the runner-up is the next nearest in the reduced space; scores are cosines to centroids
        assert a["next_cluster"] != a["cluster"] and a["score"] <= 1.0001 and a["next_score"] <= 1.0001
        if a["cluster"] == cluster:
            assert a["score"] == pytest.approx(score, abs=1e-3)  # same embedder, same centroid


@pytest.mark.slow
def test_health_and_openapi(served):
    url, run_dir = served
    health = requests.get(url + "/healthz", timeout=10).json()
    assert health["status"] == "ok" and health["k"] == 10 and health["run_dir"] == str(run_dir)
    assert health["limits"]["max_texts"] == LIMITS["max_texts"]
    spec = requests.get(url + "/openapi.json", timeout=10).json()
    assert {"/assign", "/healthz"} <= set(spec["paths"])
    assert "AssignRequest" in spec["components"]["schemas"]


BAD_REQUESTS = [
    ("not JSON", {"data": "{texts: [", "headers": {"content-type": "application/json"}}, 400, "not valid JSON"),
    ("plain text body", {"data": "hello"}, 400, "content-type"),
    ("no body", {}, 422, "body is missing"),
    ("missing texts", {"json": {"text": ["x"]}}, 422, "missing key 'texts'"),
    ("texts not a list", {"json": {"texts": "hello"}}, 422, "texts: input should be a valid list"),
    ("not strings", {"json": {"texts": ["ok", 5]}}, 422, "texts[1]: input should be a valid string, got 5"),
    ("body is a list", {"json": ["x"]}, 422, "body: input should be a valid dictionary"),
    ("unknown key", {"json": {"texts": ["x"], "top": 3}}, 422, "unknown key 'top'"),
    ("empty list", {"json": {"texts": []}}, 422, "texts is empty"),
    ("blank text", {"json": {"texts": ["ok", "  "]}}, 422, "texts[1] empty"),
    ("too many texts", {"json": {"texts": ["x"] * 17}}, 413, "17 texts in one request; the limit is max_texts=16"),
    ("text too long", {"json": {"texts": ["ok", "x" * 301]}}, 413, "texts[1] has 301"),
    ("body too large", {"data": "x" * 20_001, "headers": JSON}, 413,
     "body of 20001 bytes; the limit is max_body_bytes=20000"),
    ("chunked body too large", {"data": (b"x" * 1000 for _ in range(100)), "headers": JSON}, 413,
     "body of more than 20000 bytes"),
]


@pytest.mark.slow
@pytest.mark.parametrize("case, kwargs, status, message", BAD_REQUESTS, ids=[c[0] for c in BAD_REQUESTS])
def test_bad_requests_get_a_4xx_that_says_why(served, case, kwargs, status, message):
    url, _ = served
    reply = post(url, **kwargs)
    assert reply.status_code == status, reply.text
    assert message in reply.json()["error"]
    assert requests.get(url + "/healthz", timeout=10).status_code == 200  # the replica lives on


@pytest.mark.slow
def test_other_errors_have_the_same_shape(served):
    url, _ = served
    wrong_method = requests.get(url + "/assign", timeout=10)
    assert wrong_method.status_code == 405 and wrong_method.json() == {
        "error": "GET /assign: Method Not Allowed; allowed: POST"}
    assert requests.get(url + "/nowhere", timeout=10).json() == {"error": "GET /nowhere: Not Found"}


def test_a_run_whose_files_do_not_match_result_json_is_refused(tmp_path):
    from llmclust.store.finished import read_run
    from llmclust.store.runs import RunDir

    run = RunDir(tmp_path)
    staged = run.staging()
    (staged / "clusters.parquet").write_text("77 clusters")
    run.publish(staged, k=77)
    assert read_run(str(tmp_path))["k"] == 77
    (tmp_path / "clusters.parquet").write_text("20 clusters")
    with pytest.raises(FileNotFoundError, match=r"clusters.parquet is missing or not the file .* describes"):
        read_run(str(tmp_path))


@pytest.mark.slow
def test_concurrent_requests_get_their_own_answers(served):
    url, run_dir = served
    texts = pq.read_table(run_dir / "assignments.parquet").column(schema.TEXT).to_pylist()[:40]
    alone = [a["cluster"] for a in post(url, json={"texts": texts[:8]}).json()["assignments"]]
    requests_ = [texts[i:i + 1 + i % 5] for i in range(32)]  # 32 requests of 1..5 texts

    def call(batch):
        reply = post(url, json={"texts": batch})
        return reply.status_code, [a["cluster"] for a in reply.json()["assignments"]]

    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(call, requests_))
    assert all(status == 200 for status, _ in replies)
    assert [len(c) for _, c in replies] == [len(b) for b in requests_]
    for batch, (_, clusters) in zip(requests_, replies):
        for text, cluster in zip(batch, clusters):
            if text in texts[:8]:
                assert cluster == alone[texts.index(text)]  # batching with others changes nothing


def test_config_errors_name_key_value_and_expectation():
    with pytest.raises(ConfigError, match=r"max_batch_size=8: expected >= max_texts=64"):
        ServeConfig(max_batch_size=8)
    with pytest.raises(ConfigError, match=r"device='tpu'"):
        ServeConfig(device="tpu")
    with pytest.raises(ConfigError, match=r"max_body_bytes=0: expected a positive integer"):
        ServeConfig(max_body_bytes=0)
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['serve.max_text'\]"):
        app_builder({"max_text": "3"})


def test_cli_strings_are_read_as_values():
    app = app_builder({"run_dir": "/tmp/x", "max_texts": "8", "batch_wait_timeout_s": "0.05", "num_cpus": "2"})
    deployment = app._bound_deployment
    assert deployment.user_config["max_texts"] == 8 and deployment.user_config["batch_wait_timeout_s"] == 0.05
    assert deployment.ray_actor_options["num_cpus"] == 2


def test_limits_are_checked_in_order():
    cfg = ServeConfig(max_texts=2, max_chars=5)
    assert check_limits(["abc", "de"], cfg) is None
    assert check_limits(["a", "b", "c"], cfg).status_code == 413
    assert check_limits(["abcdef"], cfg).status_code == 413
    assert check_limits(["\n"], cfg).status_code == 422


@pytest.mark.slow
def test_job_writes_a_deployable_serve_config(served, tmp_path):
    import importlib.util

    from llmclust.serve.deploy import read_serve_file

    _, run_dir = served
    spec = importlib.util.spec_from_file_location("serve_job", REPO / "cluster_jobs" / "serve.py")
    job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(job)
    out = tmp_path / "serve.yaml"
    serve_file = str(REPO / "ray_configs" / "serve_local.yaml")
    job.main(["--config", serve_file, "--run-dir", str(run_dir), "--port", "8123", "--write-config", str(out),
              "max_texts=32"])
    http, args = read_serve_file(out)
    assert http["port"] == 8123 and args["run_dir"] == str(run_dir) and args["max_texts"] == 32
    app_builder(args)  # what `serve deploy` will build passes the checks
    with pytest.raises(SystemExit, match="does not exist"):
        job.main(["--config", serve_file, "--run-dir", str(tmp_path / "missing")])


@pytest.mark.slow
def test_operator_limits_apply_on_redeploy(served):
    """Last on purpose: it leaves the app with max_texts=2."""
    from ray import serve

    url, run_dir = served
    serve.run(app_builder({"run_dir": str(run_dir), **LIMITS, "max_texts": 2}), name="assign-test", route_prefix="/")
    reply = post(url, json={"texts": ["a", "b", "c"]})
    assert reply.status_code == 413 and "max_texts=2" in reply.json()["error"]
    assert requests.get(url + "/healthz", timeout=10).json()["limits"]["max_texts"] == 2



def test_embedder_is_found_inside_the_run_or_by_name(tmp_path):
    from llmclust.models import resolve_model
    from llmclust.store.finished import find_embedder

    (tmp_path / "embedder").mkdir()
    assert find_embedder("embedder", tmp_path) == str(tmp_path / "embedder")
    assert find_embedder("all-MiniLM-L6-v2", tmp_path) == resolve_model("all-MiniLM-L6-v2")
    with pytest.raises(FileNotFoundError, match="set serve option embedder="):
        find_embedder("/elsewhere/e5-large", tmp_path)
