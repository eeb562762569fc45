"""Online assignment of new texts to a finished run's clusters, as a Ray Serve application.

``POST /assign`` with ``{"texts": [...]}`` embeds the texts with the run's final embedder and
returns, for each, the nearest cluster centre (id, name, cosine similarity) and the runner-up.
Texts of concurrent requests are embedded together (``@serve.batch``, counted in texts, not
requests). ``GET /healthz`` says what is loaded; ``GET /openapi.json`` and ``/docs`` describe
the API. A malformed request gets a 4xx whose body, ``{"error": ...}`` like every error's,
says what was wrong; a body over ``max_body_bytes`` is refused before it is read. A run whose
files do not match the checksums in its ``result.json`` is refused at load, saying so.

Example (a local Ray; a run made by ``cluster_jobs/baseline.py`` in /tmp/serve-run)::

    from ray import serve
    from llmclust.serve.app import app_builder
    serve.run(app_builder({"run_dir": "/tmp/serve-run"}), route_prefix="/")
    # curl -s localhost:8000/assign -H 'content-type: application/json' -d '{"texts": ["card lost"]}'

or ``serve run llmclust.serve.app:app_builder run_dir=/tmp/serve-run`` from a shell.
"""

# no `from __future__ import annotations`: FastAPI reads the route annotations at import time
import asyncio
import json
import logging
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import yaml
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictStr
from ray import serve
from starlette.exceptions import HTTPException

from llmclust import schema
from llmclust.config import ConfigError, expect, expect_choice, from_dict
from llmclust.pipeline.assigner import Assigner
from llmclust.pipeline.embedders import Embedder
from llmclust.pipeline.embedding import EmbeddingConfig, make_embedder
from llmclust.serve.http import BodyLimit, error_response
from llmclust.store.finished import find_embedder, read_run
from llmclust.store.runs import RunDir

log = logging.getLogger(__name__)


@dataclass
class ServeConfig:
    run_dir: str = "runs/local"  # a finished run (result.json + clusters.parquet)
    embedder: str = ""  # empty: the run's embedder; a local path where the run's path is not visible
    device: str = "auto"  # auto (cuda if present) | cpu | cuda
    encode_batch_size: int = 64  # texts per forward pass inside one batched call
    max_texts: int = 64  # texts per request; more -> 413
    max_chars: int = 2000  # characters per text; longer -> 413
    max_body_bytes: int = 1_048_576  # request body; larger -> 413 before it is read
    max_batch_size: int = 128  # texts embedded together across concurrent requests
    batch_wait_timeout_s: float = 0.01  # how long a batch waits for more requests to join
    num_replicas: int = 1
    num_cpus: float = 1  # per replica (torch threads on CPU)
    num_gpus: float = 0  # per replica; 1 on GPU nodes
    max_ongoing_requests: int = 128  # per replica; beyond this the proxy queues requests

    def __post_init__(self):
        expect(bool(self.run_dir), "run_dir", self.run_dir, "the folder of a finished run")
        expect_choice("device", self.device, ["auto", "cpu", "cuda"])
        for key in ("encode_batch_size", "max_texts", "max_chars", "max_body_bytes", "max_batch_size",
                    "num_replicas", "max_ongoing_requests"):
            expect(getattr(self, key) > 0, key, getattr(self, key), "a positive integer")
        expect(self.max_batch_size >= self.max_texts, "max_batch_size", self.max_batch_size,
               f">= max_texts={self.max_texts} (one request must fit in one batch)")
        expect(self.batch_wait_timeout_s >= 0, "batch_wait_timeout_s", self.batch_wait_timeout_s, "0 or more seconds")
        expect(self.num_cpus > 0, "num_cpus", self.num_cpus, "a positive number")
        expect(self.num_gpus >= 0, "num_gpus", self.num_gpus, "0 or more")


# What operators may change on a running deployment (``user_config``) without a restart.
TUNABLE = ("max_texts", "max_chars", "max_body_bytes", "max_batch_size", "batch_wait_timeout_s")


