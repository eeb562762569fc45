"""Density-guided DPO co-training of the LLM and the embedder (METHODS.md §3).

Read in this order: ``config.py`` (the ``cotrain`` section), ``clusterer.py``
(``CoTrainClusterer``), ``loop.py`` (one iteration: interpretations -> embed -> cluster ->
density preference -> LoRA DPO -> embedder update), then the helpers: ``interpretations.py``
(prompts and parser of the LLM's interpretations), ``preference.py`` (density scores and
DPO pairs). The trainers are shared: :mod:`llmclust.training.dpo`,
:mod:`llmclust.training.embedder_trainer` with :mod:`llmclust.training.contrastive_dec`.
"""
