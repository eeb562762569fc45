"""Serve config files: read the one a deployment starts from, write the one ``serve deploy`` takes,
or deploy on the Ray this process is connected to.

Example::

    http, args = read_serve_file("ray_configs/serve_local.yaml")
    write_deploy_config("/tmp/serve.yaml", http, {**args, "run_dir": "/abs/runs/local"})
"""

from __future__ import annotations

from pathlib import Path

import yaml
from ray import serve

from llmclust.serve.app import TUNABLE, ClusterAssigner, app_builder


def read_serve_file(path: str | Path) -> tuple[dict, dict]:
    """A Serve config file -> (its http_options, its first application's args with user_config merged in)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"Serve config file {str(path)!r} not found; e.g. ray_configs/serve_local.yaml")
    data = yaml.safe_load(Path(path).read_text())
    app = data["applications"][0]
    tuned = [d.get("user_config", {}) for d in app.get("deployments", []) if d["name"] == ClusterAssigner.name]
    return data.get("http_options", {}), {**app.get("args", {}), **(tuned[0] if tuned else {})}


def deploy_locally(args: dict, host: str = "127.0.0.1", port: int = 8000, name: str = "llmclust") -> str:
    """Deploy the app on the Ray this process is connected to, HTTP on ``host:port``; returns the base URL."""
    serve.start(http_options={"host": host, "port": port})
    serve.run(app_builder(args), name=name, route_prefix="/")
    return f"http://{host}:{port}"


def write_deploy_config(path: str, http: dict, serve_args: dict) -> None:
    tuned = {k: serve_args[k] for k in TUNABLE if k in serve_args}
    fixed = {k: v for k, v in serve_args.items() if k not in TUNABLE}
    Path(path).write_text(yaml.safe_dump({"proxy_location": "HeadOnly", "http_options": http, "applications": [{
        "name": "llmclust", "route_prefix": "/", "import_path": "llmclust.serve.app:app_builder", "args": fixed,
        "deployments": [{"name": ClusterAssigner.name, "user_config": tuned}]}]}, sort_keys=False))
