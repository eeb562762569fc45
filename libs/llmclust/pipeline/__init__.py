"""The pipeline stages every method shares, in data-flow order: corpus, embedding, neighbours,
reduction, clustering, evaluation, naming, publish (and the assigner that places new texts)."""
