"""``python -m llmclust COMMAND ...``: the ``llmclust`` console script without installing it.

    python -m llmclust run --config ray_configs/local.yaml clustering.n_clusters=20
    python -m llmclust report runs/local
"""

from llmclust.cli import main

main()
