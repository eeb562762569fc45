"""ClusterLLM: LLM triplet answers fine-tune the embedder; LLM pair answers choose K (METHODS.md §2).

Read in this order: ``config.py`` (the ``clusterllm`` section), ``clusterer.py``
(``ClusterLLMClusterer``), ``stages.py`` (triplets -> judge -> train -> granularity), then the
helpers: ``triplets.py`` (entropy sampling), ``judges.py`` (LLM and oracle judges, prompts),
``granularity.py`` (merge hierarchy, F-beta choice of K).
"""
