"""Co-training's embedder objective: contrastive views plus DEC, as one loss module.

For a batch of (text, interpretation, interpretation) rows, embedded in train mode (so the
two interpretation columns are two dropout views of one text):

* contrastive: InfoNCE between E(text) and E(interpretation) with in-batch negatives, and
  InfoNCE between the two dropout views of the interpretation, averaged;
* DEC: KL(P || Q) of E(interpretation) against trainable centres initialised by KMeans,
  weighted by ``dec_weight``.

The centres are parameters of the loss, so the embedder trainer optimises (and checkpoints)
them with the model.

Example::

    import torch
    loss = ContrastiveDECLoss(centres=torch.randn(4, 8), temperature=0.1, dec_weight=1.0)
    text, interp, interp2 = (torch.randn(16, 8) for _ in range(3))
    loss([text, interp, interp2])       # a scalar tensor, differentiable in the centres too
"""

from __future__ import annotations

import torch

from llmclust.training.dec import dec_loss
from llmclust.training.infonce import info_nce


class ContrastiveDECLoss(torch.nn.Module):
    """Loss for the embedder trainer: takes [text, interpretation, interpretation] embeddings."""

    columns = 3

    def __init__(self, centres, temperature: float = 0.1, dec_weight: float = 1.0, alpha: float = 1.0):
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"temperature={temperature!r}: expected a positive number (e.g. 0.1)")
        self.centres = torch.nn.Parameter(torch.as_tensor(centres, dtype=torch.float32).clone())
        self.temperature, self.dec_weight, self.alpha = temperature, dec_weight, alpha

    def forward(self, embeddings: list[torch.Tensor]) -> torch.Tensor:
        if len(embeddings) != self.columns:
            raise ValueError(f"got {len(embeddings)} embedding columns; expected 3: text, interpretation, "
                             "the interpretation again (its second dropout view)")
        text, view_1, view_2 = embeddings
        contrastive = (info_nce(text, view_1, self.temperature) + info_nce(view_1, view_2, self.temperature)) / 2
        return contrastive + self.dec_weight * dec_loss(view_1, self.centres, self.alpha)
