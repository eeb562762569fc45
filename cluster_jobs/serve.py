"""Serve ``POST /assign`` for a finished run, on this machine (or the Ray cluster at $RAY_ADDRESS).

Make a run, then serve it (blocks until Ctrl-C):

    python cluster_jobs/baseline.py --config ray_configs/local.yaml \\
        corpus.path=tests/fixtures/banking77_small.csv clustering.n_clusters=10 run.dir=/tmp/serve-run
    python cluster_jobs/serve.py --run-dir /tmp/serve-run
    python cluster_jobs/serve.py --run-dir /tmp/serve-run --port 8001 max_texts=128 num_cpus=2

Settings come from the Serve config file (--config, default ray_configs/serve_local.yaml: its
args and user_config), then from ``key=value`` overrides (llmclust.serve.app.ServeConfig keys).
For ``serve deploy`` on a running cluster, write the resolved file and deploy it:

    python cluster_jobs/serve.py --run-dir /tmp/serve-run --write-config /tmp/serve.yaml
    ray start --head && serve deploy /tmp/serve.yaml && serve status
    serve run ray_configs/serve_local.yaml        # the file as it is, in the foreground

Client:

    import requests
    reply = requests.post("http://127.0.0.1:8000/assign", json={"texts": ["I lost my card"]}, timeout=30)
    reply.raise_for_status()          # 4xx bodies say what was wrong: reply.json()["error"]
    for a in reply.json()["assignments"]:
        print(a["cluster"], a["cluster_name"], round(a["score"], 3), "next:", a["next_cluster_name"])

API description: http://127.0.0.1:8000/docs (OpenAPI at /openapi.json); health: GET /healthz.
"""

from llmclust.cli.serve import main as serve_main


def main(argv=None):
    serve_main(argv, __doc__)


if __name__ == "__main__":
    main()
