"""InfoNCE over (anchor, positive, hard negative) triplets with in-batch negatives, both ways.

For anchor ``a_i`` the candidates are every positive and every hard negative in the batch;
the right one is ``p_i``. The same is computed with anchor and positive swapped (``p_i``
must find ``a_i`` among all anchors and hard negatives), and the two losses are averaged.

Example::

    import torch
    a, p, n = (torch.nn.functional.normalize(torch.randn(4, 8), dim=-1) for _ in range(3))
    loss = TripletInfoNCELoss(temperature=0.05)([a, p, n])     # a scalar tensor
"""

from __future__ import annotations

import torch

from llmclust.training.infonce import info_nce


def triplet_infonce(anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor,
                    temperature: float) -> torch.Tensor:
    """Mean of the two directional InfoNCE losses, hard negatives shared by both directions."""
    return (info_nce(anchor, positive, temperature, negative) + info_nce(positive, anchor, temperature, negative)) / 2


class TripletInfoNCELoss(torch.nn.Module):
    """Callable loss for the embedder trainer: takes [anchor, positive, negative] embeddings."""

    columns = 3

    def __init__(self, temperature: float = 0.05):
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"temperature={temperature!r}: expected a positive number (e.g. 0.05)")
        self.temperature = temperature

    def forward(self, embeddings: list[torch.Tensor]) -> torch.Tensor:
        if len(embeddings) != self.columns:
            raise ValueError(f"got {len(embeddings)} embedding columns; expected 3: anchor, positive, negative")
        return triplet_infonce(*embeddings, temperature=self.temperature)
