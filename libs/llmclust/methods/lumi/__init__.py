"""LUMI: LLM pseudo-labels pooled into the embeddings, training-free (METHODS.md §1).

Read in this order: ``config.py`` (the ``lumi`` section), ``clusterer.py`` (``LumiClusterer``),
``stages.py`` (labels -> multi-labels -> pooling, each checkpointed), ``pooling.py`` (the maths).
"""