@dataclass
class LoadedRun:
    """What assignment needs from a finished run: embedder, centroids and names."""

    embedder: Embedder
    assigner: Assigner  # as the run clustered: through its reducer, or by cosine to the centroids
    names: list[str]
    method: str
    run_dir: str

    @classmethod
    def load(cls, cfg: ServeConfig) -> "LoadedRun":
        result = read_run(cfg.run_dir)
        run = RunDir(cfg.run_dir)
        clusters = pq.read_table(run.path / result["clusters"])
        schema.require_columns(clusters, [schema.CLUSTER, schema.CLUSTER_NAME, schema.CENTROID], "serve")
        clusters = clusters.sort_by(schema.CLUSTER)
        embedder_path = find_embedder(cfg.embedder or result["embedder"], run.path)
        emb_cfg = EmbeddingConfig(model=embedder_path, device=cfg.device, batch_size=cfg.encode_batch_size,
                                  max_seq_length=result["max_seq_length"])
        embedder = make_embedder(emb_cfg, embedder_path)
        assigner = Assigner.from_run(run.path, result)
        assigner.top(embedder.encode(["warm-up"]))  # a reducer's first transform compiles (numba): not in a request
        centroids = assigner.centroids
        if centroids.shape[1] != embedder.dim:
            raise ValueError(f"{run.path}: centroids have {centroids.shape[1]} dimensions but embedder "
                             f"{embedder_path} gives {embedder.dim}; the run and the embedder do not match")
        names = clusters.column(schema.CLUSTER_NAME).to_pylist()
        log.info("serving %s: %d clusters, embedder %s on %s", run.path, len(names), embedder_path, embedder.device)
        return cls(embedder, assigner, names, result["method"], str(run.path))


# -- the HTTP API -----------------------------------------------------------------------------

EXPECTED_BODY = '{"texts": ["first text", "second text"]}'


class AssignRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [json.loads(EXPECTED_BODY)]})
    texts: list[StrictStr] = Field(description="texts to assign; limits: max_texts per request, max_chars per text")


class Assignment(BaseModel):
    cluster: int = Field(description="id of the nearest cluster centre")
    cluster_name: str
    score: float = Field(description="cosine similarity of the text to that centre")
    next_cluster: int = Field(description="id of the second-nearest centre")
    next_cluster_name: str
    next_score: float


class AssignResponse(BaseModel):
    assignments: list[Assignment] = Field(description="one per input text, in input order")
    method: str
    k: int


class Health(BaseModel):
    status: str
    run_dir: str
    method: str
    k: int
    device: str
    limits: dict[str, int | float]


api = FastAPI(title="llmclust assign", version="1", description=__doc__.split("\n\n")[1])


def _where(loc: tuple) -> str:
    """('body', 'texts', 3) -> 'texts[3]'."""
    parts = [p for p in loc if p != "body"]
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "body"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


@api.exception_handler(RequestValidationError)
async def _bad_request(request: Request, err: RequestValidationError) -> JSONResponse:
    """Pydantic's error list -> one readable message per problem, plus the expected shape."""
    problems, status = [], 422
    for e in err.errors():
        if e["type"] == "json_invalid":
            status = 400
            problems.append(f"body is not valid JSON ({e.get('ctx', {}).get('error', e['msg'])})")
        elif _where(e["loc"]) == "body" and isinstance(e.get("input"), (bytes, str)):
            status = 400  # a body FastAPI did not parse: not sent as JSON
            problems.append(f"body is not a JSON object (got {_short(e['input'])}); is content-type application/json?")
        elif e["type"] == "missing":
            problems.append("body is missing" if _where(e["loc"]) == "body" else f"missing key '{_where(e['loc'])}'")
        elif e["type"] == "extra_forbidden":
            problems.append(f"unknown key '{_where(e['loc'])}'")
        else:
            problems.append(f"{_where(e['loc'])}: {e['msg'].lower()}, got {_short(e.get('input'))}")
    return JSONResponse(status_code=status, content={
        "error": "; ".join(problems), "expected": f"a JSON object like {EXPECTED_BODY} (content-type: application/json)"})


@api.exception_handler(HTTPException)
async def _httperror_response(request: Request, err: HTTPException) -> JSONResponse:
    """Starlette's own errors (404, 405) and the body limit's 413, in the shape of every other error."""
    allowed = f"; allowed: {err.headers['Allow']}" if err.headers and "Allow" in err.headers else ""
    return JSONResponse(status_code=err.status_code, headers=err.headers,
                        content={"error": f"{request.method} {request.url.path}: {err.detail}{allowed}"})


api.add_middleware(BodyLimit)


@api.exception_handler(Exception)
async def _servererror_response(request: Request, err: Exception) -> JSONResponse:
    """Anything unforeseen: a 500 with the cause for this request; the replica keeps serving."""
    log.exception("%s %s failed", request.method, request.url.path)
    return error_response(500, f"internal error: {type(err).__name__}: {err}")


