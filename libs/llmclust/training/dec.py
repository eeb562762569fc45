"""Deep Embedded Clustering (DEC): Student-t soft assignment, sharpened target, KL loss.

q_ij = (1 + ||z_i - v_j||^2 / a)^(-(a+1)/2), normalised over clusters j;
p_ij = (q_ij^2 / f_j) normalised over j, with f_j = sum_i q_ij (cluster frequency);
loss = KL(P || Q), with P held fixed (no gradient through the target).

The target sharpens confident assignments and divides by cluster frequency so large clusters
do not swallow small ones.

Example::

    import torch
    z, centres = torch.randn(32, 8), torch.nn.Parameter(torch.randn(4, 8))
    q = soft_assignment(z, centres)            # (32, 4), rows sum to 1
    loss = dec_loss(z, centres)                # scalar, differentiable in z and centres
"""

from __future__ import annotations

import torch

from llmclust.pipeline.clustering import student_t_assignment


def soft_assignment(z: torch.Tensor, centres: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """Student-t kernel similarity of each row of ``z`` (n, d) to each centre (k, d): (n, k)."""
    return student_t_assignment(torch.cdist(z, centres).pow(2), alpha)


def target_distribution(q: torch.Tensor) -> torch.Tensor:
    """DEC's auxiliary target from soft assignments ``q`` (n, k): rows sum to 1."""
    weight = q.pow(2) / q.sum(dim=0, keepdim=True)
    return weight / weight.sum(dim=1, keepdim=True)


def dec_loss(z: torch.Tensor, centres: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """KL(P || Q) averaged over rows, with the target P detached."""
    q = soft_assignment(z, centres, alpha)
    p = target_distribution(q).detach()
    return (p * (p.clamp_min(1e-12).log() - q.clamp_min(1e-12).log())).sum(dim=1).mean()
