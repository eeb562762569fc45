"""InfoNCE with in-batch negatives (and optional hard negatives), as a pure function.

Example::

    import torch
    a, p = torch.randn(8, 16), torch.randn(8, 16)
    loss = info_nce(a, p, temperature=0.1)      # scalar; lower when a[i] is closest to p[i]
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def info_nce(anchors: torch.Tensor, positives: torch.Tensor, temperature: float,
             hard_negatives: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy of each anchor picking its own positive among all positives in the batch.

    ``anchors`` and ``positives`` are (b, d); row i of each form the positive pair and every
    other positive is a negative. ``hard_negatives`` (b, d), if given, add one extra negative
    column per anchor set (all of them, like the in-batch ones). Vectors are L2-normalised here,
    so logits are cosine similarities divided by ``temperature``.
    """
    if anchors.shape != positives.shape:
        raise ValueError(f"anchors {tuple(anchors.shape)} and positives {tuple(positives.shape)} must have the same shape")
    if temperature <= 0:
        raise ValueError(f"temperature={temperature}: expected a positive number")
    a = F.normalize(anchors, dim=-1)
    candidates = F.normalize(positives, dim=-1)
    if hard_negatives is not None:
        candidates = torch.cat([candidates, F.normalize(hard_negatives, dim=-1)])
    logits = a @ candidates.T / temperature
    return F.cross_entropy(logits, torch.arange(len(a), device=a.device))
