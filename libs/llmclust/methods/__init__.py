"""The clusterers, one per method, all following the scikit-learn contract of ``TextClusterer``."""

from llmclust.methods.base import NotFittedError, TextClusterer
from llmclust.methods.baseline import KMeansClusterer
from llmclust.methods.lumi import LumiClusterer
from llmclust.methods.clusterllm import ClusterLLMClusterer
from llmclust.methods.cotrain import CoTrainClusterer

CLUSTERERS: dict[str, type[TextClusterer]] = {
    KMeansClusterer.method: KMeansClusterer,
    LumiClusterer.method: LumiClusterer,
    ClusterLLMClusterer.method: ClusterLLMClusterer,
    CoTrainClusterer.method: CoTrainClusterer,
}


def make_clusterer(config) -> TextClusterer:
    """The clusterer named by ``config.method``."""
    return CLUSTERERS[config.method](config)


__all__ = ["CLUSTERERS", "ClusterLLMClusterer", "CoTrainClusterer", "KMeansClusterer", "LumiClusterer",
           "NotFittedError", "TextClusterer", "make_clusterer"]
