"""The clusterers, one per method, all following the scikit-learn contract of ``TextClusterer``.

Each method is one folder that reads straight through: ``config.py`` (its config section),
``clusterer.py`` (the ``TextClusterer``), the stages it adds to the pipeline and its own
helpers. This registry imports nothing until a clusterer is asked for, so that loading a job
config (``llmclust.methods.job``) never pulls in torch or a method's dependencies.

Example::

    from llmclust.methods import load_job_config, make_clusterer
    model = make_clusterer(load_job_config("ray_configs/lumi_local.yaml")).fit()
"""

from __future__ import annotations

import importlib

# method name -> (module, class); the class's ``method`` attribute is the same name
CLUSTERERS = {
    "baseline": ("llmclust.methods.baseline", "KMeansClusterer"),
    "lumi": ("llmclust.methods.lumi.clusterer", "LumiClusterer"),
    "clusterllm": ("llmclust.methods.clusterllm.clusterer", "ClusterLLMClusterer"),
    "cotrain": ("llmclust.methods.cotrain.clusterer", "CoTrainClusterer"),
}
_EXPORTS = {cls: module for module, cls in CLUSTERERS.values()} | {
    "TextClusterer": "llmclust.methods.base", "NotFittedError": "llmclust.methods.base",
    "JobConfig": "llmclust.methods.job", "load_job_config": "llmclust.methods.job"}


def clusterer_class(method: str) -> type:
    """The clusterer class of ``method`` (one of ``CLUSTERERS``)."""
    if method not in CLUSTERERS:
        raise ValueError(f"method={method!r}: expected one of {sorted(CLUSTERERS)}")
    module, name = CLUSTERERS[method]
    return getattr(importlib.import_module(module), name)


def make_clusterer(config):
    """The clusterer named by ``config.method``."""
    return clusterer_class(config.method)(config)


def __getattr__(name: str):
    # `from llmclust.methods import LumiClusterer` imports that method only when asked
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'llmclust.methods' has no attribute {name!r}")


__all__ = ["CLUSTERERS", "clusterer_class", "make_clusterer", *_EXPORTS]
