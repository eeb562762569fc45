import pytest
from llmclust.pipeline.evaluation import cluster_accuracy, scores, summarize


def test_accuracy_matches_clusters_to_classes():
    assert cluster_accuracy([0, 0, 1, 1], [1, 1, 0, 0]) == 1.0
    assert cluster_accuracy(["a", "a", "b", "b"], [5, 5, 5, 7]) == 0.75
    # more clusters than classes: unmatched clusters count as wrong
    assert cluster_accuracy([0, 0, 0, 0], [0, 1, 2, 3]) == 0.25


def test_accuracy_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="y_true has"):
        cluster_accuracy([0, 1], [0])


def test_scores_and_summary():
    perfect = scores([0, 0, 1, 1], [1, 1, 0, 0])
    assert perfect == {"acc": 100.0, "nmi": 100.0, "ari": 100.0}
    summary = summarize([{"acc": 50.0, "nmi": 10.0}, {"acc": 70.0, "nmi": 20.0}])
    assert summary == {"acc_mean": 60.0, "acc_std": 10.0, "nmi_mean": 15.0, "nmi_std": 5.0}
