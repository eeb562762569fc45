"""Cluster names without an LLM: the most distinctive words of each cluster (class TF-IDF).

Methods that produce pseudo-labels (LUMI) or interpretations name clusters from those
instead; this is the fallback every method can use.

Example::

    keyword_names(["card lost", "lost my card", "top up failed"], [0, 0, 1], 2)
    # ['card / lost', 'failed / top']
"""

from __future__ import annotations

import numpy as np

from llmclust.pipeline.clustering import members_by_cluster


def keyword_names(texts: list[str], labels, k: int, words: int = 3) -> list[str]:
    from sklearn.feature_extraction.text import CountVectorizer

    docs = [" ".join(texts[i] for i in rows.tolist()) for rows in members_by_cluster(labels, k)]
    try:
        vec = CountVectorizer(stop_words="english", token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z]+\b")
        counts = vec.fit_transform(docs).toarray().astype(float)
    except ValueError:  # every word was a stop word
        return [f"cluster {c}" for c in range(k)]
    tf = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    idf = np.log(1 + counts.sum(axis=1).mean() / np.maximum(counts.sum(axis=0), 1))
    weight = tf * idf
    vocab = np.asarray(vec.get_feature_names_out())
    names = []
    for c in range(k):
        top = [vocab[i] for i in np.argsort(-weight[c])[:words] if weight[c, i] > 0]
        names.append(" / ".join(sorted(top)) if top else f"cluster {c}")
    return names
