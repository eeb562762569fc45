"""The KubeRay manifests and Serve config files: they parse, and everything they name exists.

No cluster is needed: each manifest is read as YAML and checked against the repository
(entrypoint scripts, --config files, import paths, Serve args) and against pyproject.toml
(Ray version of images and ``rayVersion``).
"""

import importlib
import re
import shlex
from pathlib import Path

import pytest
import yaml

from llmclust.job import load_job_config
from llmclust.serving import TUNABLE, ServeConfig, app_builder

REPO = Path(__file__).resolve().parents[1]
MANIFESTS = sorted((REPO / "k8s").glob("*.yaml"))
# written on the co-training branch; absent here until the lead merges it


def documents() -> list[tuple[str, dict]]:
    return [(path.name, doc) for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text()) if doc]


def of_kind(kind: str) -> list[dict]:
    return [doc for _, doc in documents() if doc["kind"] == kind]


def values(node, key: str) -> list:
    """Every value stored under ``key`` anywhere in a nested manifest."""
    if isinstance(node, dict):
        return [v for k, child in node.items() for v in ([child] if k == key else []) + values(child, key)]
    if isinstance(node, list):
        return [v for child in node for v in values(child, key)]
    return []


def ray_version() -> str:
    """The pin of ``ray[...]==X`` in pyproject.toml (read as text: tomllib is Python 3.11+)."""
    (pin,) = re.findall(r'"ray\[[^\]]*\]==([^"]+)"', (REPO / "pyproject.toml").read_text())
    return pin


def entrypoints() -> list[list[str]]:
    return [shlex.split(job["spec"]["entrypoint"]) for job in of_kind("RayJob")]


def named_files() -> list[str]:
    """Repository files named by the entrypoints: the script and its --config."""
    files = []
    for argv in entrypoints():
        assert argv[0] == "python", f"entrypoint {argv}: expected `python <script> --config <file>`"
        files += [argv[1], argv[argv.index("--config") + 1]]
    return files


def serve_configs() -> list[tuple[str, dict]]:
    configs = [(f"k8s/{name}", yaml.safe_load(doc["spec"]["serveConfigV2"]))
               for name, doc in documents() if doc["kind"] == "RayService"]
    return configs + [("ray_configs/serve_local.yaml", yaml.safe_load((REPO / "ray_configs/serve_local.yaml").read_text()))]


def test_every_manifest_parses_into_the_expected_kinds():
    kinds = sorted(doc["kind"] for _, doc in documents())
    assert kinds == ["PersistentVolumeClaim", "RayCluster", "RayJob", "RayService"]
    assert all(doc["apiVersion"] == "ray.io/v1" for _, doc in documents() if doc["kind"].startswith("Ray"))


def test_images_and_ray_versions_match_pyproject():
    version = ray_version()
    docs = [doc for _, doc in documents()]
    assert values(docs, "rayVersion") and set(values(docs, "rayVersion")) == {version}
    images = set(values(docs, "image"))
    assert images == {f"llmclust:0.1.0-ray{version}-py311-gpu"}
    dockerfile = (REPO / "k8s" / "Dockerfile").read_text()
    assert f"FROM rayproject/ray:{version}-py311-gpu" in dockerfile
    workdir = re.search(r"^WORKDIR (\S+)", dockerfile, re.M).group(1)
    assert set(values(docs, "workingDir")) == {workdir}
    runtime_envs = [yaml.safe_load(job["spec"]["runtimeEnvYAML"]) for job in of_kind("RayJob")]
    assert {env["working_dir"] for env in runtime_envs} == {workdir}


@pytest.mark.parametrize("path", [
    p for p in named_files()
])
def test_files_named_by_entrypoints_exist(path):
    assert (REPO / path).is_file(), f"{path} is named by a manifest in k8s/ but not in the repository"


def test_job_configs_named_by_entrypoints_load():
    for argv in entrypoints():
        cfg = load_job_config(REPO / argv[argv.index("--config") + 1])
        assert cfg.embedding.gpus_per_actor >= 1 and cfg.embedding.device == "cuda"


@pytest.mark.parametrize("where, config", serve_configs(), ids=[w for w, _ in serve_configs()])
def test_serve_configs_import_and_validate(where, config):
    for app in config["applications"]:
        module, attr = app["import_path"].split(":")
        builder = getattr(importlib.import_module(module), attr)
        assert builder is app_builder, f"{where}: {app['import_path']} is not llmclust.serving:app_builder"
        deployment = app_builder(app["args"])._bound_deployment
        for override in app.get("deployments", []):
            assert override["name"] == deployment.name, f"{where}: no deployment named {override['name']}"
            assert set(override["user_config"]) <= set(TUNABLE)
            ServeConfig(**{**app["args"], **override["user_config"]})  # values pass the checks together


def test_volumes_and_cluster_selectors_resolve():
    claims = {doc["metadata"]["name"] for doc in of_kind("PersistentVolumeClaim")}
    assert set(values([doc for _, doc in documents()], "claimName")) == claims
    clusters = {doc["metadata"]["name"] for doc in of_kind("RayCluster")}
    for job in of_kind("RayJob"):
        assert job["spec"]["clusterSelector"]["ray.io/cluster"] in clusters
    mounts = {m["mountPath"] for group in values([doc for _, doc in documents()], "volumeMounts") for m in group}
    run_dir = load_job_config(REPO / "ray_configs" / "gpu.yaml").run.dir
    served = [app["args"]["run_dir"] for where, cfg in serve_configs() if where.startswith("k8s")
              for app in cfg["applications"]]
    assert any(run_dir.startswith(m) for m in mounts) and served == [run_dir]