def check_limits(texts: list[str], cfg: ServeConfig) -> JSONResponse | None:
    """413 for too many or too long texts, 422 for empty ones; None when the request is fine."""
    if not texts:
        return error_response(422, "texts is empty: send at least one text")
    if len(texts) > cfg.max_texts:
        return error_response(413, f"{len(texts)} texts in one request; the limit is max_texts={cfg.max_texts}: "
                           "split the request")
    too_long = [i for i, t in enumerate(texts) if len(t) > cfg.max_chars]
    if too_long:
        return error_response(413, f"texts{too_long[:10]} longer than max_chars={cfg.max_chars} characters "
                           f"(texts[{too_long[0]}] has {len(texts[too_long[0]])}); shorten them")
    blank = [i for i, t in enumerate(texts) if not t.strip()]
    if blank:
        return error_response(422, f"texts{blank[:10]} empty or whitespace only: nothing to assign")
    return None


def _count_texts(requests: list[list[str]]) -> int:
    return sum(len(texts) for texts in requests)


@serve.deployment
@serve.ingress(api)
class ClusterAssigner:
    """One replica: loads the run once, then assigns texts batched across requests."""

    def __init__(self, config: dict):
        self.cfg = from_dict(ServeConfig, config)
        if self.cfg.num_gpus == 0:
            import torch

            torch.set_num_threads(max(1, int(self.cfg.num_cpus)))  # one replica per CPU slot, not all cores
        self.run = LoadedRun.load(self.cfg)

    def reconfigure(self, user_config: dict) -> None:
        """Apply operator settings (``user_config``: keys of :data:`TUNABLE`) without a restart."""
        unknown = sorted(set(user_config) - set(TUNABLE))
        if unknown:
            raise ConfigError(f"user_config keys {unknown} cannot change at run time; tunable keys: {list(TUNABLE)}")
        self.cfg = from_dict(ServeConfig, {**asdict(self.cfg), **user_config})
        BodyLimit.limit = self.cfg.max_body_bytes  # one replica per process: a class attribute is this replica's
        self._embed_batch.set_max_batch_size(self.cfg.max_batch_size)
        self._embed_batch.set_batch_wait_timeout_s(self.cfg.batch_wait_timeout_s)

    @api.get("/healthz", response_model=Health)
    async def healthz(self) -> Health:
        return Health(status="ok", run_dir=self.run.run_dir, method=self.run.method, k=len(self.run.names),
                      device=self.run.embedder.device, limits={k: getattr(self.cfg, k) for k in TUNABLE})

    @api.post("/assign", response_model=AssignResponse,
              responses={400: {"description": "body is not JSON"}, 413: {"description": "too many or too long texts"},
                         422: {"description": "wrong shape: missing texts, not a list of strings, empty texts"}})
    async def assign(self, request: AssignRequest):
        rejected = check_limits(request.texts, self.cfg)
        if rejected is not None:
            return rejected
        vectors = await self._embed_batch(request.texts)
        ids, sims = self.run.assigner.top(vectors, top=2)
        names = self.run.names
        return AssignResponse(method=self.run.method, k=len(names), assignments=[
            Assignment(cluster=int(i[0]), cluster_name=names[i[0]], score=float(s[0]),
                       next_cluster=int(i[-1]), next_cluster_name=names[i[-1]], next_score=float(s[-1]))
            for i, s in zip(ids, sims)])

    @serve.batch(max_batch_size=ServeConfig.max_batch_size, batch_wait_timeout_s=ServeConfig.batch_wait_timeout_s,
                 batch_size_fn=_count_texts)
    async def _embed_batch(self, requests: list[list[str]]) -> list[np.ndarray]:
        """Texts of several requests -> one embedding call -> each request's vectors."""
        flat = [t for texts in requests for t in texts]
        # in a thread, so the replica keeps accepting (and queueing) requests meanwhile
        vectors = await asyncio.to_thread(self.run.embedder.encode, flat)
        bounds = np.cumsum([len(texts) for texts in requests])[:-1]
        return np.split(vectors, bounds)


def _parse_cli_values(args: dict) -> dict:
    """``serve run module:app_builder key=value`` passes strings: read them as YAML scalars."""
    return {k: yaml.safe_load(v) if isinstance(v, str) and k not in ("run_dir", "embedder") else v
            for k, v in args.items()}


def app_builder(args: dict[str, Any]) -> serve.Application:
    """The Serve application for ``serve run`` / ``serve deploy`` (``args``: ServeConfig keys)."""
    cfg = from_dict(ServeConfig, _parse_cli_values(dict(args or {})), "serve")
    return ClusterAssigner.options(
        num_replicas=cfg.num_replicas,
        max_ongoing_requests=cfg.max_ongoing_requests,
        ray_actor_options={"num_cpus": cfg.num_cpus, "num_gpus": cfg.num_gpus},
        user_config={k: getattr(cfg, k) for k in TUNABLE},
    ).bind({k: v for k, v in asdict(cfg).items() if k not in TUNABLE})  # tunables only in user_config:
    # a `serve deploy` that changes nothing else then reconfigures the replicas in place
