"""``POST /assign`` for a finished run: the serve command behind ``cluster_jobs/serve.py`` and ``llmclust serve``.

Settings come from the Serve config file (``--config``, default ray_configs/serve_local.yaml:
its args and user_config), then from ``key=value`` overrides (llmclust.serve.app.ServeConfig
keys); everything is checked before Ray starts. ``--write-config`` writes the resolved file
for ``serve deploy`` instead of deploying.

Example::

    main(["--run-dir", "/tmp/serve-run", "--write-config", "/tmp/serve.yaml"])
    main(["--run-dir", "/tmp/serve-run", "--port", "8001", "max_texts=128"])   # blocks until Ctrl-C
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from llmclust.cli.console import setup_logging
from llmclust.config import ConfigError, apply_overrides
from llmclust.serve.app import app_builder
from llmclust.serve.deploy import deploy_locally, read_serve_file, write_deploy_config
from llmclust.store.finished import read_run


def parse_args(argv, description: str = __doc__, prog: str | None = None):
    parser = argparse.ArgumentParser(prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="ray_configs/serve_local.yaml", help="Serve config file (default: %(default)s)")
    parser.add_argument("--run-dir", help="the finished run to serve (overrides the file's run_dir)")
    parser.add_argument("--host", help="HTTP host (default: the file's http_options.host)")
    parser.add_argument("--port", type=int, help="HTTP port (default: the file's http_options.port)")
    parser.add_argument("--write-config", metavar="PATH", help="write the resolved Serve config for `serve deploy` and exit")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="ServeConfig overrides, e.g. max_texts=128")
    return parser.parse_args(argv)


def resolved_settings(args) -> tuple[dict, dict]:
    """(http options, serve args) from the file, the flags and the overrides; checked before Ray starts."""
    http, serve_args = read_serve_file(args.config)
    serve_args = apply_overrides(serve_args, args.overrides)
    if args.run_dir:
        serve_args["run_dir"] = args.run_dir
    serve_args["run_dir"] = str(Path(serve_args["run_dir"]).resolve())  # replicas may run in another folder
    http = {"host": args.host or http.get("host", "127.0.0.1"), "port": args.port or http.get("port", 8000)}
    app_builder(serve_args)  # validates every key and value
    read_run(serve_args["run_dir"])
    return http, serve_args


def main(argv=None, description: str = __doc__, prog: str | None = None):
    args = parse_args(argv, description, prog)
    setup_logging()
    # 1. settings, checked before anything starts
    try:
        http, serve_args = resolved_settings(args)
    except (ConfigError, FileNotFoundError) as err:
        sys.exit(f"serve: {err}")
    if args.write_config:
        write_deploy_config(args.write_config, http, serve_args)
        print(f"wrote {args.write_config}; deploy it with:\n  ray start --head  # once\n"
              f"  serve deploy {args.write_config}\n  serve status")
        return
    # 2. Ray: the cluster at $RAY_ADDRESS, else a local one
    import ray
    from ray import serve

    ray.init(address=os.environ.get("RAY_ADDRESS"), include_dashboard=False)
    # 3. deploy and block
    url = deploy_locally(serve_args, http["host"], http["port"])
    print(f"serving {serve_args['run_dir']} at {url}/assign (docs: {url}/docs); Ctrl-C stops")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        serve.shutdown()
        print("serve: stopped")

